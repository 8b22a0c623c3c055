//go:build linux

package fuseview

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestOpenFileStaysInArchive: the open behind every FUSE OPEN reaches the
// archived files and nothing through a symlink or out of the root, both
// with openat2 and with the os.Root fallback for kernels without it.
func TestOpenFileStaysInArchive(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	mkfile(t, filepath.Join(outside, "secret"), "secret\n")
	mkfile(t, filepath.Join(root, "node1/app/a.log"), "hello\n")
	for _, l := range []struct{ target, name string }{
		{filepath.Join(outside, "secret"), "node1/app/out.log"},
		{"a.log", "node1/app/in.log"},
		{outside, "node1/outdir"},
		{"/", "node1/rootdir"},
	} {
		if err := os.Symlink(l.target, filepath.Join(root, l.name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mkfifo(filepath.Join(root, "node1/app/fifo"), 0o644); err != nil {
		t.Fatal(err)
	}

	for _, method := range []struct {
		name     string
		fallback bool
	}{{"openat2", false}, {"os.Root", true}} {
		t.Run(method.name, func(t *testing.T) {
			r, err := os.OpenRoot(root)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			rd, err := r.Open(".")
			if err != nil {
				t.Fatal(err)
			}
			defer rd.Close()
			v := &view{root: r, rootDir: rd, rootFD: int(rd.Fd())}
			v.noOpenat2.Store(method.fallback)

			fd, err := v.openFile("node1", "app/a.log")
			if err != nil {
				t.Fatalf("open node1/app/a.log: %v", err)
			}
			buf := make([]byte, 64)
			n, err := unix.Read(fd, buf)
			unix.Close(fd)
			if err != nil || string(buf[:n]) != "hello\n" {
				t.Errorf("read node1/app/a.log: %q, %v", buf[:n], err)
			}

			for _, p := range []string{
				"app/out.log",       // symlink out of the archive
				"app/in.log",        // symlink to a file inside
				"outdir/secret",     // through a directory symlink out
				"rootdir/etc/hosts", // through a symlink to /
				"../../" + filepath.Base(outside) + "/secret", // dot-dot out (Source paths never have one)
				"app/nope.log",
				"app/a.log/x",
			} {
				fd, err := v.openFile("node1", p)
				if err == nil {
					unix.Close(fd)
					t.Errorf("open node1/%s succeeded, want not exist", p)
					continue
				}
				if !errors.Is(notExist(err), ErrNotExist) {
					t.Errorf("open node1/%s: %v, want ErrNotExist", p, err)
				}
			}

			// A FIFO in a file's place must not hang the open; Open then
			// refuses it by its type.
			fd, err = v.openFile("node1", "app/fifo")
			if err != nil {
				t.Fatalf("open the FIFO: %v", err)
			}
			var st unix.Stat_t
			err = unix.Fstat(fd, &st)
			unix.Close(fd)
			if err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
				t.Errorf("fstat of the FIFO: mode %o, %v", st.Mode, err)
			}
		})
	}
}
