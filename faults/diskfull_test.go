package faults

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// mountTmpfs mounts a tmpfs of size at dir (root only) and unmounts it at
// cleanup, retrying while it is busy.
func mountTmpfs(t testing.TB, dir, size string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("needs root to mount a small tmpfs as a full disk (CI runs as root): %v %s", err, out)
	}
	t.Cleanup(func() {
		for i := 0; i < 50; i++ {
			if exec.Command("umount", dir).Run() == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		_ = exec.Command("umount", "-l", dir).Run()
	})
}

// TestDiskFull: the historian's archive root is a 6 MiB tmpfs and the
// agent pushes 10 MiB. The push reports the files that did not fit (exit
// 1, "no space" in the error), the historian keeps running and indexes no
// partial file as verified; when space returns (remount bigger) the next
// push completes and everything is byte-identical and verified.
func TestDiskFull(t *testing.T) {
	base := t.TempDir()
	h := newHistorian(t, base, "node1")
	mountTmpfs(t, h.root, "6m")
	h.start()
	logs, state := filepath.Join(base, "logs"), filepath.Join(base, "agent")
	rng := nil2()
	writeLogFile(t, filepath.Join(logs, "big.log"), 8<<20, rng)
	for i := range 20 {
		writeLogFile(t, filepath.Join(logs, fmt.Sprintf("small/%02d.log", i)), 100<<10, rng)
	}
	args := agentArgs("node1", h.ftp, logs, state)
	r := push(t, h.passwords["node1"], args...)
	s := parseSummary(t, r)
	if r.code != 1 || s.FilesFailed == 0 {
		t.Fatalf("push onto a full disk: exit %d, %d failed, want exit 1 and failures\n%s\n%s", r.code, s.FilesFailed, r.stdout, r.stderr)
	}
	clear := 0
	for _, e := range s.Errors {
		if strings.Contains(strings.ToLower(e.Error), "space") {
			clear++
		}
	}
	if clear == 0 {
		t.Errorf("no error mentions the lack of space: %+v", s.Errors)
	}
	if !strings.Contains(strings.ToLower(h.stderr.String()), "space") {
		t.Errorf("the historian's log does not mention the lack of space:\n%s", h.stderr)
	}
	// No partial file is shown as verified.
	if fi, ok := h.apiFile("node1", "big.log"); ok && fi.Status == "verified" && fi.Size != 8<<20 {
		t.Errorf("a partial big.log is indexed as verified: %+v", fi)
	}
	partial := 0
	_ = filepath.Walk(filepath.Join(h.root, "node1"), func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() || !strings.HasSuffix(p, ".log") {
			return nil
		}
		rel, _ := filepath.Rel(filepath.Join(h.root, "node1"), p)
		src, serr := os.Stat(filepath.Join(logs, rel))
		if serr == nil && src.Size() != fi.Size() {
			partial++
			if got, ok := h.apiFile("node1", filepath.ToSlash(rel)); ok && got.Status == "verified" {
				t.Errorf("%s: partial (%d of %d bytes) but indexed as verified", rel, fi.Size(), src.Size())
			}
		}
		return nil
	})
	// Space returns.
	if out, err := exec.Command("mount", "-o", "remount,size=64m", h.root).CombinedOutput(); err != nil {
		t.Fatalf("remount: %v %s", err, out)
	}
	r = push(t, h.passwords["node1"], args...)
	if r.code != 0 {
		t.Fatalf("push after space returned: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	files, lost := compareTree(t, logs, filepath.Join(h.root, "node1"))
	checkIndex(t, h, "node1", logs)
	report(t, "Disk full on the historian (6 MiB tmpfs archive root, 10 MiB pushed)",
		fmt.Sprintf("push exit 1, %d files failed with \"no space\" errors, historian logged it and kept running, %d partial files not verified; after the remount the next push completed: %d files identical by SHA-256 and verified (`TestDiskFull`)", s.FilesFailed, partial, files), lost)
	h.stop()
}
