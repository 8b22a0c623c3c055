package ftpfs

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// What the server logs, and at which level: a login or an upload is DEBUG
// (a busy historian makes thousands an hour, most of them agents'
// heartbeats); every SummaryEvery an INFO line sums them up; refusals,
// failures and bans are WARN.

// DefaultSummaryEvery is how often the server logs its activity summary.
const DefaultSummaryEvery = time.Minute

// activityCounts are what the periodic summary reports.
type activityCounts struct {
	uploads, uploadBytes, uploadFailures, logins atomic.Int64
	mu                                           sync.Mutex
	accounts                                     map[string]struct{}
	start                                        time.Time // of the period being counted
}

// since is when the period being counted began.
func (a *activityCounts) since() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.start
}

func (a *activityCounts) login(user string) {
	a.logins.Add(1)
	a.mu.Lock()
	if a.accounts == nil {
		a.accounts = map[string]struct{}{}
	}
	a.accounts[user] = struct{}{}
	a.mu.Unlock()
}

// summarize logs and resets the counts, when anything happened.
func (a *activityCounts) summarize(log *slog.Logger, since time.Duration) {
	uploads, bytes, failures, logins := a.uploads.Swap(0), a.uploadBytes.Swap(0), a.uploadFailures.Swap(0), a.logins.Swap(0)
	a.mu.Lock()
	accounts := len(a.accounts)
	a.accounts, a.start = nil, time.Now()
	a.mu.Unlock()
	if uploads+failures+logins == 0 {
		return
	}
	log.Info("activity", "period", since.Round(time.Second), "uploads", uploads, "bytes", bytes,
		"upload_failures", failures, "logins", logins, "accounts", accounts)
}

// summarizer logs the activity summary every s.cfg.SummaryEvery until
// stop, then closes done (Close logs the last one).
func (s *Server) summarizer(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	every := s.cfg.SummaryEvery
	if every < 0 {
		return
	}
	if every == 0 {
		every = DefaultSummaryEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			s.counts.summarize(s.log, every)
		}
	}
}

// quietDisconnects is the handler ftpserverlib logs through: its warnings
// about a connection the client had already closed (a TLS close_notify it
// could not send, a reset, a broken pipe) are DEBUG, since that is how
// sessions end; real warnings keep their level.
type quietDisconnects struct{ slog.Handler }

func (h quietDisconnects) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelWarn && endedByPeer(r) {
		r.Level = slog.LevelDebug
		if !h.Handler.Enabled(ctx, r.Level) {
			return nil
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h quietDisconnects) WithAttrs(as []slog.Attr) slog.Handler {
	return quietDisconnects{h.Handler.WithAttrs(as)}
}

func (h quietDisconnects) WithGroup(name string) slog.Handler {
	return quietDisconnects{h.Handler.WithGroup(name)}
}

// endedByPeer reports a record whose "err" says the peer had closed the
// connection.
func endedByPeer(r slog.Record) bool {
	found := false
	r.Attrs(func(a slog.Attr) bool {
		if a.Key != "err" {
			return true
		}
		err, ok := a.Value.Any().(error)
		if !ok {
			return false
		}
		if errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, syscall.EPIPE) ||
			errors.Is(err, syscall.ECONNRESET) {
			found = true
			return false
		}
		msg := err.Error()
		for _, s := range []string{"close_notify", "use of closed network connection", "broken pipe", "connection reset by peer"} {
			if strings.Contains(msg, s) {
				found = true
			}
		}
		return false
	})
	return found
}
