package faults

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestIndexLossAndCorruption: the historian's index (<state>/index) is
// deleted, then overwritten with garbage, while the server is stopped.
// Each time `syncer serve` starts again and the index, rebuilt from the
// archive on disk, shows every file with its SHA-256, verified.
func TestIndexLossAndCorruption(t *testing.T) {
	base := t.TempDir()
	h := newHistorian(t, base, "node1")
	h.start()
	logs := filepath.Join(base, "logs")
	rng := nil2()
	for i := range 50 {
		writeLogFile(t, filepath.Join(logs, fmt.Sprintf("d%d/%02d.log", i%5, i)), 1000+rng.IntN(50000), rng)
	}
	if r := push(t, h.passwords["node1"], agentArgs("node1", h.ftp, logs, filepath.Join(base, "agent"))...); r.code != 0 {
		t.Fatalf("push: %d %s %s", r.code, r.stdout, r.stderr)
	}
	checkIndex(t, h, "node1", logs)
	index := filepath.Join(h.state, "index")
	damage := []struct {
		name string
		do   func() error
	}{
		{"index deleted", func() error { return os.RemoveAll(index) }},
		{"index files overwritten with garbage", func() error {
			return filepath.Walk(index, func(p string, fi os.FileInfo, err error) error {
				if err != nil || fi.IsDir() || fi.Name() == "LOCK" {
					return err
				}
				return os.WriteFile(p, []byte("garbage, not pebble\x00\xff"), 0o600)
			})
		}},
		{"index truncated to empty files", func() error {
			return filepath.Walk(index, func(p string, fi os.FileInfo, err error) error {
				if err != nil || fi.IsDir() || fi.Name() == "LOCK" {
					return err
				}
				return os.Truncate(p, 0)
			})
		}},
	}
	for _, d := range damage {
		h.stop()
		if err := d.do(); err != nil {
			t.Fatal(err)
		}
		h.start()
		checkIndex(t, h, "node1", logs)
		if t.Failed() {
			t.Fatalf("after %s: index not rebuilt\n%s", d.name, h.stderr)
		}
	}
	files, lost := compareTree(t, logs, filepath.Join(h.root, "node1"))
	report(t, "Index deleted / overwritten with garbage / truncated while the historian was stopped",
		fmt.Sprintf("serve rebuilt it from the archive at start; all %d files shown with SHA-256, verified (`TestIndexLossAndCorruption`)", files), lost)
	h.stop()
}
