package syncer_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// The agent against third-party servers: the core of the story holds on
// any FTP server with SIZE and REST STOR (no versions there: a rewrite
// replaces the file).
func TestPushPyftpdlib(t *testing.T) { runInteropSuite(t, startPyftpdlib(t)) }
func TestPushVsftpd(t *testing.T)    { runInteropSuite(t, startVsftpd(t)) }

func runInteropSuite(t *testing.T, tg *target) {
	e := newEnv(t, tg)
	paths := e.makeTree(16)
	files := 16
	// A name that is not UTF-8 travels byte-exact where the server keeps
	// names as bytes (vsftpd does; pyftpdlib 1.5 fails to reply about such
	// a directory even with surrogateescape).
	odd := "caf\xe9/\xff\xfe-raw.log"
	if tg.byteNames {
		e.write(odd, logLines(99, 5000))
		files++
	}

	s := e.push()
	if s.FilesNew != int64(files) || s.FilesFailed != 0 {
		t.Fatalf("initial push: %+v", s)
	}
	e.wantSameTree()
	if tg.byteNames {
		got, err := os.ReadFile(filepath.Join(tg.tree, odd))
		if err != nil || !bytes.Equal(got, logLines(99, 5000)) {
			t.Fatalf("non-UTF-8 name not archived byte-exact: %v", err)
		}
	}

	if s := e.push(); s.BytesSent != 0 || s.FilesUnchanged != int64(files) {
		t.Fatalf("idle push: %+v", s)
	}

	var growth int64
	grown := paths[:6]
	if tg.byteNames {
		grown = append(paths[:5], odd)
	}
	for i, p := range grown {
		add := logLines(uint64(500+i), 2000+i)
		e.appendTo(p, add)
		growth += int64(len(add))
	}
	s = e.push()
	if s.BytesSent != growth || s.FilesAppended != 6 {
		t.Fatalf("append push: sent %d, want %d; %+v", s.BytesSent, growth, s)
	}
	e.wantSameTree()
}

// TestPushNonUTF8Name: issue 3 wants names that are not UTF-8 archived
// byte-exact on the syncer server too.
func TestPushNonUTF8Name(t *testing.T) {
	tg := startSyncerServer(t, nil)
	e := newEnv(t, tg)
	odd := "caf\xe9/\xff\xfe-raw.log"
	e.write(odd, logLines(99, 5000))
	e.write("plain.log", logLines(98, 100))
	s := e.push()
	if s.FilesNew != 2 || s.FilesFailed != 0 {
		t.Fatalf("push: %+v", s)
	}
	got, err := os.ReadFile(filepath.Join(tg.tree, odd))
	if err != nil || !bytes.Equal(got, logLines(99, 5000)) {
		t.Fatalf("non-UTF-8 name not archived byte-exact: %v", err)
	}
}
