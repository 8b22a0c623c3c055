package store

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// raise calls l.Fatalf as Pebble does and returns what RecoverFatal
// handed over.
func raise(t *testing.T, l pebbleLogger, msg string) (got *FatalError) {
	t.Helper()
	defer RecoverFatal(func(fe *FatalError) { got = fe })
	l.Fatalf("MANIFEST sync failed: %s", msg)
	t.Fatal("Fatalf returned")
	return nil
}

// TestFatalfPanicsInsteadOfExiting: Pebble's fatal log is logged, recorded
// and raised as a *FatalError panic, never os.Exit; the first one is kept.
func TestFatalfPanicsInsteadOfExiting(t *testing.T) {
	var buf bytes.Buffer
	l := pebbleLogger{db: "index", log: slog.New(slog.NewTextHandler(&buf, nil)), fatal: newFatalState()}
	fe := raise(t, l, "no space left on device")
	if fe == nil || fe.DB != "index" || !strings.Contains(fe.Msg, "no space left") {
		t.Fatalf("recovered %+v", fe)
	}
	if want := "index database failed: MANIFEST sync failed: no space left on device"; fe.Error() != want {
		t.Errorf("Error() = %q, want %q", fe.Error(), want)
	}
	if !strings.Contains(buf.String(), "level=ERROR") || !strings.Contains(buf.String(), "no space left") {
		t.Errorf("not logged: %q", buf.String())
	}
	raise(t, l, "second")
	if got := l.fatal.failed(); got != fe {
		t.Errorf("recorded %v, want the first %v", got, fe)
	}
}

// TestRecoverFatalLetsOtherPanicsGo: only a *FatalError is recovered.
func TestRecoverFatalLetsOtherPanicsGo(t *testing.T) {
	defer func() {
		if v := recover(); v != "a bug" {
			t.Errorf("recovered %v, want the original panic", v)
		}
	}()
	func() {
		defer RecoverFatal(func(*FatalError) { t.Error("a plain panic was handled as fatal") })
		panic("a bug")
	}()
}

// TestCloseAfterFatal: after a fatal error the manifest's and the index's
// Close return it at once instead of calling into Pebble (which may hold
// its locks from the failed call), and the index reports it on Failed.
func TestCloseAfterFatal(t *testing.T) {
	discard := slog.New(slog.DiscardHandler)
	m := openTest(t, filepath.Join(t.TempDir(), "manifest"))
	raise(t, pebbleLogger{db: "manifest", log: discard, fatal: m.fatal}, "disk gone")
	var fe *FatalError
	if err := m.Close(); !errors.As(err, &fe) || fe.DB != "manifest" {
		t.Errorf("manifest Close = %v, want its FatalError", err)
	}

	ix, err := OpenIndex(IndexConfig{Dir: filepath.Join(t.TempDir(), "index"), Root: t.TempDir(), ReconcileEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-ix.Failed():
		t.Fatal("Failed closed before any failure")
	default:
	}
	if ix.Err() != nil {
		t.Errorf("Err() = %v before any failure", ix.Err())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ix.Run(ctx) }()
	<-ix.Ready()
	raise(t, pebbleLogger{db: "index", log: discard, fatal: ix.fatal}, "disk gone")
	select {
	case <-ix.Failed():
		if !errors.As(ix.Err(), &fe) {
			t.Errorf("Err() = %v after Failed, want the FatalError", ix.Err())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Failed not closed")
	}
	cancel()
	<-done
	if err := ix.Close(); !errors.As(err, &fe) || fe.DB != "index" {
		t.Errorf("index Close = %v, want its FatalError", err)
	}
}

// TestRunEndsWithFatal: a fatal error in the goroutine of Run (here raised
// where a write's changes are published, as a failed Pebble write would
// raise it) ends Run with the *FatalError instead of the process.
func TestRunEndsWithFatal(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "n1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "n1", "a.log"), []byte("line\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ix, err := OpenIndex(IndexConfig{Dir: filepath.Join(t.TempDir(), "index"), Root: root, ReconcileEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	l := pebbleLogger{db: "index", log: slog.New(slog.DiscardHandler), fatal: ix.fatal}
	done := make(chan error, 1)
	go func() { done <- ix.Run(context.Background()) }()
	<-ix.Ready()
	ix.Subscribe(func(Change) { l.Fatalf("pebble: fatal commit error: %s", "disk gone") })
	ix.Notify(IngestEvent{Kind: IngestClosed, Path: "/n1/a.log", Offset: 0, Time: time.Now()})
	select {
	case err := <-done:
		var fe *FatalError
		if !errors.As(err, &fe) {
			t.Errorf("Run = %v, want a FatalError", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run went on after a fatal error")
	}
	var fe *FatalError
	if err := ix.Close(); !errors.As(err, &fe) {
		t.Errorf("Close = %v, want the FatalError", err)
	}
}
