package syncer_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/syncer-dev/syncer/ftpfs"
	"github.com/syncer-dev/syncer/store"
	"github.com/syncer-dev/syncer/syncer"
)

// fatalProgress raises a *store.FatalError, as the manifest's database
// does when Pebble cannot go on, from the walk (Planned, the push's own
// goroutine) or from a worker (Sent).
type fatalProgress struct{ inPlanned, inSent bool }

func (p fatalProgress) Planned(int, int64) {
	if p.inPlanned {
		panic(&store.FatalError{DB: "manifest", Msg: "MANIFEST sync failed: disk gone"})
	}
}

func (p fatalProgress) Sent(int64) {
	if p.inSent {
		panic(&store.FatalError{DB: "manifest", Msg: "MANIFEST sync failed: disk gone"})
	}
}

func (fatalProgress) FileDone() {}

// TestPushEndsOnFatal: a fatal error of the manifest's database ends the
// push with an error wrapping ErrManifest and the FatalError, whichever
// goroutine of the push it is raised in, instead of the process.
func TestPushEndsOnFatal(t *testing.T) {
	tg := startSyncerServer(t, nil)
	for _, tc := range []struct {
		name string
		p    fatalProgress
	}{
		{"walk", fatalProgress{inPlanned: true}},
		{"worker", fatalProgress{inSent: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tg)
			for _, rel := range []string{"a.log", "b.log", "c/d.log"} {
				e.write(rel, []byte(strings.Repeat(rel+" line\n", 100)))
			}
			e.opts.Progress = tc.p
			_, err := e.tryPush()
			var fe *store.FatalError
			if !errors.Is(err, syncer.ErrManifest) || !errors.As(err, &fe) {
				t.Errorf("push: %v, want ErrManifest and a FatalError", err)
			}
		})
	}
}

// TestWatchStopsOnFatal: watch does not retry a push that a fatal error of
// the manifest's database ended; it returns the error.
func TestWatchStopsOnFatal(t *testing.T) {
	tg := startSyncerServer(t, nil)
	e := newEnv(t, tg)
	e.write("a.log", []byte("line\n"))
	e.opts.Progress = fatalProgress{inPlanned: true}
	m, err := store.Open(store.Dir(e.state, testAgent))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	a, err := syncer.NewAgent(e.opts, m)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	connect := func() syncer.Conns {
		return syncer.NewConns(ftpfs.ClientConfig{Server: tg.url, User: tg.user, Password: tg.pass}, 1)
	}
	pushes := 0
	err = a.Watch(ctx, time.Hour, connect, func(syncer.Summary, error) { pushes++ })
	var fe *store.FatalError
	if !errors.As(err, &fe) || pushes != 1 || ctx.Err() != nil {
		t.Errorf("watch: %v after %d pushes, want the FatalError after one", err, pushes)
	}
}
