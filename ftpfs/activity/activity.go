// Package activity describes what an ftpfs server is doing, for observers
// that must not depend on the server itself (the web viewer, its metrics,
// the index hook): the live control connections (ConnInfo, TransferInfo,
// from Server.Connections) and the upload events (UploadEvent) that
// ServerConfig.OnUpload receives. It imports nothing of syncer.
package activity

import (
	"fmt"
	"time"
)

// ConnInfo describes one live control connection.
type ConnInfo struct {
	ID          uint32    `json:"id"`
	User        string    `json:"user"` // "" before login
	RemoteAddr  string    `json:"remote_addr"`
	ConnectedAt time.Time `json:"connected_at"`
	LoginAt     time.Time `json:"login_at"` // zero before login
	// BytesIn and BytesOut count file bytes uploaded and downloaded by this
	// connection (not listings or commands).
	BytesIn  int64 `json:"bytes_in"`
	BytesOut int64 `json:"bytes_out"`
	// Command is the last FTP command received.
	Command   string         `json:"command"`
	TLS       bool           `json:"tls"`
	Transfers []TransferInfo `json:"transfers"`
}

// TransferInfo describes one open upload or download.
type TransferInfo struct {
	Path    string    `json:"path"` // archive path, e.g. "/node1/app/a.log"
	Upload  bool      `json:"upload"`
	Offset  int64     `json:"offset"` // where the transfer started in the file
	Bytes   int64     `json:"bytes"`  // bytes moved so far
	Started time.Time `json:"started"`
}

// UploadKind says what happened to an upload.
type UploadKind int

// Upload event kinds, in the order a transfer produces them: Superseded
// (only when a STOR replaced an existing file), Opened, Progress (at most
// about four per second), then Closed or Failed.
const (
	UploadOpened UploadKind = iota + 1
	UploadProgress
	UploadClosed
	UploadFailed
	UploadSuperseded
	// UploadTouched: the file's modification time was set (MFMT), outside
	// any transfer.
	UploadTouched
)

func (k UploadKind) String() string {
	switch k {
	case UploadOpened:
		return "opened"
	case UploadProgress:
		return "progress"
	case UploadClosed:
		return "closed"
	case UploadFailed:
		return "failed"
	case UploadSuperseded:
		return "superseded"
	case UploadTouched:
		return "touched"
	}
	return fmt.Sprintf("UploadKind(%d)", int(k))
}

// UploadEvent reports on one upload; see ServerConfig.OnUpload.
type UploadEvent struct {
	Time time.Time
	User string
	// Path is the archive path, e.g. "/node1/app/a.log".
	Path string
	// Offset is where this transfer started writing in the file.
	Offset int64
	// Written is the number of bytes this transfer has written so far.
	Written int64
	// Size is the file's size now.
	Size int64
	Kind UploadKind
	// VersionPath is the archive path the previous content was kept
	// under (UploadSuperseded only).
	VersionPath string
	// Err says why an upload failed (UploadFailed only).
	Err error
}
