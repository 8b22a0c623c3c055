package ftpfs

import (
	"context"
	"sync"

	"github.com/syncer-dev/syncer/ftpfs/accounts"
	"golang.org/x/time/rate"
)

// limiterSet holds one upload and one download token bucket per account,
// shared by all the account's connections.
type limiterSet struct {
	mu sync.Mutex
	m  map[string]*accountLimiters
}

type accountLimiters struct {
	up, down *rate.Limiter
}

func (ls *limiterSet) init() { ls.m = map[string]*accountLimiters{} }

// get returns the bucket for name's uploads or downloads at bytesPerSec,
// or nil for unlimited. A changed rate applies to the existing bucket.
func (ls *limiterSet) get(name string, upload bool, bytesPerSec accounts.Rate) *rate.Limiter {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	al := ls.m[name]
	if al == nil {
		al = &accountLimiters{}
		ls.m[name] = al
	}
	slot := &al.down
	if upload {
		slot = &al.up
	}
	if bytesPerSec <= 0 {
		*slot = nil
		return nil
	}
	burst := burstFor(bytesPerSec)
	if *slot == nil {
		*slot = rate.NewLimiter(rate.Limit(bytesPerSec), burst)
	} else if (*slot).Limit() != rate.Limit(bytesPerSec) {
		(*slot).SetLimit(rate.Limit(bytesPerSec))
		(*slot).SetBurst(burst)
	}
	return *slot
}

// burstFor sizes a bucket: about 1/32 s of traffic, so that the bytes that
// pass without waiting (one burst) stay a small fraction of what a few
// seconds move, bounded so that tiny rates still make progress and large
// ones do not wake up too often.
func burstFor(r accounts.Rate) int {
	b := int64(r) / 32
	lo := min(int64(r), 4<<10)
	b = max(b, lo)
	b = min(b, 256<<10)
	return int(max(b, 1))
}

// waitN takes n bytes' worth of tokens, in bursts, until ctx ends.
func waitN(ctx context.Context, l *rate.Limiter, n int) error {
	for n > 0 {
		k := min(n, l.Burst())
		if err := l.WaitN(ctx, k); err != nil {
			return err
		}
		n -= k
	}
	return nil
}
