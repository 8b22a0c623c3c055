package store

import (
	"fmt"
	"log/slog"
	"sync"

	"github.com/cockroachdb/pebble/v2"
)

// FatalError is the panic value with which a database of this package
// reports a failure that Pebble cannot go on after (a MANIFEST write that
// failed, a broken invariant). Pebble expects its logger's Fatalf to end
// the process; this package panics with a *FatalError instead, so that a
// program can end in order: stop taking work, close what it can, and tell
// its user in one line. Recover it with RecoverFatal in the goroutine that
// called the database. The database is unusable afterwards: its Close
// returns the FatalError without touching Pebble again, and the directory
// stays locked until the process exits.
type FatalError struct {
	// DB is the database: "manifest" or "index".
	DB string
	// Msg is Pebble's message.
	Msg string
}

func (e *FatalError) Error() string { return e.DB + " database failed: " + e.Msg }

// RecoverFatal, deferred, recovers a *FatalError panic and hands it to
// handle; any other panic goes on. It must be the deferred function
// itself:
//
//	defer store.RecoverFatal(func(fe *store.FatalError) { err = fe })
func RecoverFatal(handle func(*FatalError)) {
	v := recover()
	if v == nil {
		return
	}
	if fe, ok := v.(*FatalError); ok {
		handle(fe)
		return
	}
	panic(v)
}

// fatalState is the first fatal error of one database.
type fatalState struct {
	once sync.Once
	err  *FatalError
	done chan struct{}
}

func newFatalState() *fatalState { return &fatalState{done: make(chan struct{})} }

// failed is the recorded fatal error, nil if there is none.
func (s *fatalState) failed() *FatalError {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// pebbleLogger is the Pebble logger of a database: informational messages
// are dropped (the program's output is its own), errors go to log, and a
// fatal error is logged, recorded and raised as a *FatalError panic.
type pebbleLogger struct {
	db    string
	log   *slog.Logger
	fatal *fatalState
}

func (pebbleLogger) Infof(string, ...any) {}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error(l.db + ": " + fmt.Sprintf(format, args...))
}

func (l pebbleLogger) Fatalf(format string, args ...any) {
	fe := &FatalError{DB: l.db, Msg: fmt.Sprintf(format, args...)}
	l.log.Error(fe.Error())
	l.fatal.once.Do(func() {
		l.fatal.err = fe
		close(l.fatal.done)
	})
	panic(fe)
}

// openPebble is pebble.Open with a fatal error during the open returned
// as an error: there is no database yet to be unusable.
func openPebble(dir string, opts *pebble.Options) (db *pebble.DB, err error) {
	defer RecoverFatal(func(fe *FatalError) { db, err = nil, fe })
	return pebble.Open(dir, opts)
}
