package ftpfs

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// accepted counts the connections the fake server took.
func (f *fakeFTP) accepted() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.conns)
}

// TestPoolFailFastFirstDial: the first dial of a FailFast pool is its only
// try, concurrent Gets wait for it instead of dialling, and its error is
// returned to every later Get without a slot being lost.
func TestPoolFailFastFirstDial(t *testing.T) {
	fake := startFakeFTP(t, fakeLoginFails)
	p := NewPool(fake.config(), 2)
	p.FailFast = true
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	errs := make([]error, 4)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := p.Get(ctx)
			if err == nil {
				p.Put(c, nil)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, ErrClientLogin) || !strings.HasPrefix(err.Error(), "connect to ftp://") {
			t.Errorf("Get %d: got %v, want a \"connect to\" error matching ErrClientLogin", i, err)
		}
	}
	if n := fake.accepted(); n != 1 {
		t.Errorf("the server saw %d connections, want 1 (one dial, not retried)", n)
	}
	// More Gets than slots: none of the failed ones kept a slot.
	for range 3 {
		if _, err := p.Get(ctx); !errors.Is(err, ErrClientLogin) {
			t.Fatalf("Get after the failed first dial: got %v, want ErrClientLogin", err)
		}
	}
}

// TestPoolFailFastUnreachable: an unreachable server is reported by the
// first Get at once, where a pool without FailFast retries until ctx ends.
func TestPoolFailFastUnreachable(t *testing.T) {
	ln := listen(t)
	cfg := ClientConfig{Server: "ftp://" + ln.Addr().String(), DialTimeout: time.Second}
	_ = ln.Close()
	for _, failFast := range []bool{true, false} {
		p := NewPool(cfg, 1)
		p.FailFast = failFast
		p.MinBackoff, p.MaxBackoff = 10*time.Millisecond, 20*time.Millisecond
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		_, err := p.Get(ctx)
		retried := ctx.Err() != nil
		cancel()
		_ = p.Close()
		if !errors.Is(err, ErrUnreachable) {
			t.Errorf("FailFast %v: got %v, want ErrUnreachable", failFast, err)
		}
		if retried == failFast {
			t.Errorf("FailFast %v: Get retried until its context ended: %v; want retries only without FailFast", failFast, retried)
		}
	}
}

// TestPoolFailFastThenReuse: after the first dial succeeded, the first
// client is pooled like any other: reused after Put, counted in size.
func TestPoolFailFastThenReuse(t *testing.T) {
	fake := startFakeFTP(t, fakeStallData) // logs in; no transfers here
	p := NewPool(fake.config(), 2)
	p.FailFast = true
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c1, err := p.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := p.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p.Put(c1, nil)
	c3, err := p.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c3 != c1 {
		t.Error("Get after Put dialled a new client instead of reusing the idle one")
	}
	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancelShort()
	if c, err := p.Get(short); err == nil {
		p.Put(c, nil)
		t.Error("a third Get of a pool of 2 succeeded while two clients were out")
	}
	p.Put(c2, nil)
	p.Put(c3, nil)
	if n := fake.accepted(); n != 2 {
		t.Errorf("the server saw %d connections, want 2", n)
	}
}
