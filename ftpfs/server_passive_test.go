package ftpfs_test

// Passive-port racing (issue 14, finding 5): a connection to a passive port
// from another address is closed while the server waits for the client's;
// a refused socket is never handed to a later transfer; and an upload
// changes nothing in the archive until its data connection is accepted.

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/syncer-dev/syncer/ftpfs"
)

// TestServerPassiveForeignAddress: a connection to the passive port from
// another address (127.0.0.2) that comes first is closed, the server keeps
// waiting, and the upload from the client's own address completes; nothing
// was truncated or versioned on the way. (Before: 425, and the old file
// moved aside and truncated.)
func TestServerPassiveForeignAddress(t *testing.T) {
	e := srvStart(t, func(cfg *ftpfs.ServerConfig) { cfg.DataConnTimeout = 3 * time.Second })
	old := []byte("archived before\n")
	e.put("/node1/a.log", old)
	r := e.rawLogin(srvAgent)
	port := r.epsvPort()
	foreign := dialFrom(t, "127.0.0.2", port)
	_, _ = foreign.Write(attackerMark)
	own := dialFrom(t, "127.0.0.1", port)
	data := srvRandom(t, 100<<10)
	if code, msg := r.cmd("STOR /node1/a.log"); code != 150 {
		t.Fatalf("STOR: %d %s, want 150", code, msg)
	}
	if _, err := own.Write(data); err != nil {
		t.Fatal(err)
	}
	_ = own.Close()
	if code, msg := r.reply(); code != 226 {
		t.Fatalf("STOR ended with %d %s, want 226", code, msg)
	}
	if got := e.read("/node1/a.log"); !bytes.Equal(got, data) {
		t.Fatalf("archived %d bytes, want %d", len(got), len(data))
	}
	if _, err := foreign.Read(make([]byte, 1)); err == nil {
		t.Errorf("the foreign connection is still open")
	}
	if vs := versions(t, e.file("/node1")); len(vs) != 1 || !bytes.Equal(e.read("/node1/"+vs[0]), old) {
		t.Errorf("versions %v, want one holding the old content", vs)
	}
}

// TestServerRefusedTransferChangesNothing: a STOR whose data connection
// never comes (only a stranger from another address connects) fails after
// DataConnTimeout and changes nothing: the file keeps its content, no
// version appears. A second STOR without a new EPSV gets no connection, in
// particular not the stranger's. (Before: the first STOR failed at once
// with 425 but left an empty file and a version; the second was served on
// the stranger's socket and archived its bytes.)
func TestServerRefusedTransferChangesNothing(t *testing.T) {
	e := srvStart(t, func(cfg *ftpfs.ServerConfig) { cfg.DataConnTimeout = time.Second })
	old := []byte("archived before\n")
	e.put("/node1/a.log", old)
	r := e.rawLogin(srvAgent)
	port := r.epsvPort()
	foreign := dialFrom(t, "127.0.0.2", port)
	_, _ = foreign.Write(attackerMark)
	code, msg := r.cmd("STOR /node1/a.log")
	if code == 150 {
		code, msg = r.reply()
	}
	if code != 425 {
		t.Errorf("STOR without a data connection: %d %s, want 425", code, msg)
	}
	if got := e.read("/node1/a.log"); !bytes.Equal(got, old) {
		t.Errorf("a.log after the refused STOR: %q, want %q", got, old)
	}
	if vs := versions(t, e.file("/node1")); len(vs) != 0 {
		t.Errorf("versions after the refused STOR: %v", vs)
	}
	// No new EPSV: the next transfer has no data connection.
	code, msg = r.cmd("STOR /node1/a.log")
	if code == 150 {
		code, msg = r.reply()
	}
	if code < 400 {
		t.Errorf("STOR without EPSV: %d %s, want a refusal", code, msg)
	}
	if got := e.read("/node1/a.log"); !bytes.Equal(got, old) {
		t.Errorf("a.log after a STOR without EPSV: %q, want %q", got, old)
	}
	if bad := archivedWithMark(t, e.root); len(bad) > 0 {
		t.Errorf("the stranger's bytes were archived: %v", bad)
	}
	// The session still works.
	dc := r.epsv()
	if code, msg := r.cmd("STOR /node1/b.log"); code != 150 {
		t.Fatalf("STOR: %d %s", code, msg)
	}
	_, _ = dc.Write([]byte("ok\n"))
	_ = dc.Close()
	if code, msg := r.reply(); code != 226 {
		t.Fatalf("STOR ended with %d %s", code, msg)
	}
}

// versions lists the versions kept in dir.
func versions(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, de := range des {
		if strings.Contains(de.Name(), ".superseded-") {
			out = append(out, de.Name())
		}
	}
	return out
}
