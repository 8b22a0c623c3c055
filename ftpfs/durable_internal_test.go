package ftpfs

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestFlusher: uploads that close together all get their answer, each its
// own: a file that cannot be synced fails only its own upload, and a
// directory gone meanwhile fails nobody.
func TestFlusher(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"a", "b"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	fl := newFlusher(root)
	for round := range 20 {
		var wg sync.WaitGroup
		errs := make([]error, 32)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d := []string{"/a", "/b"}[i%2]
				f, err := root.Create(fmt.Sprintf("%s/%d-%d", d[1:], round, i))
				if err != nil {
					errs[i] = err
					return
				}
				if i == 7 {
					f.Close() // a file that cannot be synced any more
					errs[i] = fl.sync(f, d)
					return
				}
				defer f.Close()
				if _, err := f.WriteString("data"); err != nil {
					errs[i] = err
					return
				}
				if i == 9 {
					fl.dirChanged("/gone") // never existed: nothing to keep
				}
				errs[i] = fl.sync(f, d)
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if (i == 7) != (err != nil) {
				t.Fatalf("round %d upload %d: %v", round, i, err)
			}
		}
	}
	if err := fl.sync(nil); err != nil {
		t.Fatal(err)
	}
	// The goroutine that led the last rounds, if any, finds nothing
	// waiting and ends.
	deadline := time.Now().Add(5 * time.Second)
	for {
		fl.mu.Lock()
		running, waiting, dirty := fl.running, len(fl.waiting), len(fl.dirty)
		fl.mu.Unlock()
		if !running && waiting == 0 && dirty == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("flusher not idle: running %v, %d waiting, %d dirty", running, waiting, dirty)
		}
		time.Sleep(time.Millisecond)
	}
}
