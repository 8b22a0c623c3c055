package historian

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"
)

// recorder is a set of fake components that note when they start and stop.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) note(e string) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// stage is a fake component; startErr fails its start, stopErr its stop.
func (r *recorder) stage(name string, startErr, stopErr error) stage {
	return stage{name: name, start: func(context.Context) (func(context.Context) error, error) {
		if startErr != nil {
			r.note("fail " + name)
			return nil, startErr
		}
		r.note("start " + name)
		return func(context.Context) error {
			r.note("stop " + name)
			return stopErr
		}, nil
	}}
}

var discard = slog.New(slog.DiscardHandler)

// TestStopsInReverseOrder: the historian's components stop in the
// reverse of their start order, so that the web viewer goes first, then
// the FTP server (its last upload events reach the index), then the FUSE
// view, then the index, and last the state directory's lock.
func TestStopsInReverseOrder(t *testing.T) {
	r := &recorder{}
	var stages []stage
	for _, name := range []string{"state", "users", "index", "mount", "ftp", "http"} {
		stages = append(stages, r.stage(name, nil, nil))
	}
	up, err := startAll(context.Background(), stages, time.Second, discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := stopAll(context.Background(), up, discard); err != nil {
		t.Fatal(err)
	}
	want := []string{"start state", "start users", "start index", "start mount", "start ftp", "start http",
		"stop http", "stop ftp", "stop mount", "stop index", "stop users", "stop state"}
	if got := r.got(); !slices.Equal(got, want) {
		t.Errorf("events\n got %q\nwant %q", got, want)
	}
}

// TestFailedStartStopsTheStarted: a component that fails to start stops
// the ones already started, in the reverse order, and never starts the
// rest; its error is Run's.
func TestFailedStartStopsTheStarted(t *testing.T) {
	boom := errors.New("ftp port busy")
	for _, tc := range []struct {
		name  string
		fails string
		want  []string
	}{
		{"first", "state", []string{"fail state"}},
		{"middle", "ftp", []string{"start state", "start index", "start mount", "fail ftp",
			"stop mount", "stop index", "stop state"}},
		{"last", "http", []string{"start state", "start index", "start mount", "start ftp", "fail http",
			"stop ftp", "stop mount", "stop index", "stop state"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{}
			var stages []stage
			for _, name := range []string{"state", "index", "mount", "ftp", "http"} {
				var err error
				if name == tc.fails {
					err = boom
				}
				stages = append(stages, r.stage(name, err, nil))
			}
			up, err := startAll(context.Background(), stages, time.Second, discard)
			if !errors.Is(err, boom) || up != nil {
				t.Errorf("startAll = %v, %v; want nothing started and %v", up, err, boom)
			}
			if got := r.got(); !slices.Equal(got, tc.want) {
				t.Errorf("events\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestStopGoesOnAfterAFailedStop: one component failing to stop does not
// keep the others running; the first failure is reported.
func TestStopGoesOnAfterAFailedStop(t *testing.T) {
	r := &recorder{}
	ftpErr, mountErr := errors.New("ftp stop timed out"), errors.New("mount busy")
	stages := []stage{r.stage("index", nil, nil), r.stage("mount", nil, mountErr), r.stage("ftp", nil, ftpErr), r.stage("http", nil, nil)}
	up, err := startAll(context.Background(), stages, time.Second, discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := stopAll(context.Background(), up, discard); !errors.Is(err, ftpErr) {
		t.Errorf("stopAll = %v, want %v", err, ftpErr)
	}
	want := []string{"start index", "start mount", "start ftp", "start http", "stop http", "stop ftp", "stop mount", "stop index"}
	if got := r.got(); !slices.Equal(got, want) {
		t.Errorf("events\n got %q\nwant %q", got, want)
	}
}

// TestCancelledDuringStart: a context cancelled while the components
// start (Ctrl-C during startup) starts nothing more and stops what is up.
func TestCancelledDuringStart(t *testing.T) {
	r := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	stages := []stage{r.stage("state", nil, nil),
		{name: "index", start: func(context.Context) (func(context.Context) error, error) {
			r.note("start index")
			cancel()
			return func(context.Context) error { r.note("stop index"); return nil }, nil
		}},
		r.stage("ftp", nil, nil)}
	if _, err := startAll(ctx, stages, time.Second, discard); !errors.Is(err, context.Canceled) {
		t.Errorf("startAll = %v, want context.Canceled", err)
	}
	want := []string{"start state", "start index", "stop index", "stop state"}
	if got := r.got(); !slices.Equal(got, want) {
		t.Errorf("events\n got %q\nwant %q", got, want)
	}
}

// TestHistorianStages: the historian's own stages are in the order the
// shutdown needs (stopped from last to first), with the optional ones
// only when configured.
func TestHistorianStages(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want []string
	}{
		{Config{Archive: LocalArchive("a"), State: "s", HTTPAddr: "127.0.0.1:0", Mount: "/mnt"},
			[]string{"state directory", "bans file", "users file", "index", "fuse view", "ftp server", "http server"}},
		{Config{Archive: LocalArchive("a"), State: "s"},
			[]string{"state directory", "bans file", "users file", "index", "ftp server"}},
	} {
		h, err := New(tc.cfg)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range h.stages() {
			got = append(got, s.name)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%+v: stages %q, want %q", tc.cfg, got, tc.want)
		}
	}
}
