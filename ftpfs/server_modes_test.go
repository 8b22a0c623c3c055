package ftpfs_test

import (
	"io/fs"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/syncer-dev/syncer/ftpfs"
)

// TestServerArchiveModes: what the server creates in the archive (an
// agent's home at its first login, MKD, STOR, APPE) has the configured
// mode exactly, whatever the umask (0660 survives the usual 022); a
// superseded version keeps the mode of the file it was; a file the
// operator chmod-ed keeps its mode when appended to.
func TestServerArchiveModes(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permission bits on Windows")
	}
	for _, tc := range []struct {
		name             string
		file, dir        ftpfs.Mode
		wantFile, wantDr fs.FileMode
	}{
		{"default", 0, 0, 0o640, 0o750},
		{"private", 0o600, 0o700, 0o600, 0o700},
		{"group-writable", 0o660, 0o770, 0o660, 0o770},
		{"world-readable", 0o644, 0o755, 0o644, 0o755},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := srvStart(t, func(c *ftpfs.ServerConfig) { c.ArchiveFileMode, c.ArchiveDirMode = tc.file, tc.dir })
			r := e.rawLogin(srvAgent)
			r.expect(257, "MKD /%s/d", srvAgent)
			if code, msg := r.store("STOR", "/"+srvAgent+"/d/a.log", 0, []byte("one\n")); code != 226 {
				t.Fatalf("STOR: %d %s", code, msg)
			}
			if code, msg := r.store("APPE", "/"+srvAgent+"/d/b.log", 0, []byte("one\n")); code != 226 {
				t.Fatalf("APPE: %d %s", code, msg)
			}
			wantMode(t, e.file("/"+srvAgent), tc.wantDr)
			wantMode(t, e.file("/"+srvAgent+"/d"), tc.wantDr)
			wantMode(t, e.file("/"+srvAgent+"/d/a.log"), tc.wantFile)
			wantMode(t, e.file("/"+srvAgent+"/d/b.log"), tc.wantFile)

			// A new upload from the start: the old content becomes a
			// version with its mode, the new file gets the archive's.
			if err := os.Chmod(e.file("/"+srvAgent+"/d/a.log"), 0o400); err != nil {
				t.Fatal(err)
			}
			if code, msg := r.store("STOR", "/"+srvAgent+"/d/a.log", 0, []byte("two\n")); code != 226 {
				t.Fatalf("STOR again: %d %s", code, msg)
			}
			wantMode(t, e.file("/"+srvAgent+"/d/a.log"), tc.wantFile)
			ents, err := os.ReadDir(e.file("/" + srvAgent + "/d"))
			if err != nil {
				t.Fatal(err)
			}
			versions := 0
			for _, de := range ents {
				if strings.HasPrefix(de.Name(), "a.log.superseded-") {
					versions++
					wantMode(t, e.file("/"+srvAgent+"/d/"+de.Name()), 0o400)
				}
			}
			if versions != 1 {
				t.Errorf("%d versions of a.log, want 1: %v", versions, ents)
			}

			// An existing file keeps the mode the operator gave it.
			if err := os.Chmod(e.file("/"+srvAgent+"/d/b.log"), 0o600); err != nil {
				t.Fatal(err)
			}
			if code, msg := r.store("APPE", "/"+srvAgent+"/d/b.log", 0, []byte("two\n")); code != 226 {
				t.Fatalf("APPE again: %d %s", code, msg)
			}
			wantMode(t, e.file("/"+srvAgent+"/d/b.log"), 0o600)
		})
	}
}

func wantMode(t *testing.T, p string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s: mode %04o, want %04o", p, got, want)
	}
}

// TestServerArchiveModesRefused: modes the server's own user could not
// work with, or that let other users write into the archive, are refused
// with the field and the value named; Mode parses octal with a leading 0
// only.
func TestServerArchiveModesRefused(t *testing.T) {
	for _, tc := range []struct {
		file, dir ftpfs.Mode
		want      string
	}{
		{0o440, 0, "ArchiveFileMode 0440: the server's own user needs rw-"},
		{0o646, 0, "ArchiveFileMode 0646: others may not write"},
		{0o1640, 0, "ArchiveFileMode 1640: only permission bits"},
		{0, 0o650, "ArchiveDirMode 0650: the server's own user needs rwx"},
		{0, 0o757, "ArchiveDirMode 0757: others may not write"},
	} {
		_, err := ftpfs.NewServer(ftpfs.ServerConfig{Root: t.TempDir(), ArchiveFileMode: tc.file, ArchiveDirMode: tc.dir})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("file %v dir %v: %v, want an error with %q", tc.file, tc.dir, err, tc.want)
		}
	}
	for _, tc := range []struct {
		in   string
		want ftpfs.Mode
		ok   bool
	}{
		{"0640", 0o640, true}, {"0o750", 0o750, true}, {"00600", 0o600, true}, {" 0644 ", 0o644, true},
		{"640", 0, false}, {"416", 0, false}, {"0", 0, false}, {"0999", 0, false}, {"01000", 0, false}, {"", 0, false}, {"0x1a0", 0, false},
	} {
		var m ftpfs.Mode
		err := m.Set(tc.in)
		if (err == nil) != tc.ok || (tc.ok && m != tc.want) {
			t.Errorf("Mode.Set(%q) = %v, %v; want %v, ok %v", tc.in, m, err, tc.want, tc.ok)
		}
	}
}
