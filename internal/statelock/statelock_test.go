package statelock

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFileExcludes(t *testing.T) {
	lock := filepath.Join(t.TempDir(), "users.yaml.lock")
	unlock, err := File(lock, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_, err = File(lock, 50*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), lock) || !errors.Is(err, ErrHeld) {
		t.Fatalf("second lock while held: err = %v, want ErrHeld naming %s", err, lock)
	}
	unlock()
	unlock2, err := File(lock, time.Second)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	unlock2()
}

func TestDir(t *testing.T) {
	dir := t.TempDir()
	release, err := Dir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, DirLockFile)); err != nil {
		t.Errorf("lock file: %v", err)
	}
	_, err = Dir(dir)
	if !errors.Is(err, ErrHeld) || !strings.Contains(err.Error(), "in use by another syncer serve") {
		t.Fatalf("second lock of %s: err = %v, want ErrHeld saying the directory is in use", dir, err)
	}
	release()
	release2, err := Dir(dir)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	release2()
	if _, err := Dir(filepath.Join(dir, "missing")); err == nil || errors.Is(err, ErrHeld) {
		t.Errorf("lock of a missing directory: err = %v, want a stat error", err)
	}
}
