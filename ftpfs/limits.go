package ftpfs

import (
	"context"

	"github.com/syncer-dev/syncer/ftpfs/accounts"
	"golang.org/x/time/rate"
)

// limiterSet is the server's view of the per-account token buckets
// (accounts.Limiters), its own or ServerConfig.Limiters shared with the
// web viewer.
type limiterSet struct{ ls *accounts.Limiters }

func (s *limiterSet) init(shared *accounts.Limiters) {
	s.ls = shared
	if s.ls == nil {
		s.ls = accounts.NewLimiters()
	}
}

// get returns the bucket for name's uploads or downloads at bytesPerSec,
// or nil for unlimited (see accounts.Limiters.Get).
func (s *limiterSet) get(name string, upload bool, bytesPerSec accounts.Rate) *rate.Limiter {
	return s.ls.Get(name, upload, bytesPerSec)
}

// waitN takes n bytes' worth of tokens, in bursts, until ctx ends.
func waitN(ctx context.Context, l *rate.Limiter, n int) error { return accounts.WaitN(ctx, l, n) }
