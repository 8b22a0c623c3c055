package accounts

import (
	"context"
	"sync"

	"golang.org/x/time/rate"
)

// Limiters holds one upload and one download token bucket per account.
// One Limiters shared by every door an account comes through (the FTP
// server, the web viewer) gives the account one budget: a download over
// FTP and one from the web together move at the account's rate, not
// twice it. Create it with NewLimiters; it is safe for concurrent use.
//
// The key is the account name; the empty name is the bucket of viewers
// without an account (a loopback web viewer without login), a name no
// account can have.
type Limiters struct {
	mu sync.Mutex
	m  map[string]*accountLimiters
}

type accountLimiters struct {
	up, down *rate.Limiter
}

// NewLimiters returns an empty set of buckets.
func NewLimiters() *Limiters { return &Limiters{m: map[string]*accountLimiters{}} }

// Get returns the bucket of name's uploads (upload true) or downloads at
// bytesPerSec, or nil for unlimited (bytesPerSec <= 0). Every caller gets
// the same bucket for the same name and direction; a changed rate applies
// to the existing bucket (a reloaded users file takes effect on the
// transfers already running).
func (ls *Limiters) Get(name string, upload bool, bytesPerSec Rate) *rate.Limiter {
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
	burst := BurstFor(bytesPerSec)
	if *slot == nil {
		*slot = rate.NewLimiter(rate.Limit(bytesPerSec), burst)
	} else if (*slot).Limit() != rate.Limit(bytesPerSec) {
		(*slot).SetLimit(rate.Limit(bytesPerSec))
		(*slot).SetBurst(burst)
	}
	return *slot
}

// BurstFor sizes a bucket: about 1/32 s of traffic, so that the bytes that
// pass without waiting (one burst) stay a small fraction of what a few
// seconds move, bounded so that tiny rates still make progress and large
// ones do not wake up too often.
func BurstFor(r Rate) int {
	b := int64(r) / 32
	lo := min(int64(r), 4<<10)
	b = max(b, lo)
	b = min(b, 256<<10)
	return int(max(b, 1))
}

// WaitN takes n bytes' worth of tokens from l, a burst at a time, until
// ctx ends.
func WaitN(ctx context.Context, l *rate.Limiter, n int) error {
	for n > 0 {
		k := min(n, l.Burst())
		if err := l.WaitN(ctx, k); err != nil {
			return err
		}
		n -= k
	}
	return nil
}
