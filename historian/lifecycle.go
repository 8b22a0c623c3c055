package historian

import (
	"context"
	"log/slog"
	"time"
)

// A stage is one component of the historian. start brings it up and
// returns how to stop it (nil: nothing to stop); ctx bounds the start
// only, a component's own work runs until its stop. stop is given a
// context that bounds the orderly stop: when it runs out, the component
// cuts what is still open.
type stage struct {
	name  string
	start func(ctx context.Context) (stop func(context.Context) error, err error)
}

// started is a stage that is up, with its stop.
type started struct {
	name string
	stop func(context.Context) error
}

// startAll starts stages in order. When one fails, or ctx is cancelled
// between two starts, it stops the ones already started in the reverse
// order (within stopTimeout) and returns the start's error.
func startAll(ctx context.Context, stages []stage, stopTimeout time.Duration, log *slog.Logger) ([]started, error) {
	var up []started
	for _, s := range stages {
		err := ctx.Err()
		var stop func(context.Context) error
		if err == nil {
			stop, err = s.start(ctx)
		}
		if err != nil {
			stopCtx, cancel := context.WithTimeout(context.Background(), stopTimeout)
			defer cancel()
			if serr := stopAll(stopCtx, up, log); serr != nil {
				log.Error("stop after a failed start", "err", serr)
			}
			return nil, err
		}
		log.Debug("started", "component", s.name)
		up = append(up, started{name: s.name, stop: stop})
	}
	return up, nil
}

// stopAll stops every started stage in the reverse order, also after one
// fails to stop, and returns the first error (as the component put it:
// each names what it stopped).
func stopAll(ctx context.Context, up []started, log *slog.Logger) error {
	var first error
	for i := len(up) - 1; i >= 0; i-- {
		s := up[i]
		if s.stop == nil {
			continue
		}
		if err := s.stop(ctx); err != nil {
			log.Error("stop failed", "component", s.name, "err", err)
			if first == nil {
				first = err
			}
			continue
		}
		log.Debug("stopped", "component", s.name)
	}
	return first
}
