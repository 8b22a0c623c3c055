// Package accounts is the account database of syncer's FTP server: the
// YAML users file with bcrypt hashes (DB), its validation rules, and the
// per-account rate limits (Rate). The server (ftpfs), the web viewer's
// login and `syncer user` share it; it knows nothing of FTP connections.
package accounts

// This file fixes the users API that the server and `syncer user` build on.
// Its implementation lives in db.go.

// User is one account of the users file. The YAML field names are the file
// format; PasswordHash is a bcrypt hash, never a plain password.
type User struct {
	Name         string `yaml:"name" json:"name"`
	PasswordHash string `yaml:"password_hash" json:"-"`
	// Perm holds pyftpdlib permission letters ("elradfmwMT").
	Perm string `yaml:"perm" json:"perm"`
	// Admin accounts have their letters on the whole archive; other accounts
	// only under Home.
	Admin bool `yaml:"admin,omitempty" json:"admin"`
	// Home is the absolute archive path an agent account is confined to,
	// "/NAME" by default; "/" for admins.
	Home string `yaml:"home" json:"home"`
	// MaxUploadRate and MaxDownloadRate override the server-wide limits for
	// this account, in bytes per second; 0 means the server default.
	MaxUploadRate   Rate `yaml:"max_upload_rate,omitempty" json:"max_upload_rate,omitempty"`
	MaxDownloadRate Rate `yaml:"max_download_rate,omitempty" json:"max_download_rate,omitempty"`
}

// Default permission strings. An agent creates directories and files, appends
// and reads back under its home; it cannot delete, rename, chmod or set times.
const (
	DefaultAgentPerm = "elramw"
	DefaultAdminPerm = "elradfmwMT"
)
