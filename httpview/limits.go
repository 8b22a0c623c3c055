package httpview

import (
	"context"
	"net/http"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"

	"github.com/syncer-dev/syncer/ftpfs/accounts"
)

// Two limits on what the viewer spends: the bytes of archived files it
// sends move at the download rate of the account that asks (rateLimited),
// and the operations that cost CPU and memory in proportion to a file or
// a tree, not to the request, run a bounded number at once (heavyGate).

// rateLimited makes the rest of the request send at the viewer's download
// rate: the account's own MaxDownloadRate, else Config.MaxDownloadRate;
// a viewer without an account (a loopback viewer without login) gets the
// server's rate, in one bucket shared by all such viewers. The bucket is
// the account's in Config.Limiters, the one the FTP server takes its
// tokens from when the historian shares it: an account has one budget,
// whichever door it downloads through. Everything the response carries
// counts (JSON around a window of lines too): it is what leaves the
// machine on the account's behalf.
func (s *Server) rateLimited(c *gin.Context) {
	if lim := s.downloadLimiter(s.viewerOf(c)); lim != nil {
		c.Writer = &rateWriter{ResponseWriter: c.Writer, ctx: c.Request.Context(), lim: lim}
	}
	c.Next()
}

// downloadLimiter is v's download bucket, nil when unlimited.
func (s *Server) downloadLimiter(v viewer) *rate.Limiter {
	r := s.cfg.MaxDownloadRate
	if v.MaxDownloadRate > 0 {
		r = v.MaxDownloadRate
	}
	return s.limiters.Get(v.Name, false, r)
}

// rateWriter takes a token per byte before it writes it. It offers no
// io.ReaderFrom, so a limited /raw does not reach sendfile(2), which
// would send the file past the bucket.
type rateWriter struct {
	gin.ResponseWriter
	ctx context.Context
	lim *rate.Limiter
}

func (w *rateWriter) Write(p []byte) (int, error) {
	done := 0
	for len(p) > 0 {
		k := min(len(p), max(w.lim.Burst(), 1))
		if err := accounts.WaitN(w.ctx, w.lim, k); err != nil {
			return done, err
		}
		n, err := w.ResponseWriter.Write(p[:k])
		done += n
		if err != nil {
			return done, err
		}
		p = p[k:]
	}
	return done, nil
}

func (w *rateWriter) WriteString(s string) (int, error) { return w.Write([]byte(s)) }

// The heavy operations' bound. A heavy operation reads a whole file or
// tree for one request, with CPU for decompression, regular expressions
// or compression: a .gz file view, a content search, a search in a file,
// a tar.gz or zip download. Each is bounded per request (time budgets,
// result limits); heavyGate bounds them overall, so that a few browsers
// (or one script) cannot take every CPU and the rest of the viewer (pages,
// listings, /raw) keeps answering.
const (
	// heavyQueuePerSlot sizes the line of heavy requests waiting for a
	// slot: a short one, so that a burst is smoothed but a flood is
	// refused at once.
	heavyQueuePerSlot = 2
	// heavyWait is how long a queued heavy request waits for a slot.
	heavyWait = 3 * time.Second
	// heavyRetry is the Retry-After of a refused heavy request.
	heavyRetry = 5 * time.Second
)

// heavyGate admits a bounded number of heavy operations at once, with a
// short line of waiters behind them.
type heavyGate struct {
	slots    chan struct{}
	queued   atomic.Int64
	maxQueue int64
	wait     time.Duration
}

// newHeavyGate bounds heavy operations to n at once; n <= 0 means the
// number of CPUs, at least 2 (one long download must not stop every
// search on a one-CPU machine).
func newHeavyGate(n int) *heavyGate {
	if n <= 0 {
		n = max(runtime.NumCPU(), 2)
	}
	return &heavyGate{slots: make(chan struct{}, n), maxQueue: int64(n * heavyQueuePerSlot), wait: heavyWait}
}

// acquire takes a slot, waiting in line up to g.wait; it reports false
// when the line is full, the wait ran out or ctx ended.
func (g *heavyGate) acquire(ctx context.Context) bool {
	select {
	case g.slots <- struct{}{}:
		return true
	default:
	}
	if g.queued.Add(1) > g.maxQueue {
		g.queued.Add(-1)
		return false
	}
	defer g.queued.Add(-1)
	t := time.NewTimer(g.wait)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

func (g *heavyGate) release() { <-g.slots }

// heavy runs the rest of the request in a slot of the heavy operations'
// bound, or answers 503 with a Retry-After.
func (s *Server) heavy(c *gin.Context) {
	if !s.enterHeavy(c) {
		return
	}
	defer s.heavyOps.release()
	c.Next()
}

// enterHeavy takes a heavy slot for c (release it with
// s.heavyOps.release), or answers 503 and reports false.
func (s *Server) enterHeavy(c *gin.Context) bool {
	if s.heavyOps.acquire(c.Request.Context()) {
		return true
	}
	if c.Request.Context().Err() != nil {
		c.Abort() // the client left
		return false
	}
	s.log.Warn("http heavy operation refused: the bound is full", "path", c.Request.URL.Path, "bound", cap(s.heavyOps.slots))
	retryAfter(c, heavyRetry)
	apiError(c, http.StatusServiceUnavailable, "busy with other searches, compressed views and downloads; try again in a few seconds")
	return false
}
