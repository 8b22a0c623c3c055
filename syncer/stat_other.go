//go:build !linux

package syncer

import (
	"io/fs"
	"os"
	"sync"
)

// readDirStat lists dir sorted by name and lstats its non-directory
// entries, several at once in large directories.
func readDirStat(dir string) ([]fs.DirEntry, []statted, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	out := make([]statted, len(entries))
	if len(entries) < 64 {
		return entries, out, nil // the caller stats what it needs
	}
	var wg sync.WaitGroup
	chunk := (len(entries) + statParallel - 1) / statParallel
	for lo := 0; lo < len(entries); lo += chunk {
		hi := min(lo+chunk, len(entries))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := lo; i < hi; i++ {
				if t := entries[i].Type(); t.IsDir() || t&fs.ModeSymlink != 0 {
					continue
				}
				out[i].fi, out[i].err = entries[i].Info()
			}
		}()
	}
	wg.Wait()
	return entries, out, nil
}
