package defender

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var errWrong = errors.New("wrong password")

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTest(t *testing.T, cfg Config) (*Defender, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	if cfg.Now == nil {
		cfg.Now = c.now
	}
	if cfg.FailDelay == 0 {
		cfg.FailDelay = -1
	}
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d, c
}

func TestBanAfterFailuresAndExpiry(t *testing.T) {
	d, c := newTest(t, Config{BanAfter: 3, Window: time.Minute, BanFor: time.Hour})
	var events []Event
	d.OnChange(func(ev Event) { events = append(events, ev) })
	for i := range 2 {
		if _, started := d.Failed("10.0.0.1:4000", "node1", "ftp"); started {
			t.Fatalf("failure %d started a ban", i+1)
		}
	}
	// Another address and the port do not matter; IPv4-mapped is the same address.
	d.Failed("10.0.0.2", "node1", "ftp")
	b, started := d.Failed("[::ffff:10.0.0.1]:5000", "node1", "http")
	if !started || b.Addr != "10.0.0.1" {
		t.Fatalf("third failure: ban %+v started %v, want a ban of 10.0.0.1", b, started)
	}
	if _, ok := d.Banned("10.0.0.1:1"); !ok {
		t.Fatal("10.0.0.1 not banned")
	}
	if _, ok := d.Banned("10.0.0.2"); ok {
		t.Fatal("10.0.0.2 banned after one failure")
	}
	if len(events) != 1 || events[0].Lifted || events[0].Ban.Addr != "10.0.0.1" {
		t.Fatalf("listener got %+v, want one ban of 10.0.0.1", events)
	}
	if got := d.Bans(); len(got) != 1 || got[0].Addr != "10.0.0.1" {
		t.Fatalf("Bans() = %+v", got)
	}
	c.add(time.Hour)
	if _, ok := d.Banned("10.0.0.1"); ok {
		t.Fatal("ban did not expire")
	}
	// Failures outside the window do not add up.
	d2, c2 := newTest(t, Config{BanAfter: 2, Window: time.Minute})
	d2.Failed("10.0.0.3", "", "ftp")
	c2.add(2 * time.Minute)
	if _, started := d2.Failed("10.0.0.3", "", "ftp"); started {
		t.Fatal("failures a window apart started a ban")
	}
	off, _ := newTest(t, Config{BanAfter: -1})
	for range 10 {
		if _, started := off.Failed("10.0.0.1", "", "ftp"); started {
			t.Fatal("BanAfter -1 banned")
		}
	}
}

func TestUnbanAndManualBan(t *testing.T) {
	d, _ := newTest(t, Config{BanAfter: 1})
	var lifted atomic.Int32
	d.OnChange(func(ev Event) {
		if ev.Lifted {
			lifted.Add(1)
		}
	})
	d.Failed("10.0.0.1", "", "ftp")
	if !d.Unban("10.0.0.1") || d.Unban("10.0.0.1") {
		t.Fatal("Unban: want true once, then false")
	}
	if lifted.Load() != 1 {
		t.Fatalf("%d lift events, want 1", lifted.Load())
	}
	if err := d.Ban("not-an-ip", time.Now().Add(time.Hour), "manual"); err == nil {
		t.Fatal("Ban of a name: want an error")
	}
}

func TestCheckRefusesBannedWithoutVerifying(t *testing.T) {
	d, _ := newTest(t, Config{BanAfter: 2})
	ctx := context.Background()
	var verified atomic.Int32
	wrong := func() error { verified.Add(1); return errWrong }
	right := func() error { verified.Add(1); return nil }
	for range 2 {
		if err := d.Check(ctx, "10.0.0.1", "node1", "ftp", wrong); !errors.Is(err, errWrong) {
			t.Fatalf("Check = %v, want the verifier's error", err)
		}
	}
	if err := d.Check(ctx, "10.0.0.1", "node1", "ftp", right); !errors.Is(err, ErrBanned) {
		t.Fatalf("right password while banned: %v, want ErrBanned", err)
	}
	if verified.Load() != 2 {
		t.Fatalf("%d passwords checked, want 2 (none after the ban)", verified.Load())
	}
	if err := d.Check(ctx, "10.0.0.2", "node1", "ftp", right); err != nil {
		t.Fatalf("other address: %v", err)
	}
}

// TestCheckBoundsVerifiers: no more than Verifiers checks run at once; a
// check that waited in line past its context gets ErrBusy unevaluated, and
// one whose address was banned while it waited gets ErrBanned.
func TestCheckBoundsVerifiers(t *testing.T) {
	d, _ := newTest(t, Config{BanAfter: 1, Verifiers: 2})
	release := make(chan struct{})
	var running, peak atomic.Int32
	slow := func() error {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-release
		running.Add(-1)
		return nil
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); _ = d.Check(context.Background(), "10.0.0.9", "a", "ftp", slow) }()
	}
	deadline := time.Now().Add(10 * time.Second)
	for running.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("two checks did not start")
		}
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := d.Check(ctx, "10.0.0.3", "a", "ftp", func() error { t.Error("third check ran"); return nil }); !errors.Is(err, ErrBusy) {
		t.Fatalf("third check: %v, want ErrBusy", err)
	}
	// A check in line when its address gets banned is not evaluated.
	done := make(chan error, 1)
	go func() {
		done <- d.Check(context.Background(), "10.0.0.4", "a", "ftp", func() error { t.Error("banned check ran"); return nil })
	}()
	time.Sleep(20 * time.Millisecond) // let it queue; correctness does not depend on it
	d.Failed("10.0.0.4", "a", "ftp")
	close(release)
	wg.Wait()
	if err := <-done; !errors.Is(err, ErrBanned) {
		t.Fatalf("check banned in line: %v, want ErrBanned", err)
	}
	if peak.Load() > 2 {
		t.Fatalf("%d checks ran at once, want at most 2", peak.Load())
	}
}

// TestCheckServesCleanAddressesFirst: when every check slot is taken, a
// check from an address without failures goes before the waiting checks
// of addresses that failed, also those that queued before they failed.
func TestCheckServesCleanAddressesFirst(t *testing.T) {
	d, _ := newTest(t, Config{BanAfter: 100, Verifiers: 1})
	ctx := context.Background()
	hold := make(chan struct{})
	started := make(chan struct{})
	go func() {
		_ = d.Check(ctx, "10.0.0.1", "node1", "ftp", func() error { close(started); <-hold; return nil })
	}()
	<-started
	var mu sync.Mutex
	var order []string
	var wg sync.WaitGroup
	queue := func(addr string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = d.Check(ctx, addr, "node1", "ftp", func() error { mu.Lock(); order = append(order, addr); mu.Unlock(); return nil })
		}()
	}
	queue("10.0.0.66")
	deadline := time.Now().Add(10 * time.Second)
	for d.gate.waiting() < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the guesser's check did not queue")
		}
		time.Sleep(time.Millisecond)
	}
	d.Failed("10.0.0.66", "node1", "ftp") // the guesser fails elsewhere meanwhile
	queue("10.0.0.2")
	for d.gate.waiting() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the clean check did not queue")
		}
		time.Sleep(time.Millisecond)
	}
	close(hold)
	wg.Wait()
	if len(order) != 2 || order[0] != "10.0.0.2" {
		t.Fatalf("checks ran in the order %v, want the clean address first", order)
	}
}

// TestAccountThrottle: many failures for one account from many addresses
// throttle that account's checks from unknown addresses, not from an
// address that logged in to it before.
func TestAccountThrottle(t *testing.T) {
	d, _ := newTest(t, Config{BanAfter: -1, AccountAfter: 3})
	d0, _ := newTest(t, Config{BanAfter: -1})
	for range 50 {
		d0.Failed("10.0.9.9", "node1", "ftp")
	}
	if n := d0.AccountFailures("node1"); n != 50 {
		t.Fatalf("AccountFailures = %d, want 50", n)
	}
	if err := d0.Check(context.Background(), "10.0.9.8", "node1", "ftp", func() error { return nil }); err != nil {
		t.Fatalf("throttle on by default: %v", err)
	}
	ctx := context.Background()
	ok := func() error { return nil }
	if err := d.Check(ctx, "10.0.0.1", "node1", "ftp", ok); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		_ = d.Check(ctx, "10.0.1."+string(rune('1'+i)), "node1", "ftp", func() error { return errWrong })
	}
	// The clock is frozen: a throttled check from a stranger would have to
	// wait a second, past this deadline.
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	_ = d.Check(short, "10.0.2.1", "node1", "ftp", ok) // takes the current slot
	if err := d.Check(short, "10.0.2.2", "node1", "ftp", ok); !errors.Is(err, ErrBusy) {
		t.Fatalf("stranger on a throttled account: %v, want ErrBusy", err)
	}
	if err := d.Check(ctx, "10.0.0.1", "node1", "ftp", ok); err != nil {
		t.Fatalf("known address on a throttled account: %v", err)
	}
	if err := d.Check(ctx, "10.0.2.3", "node2", "ftp", ok); err != nil {
		t.Fatalf("other account: %v", err)
	}
}

// TestFileKeepsBans: a kept file records bans as they start, a second
// process's RemoveFromFile lifts one in the running Defender, and a new
// Defender restores the rest.
func TestFileKeepsBans(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	d, _ := newTest(t, Config{BanAfter: 1, Now: time.Now})
	f, err := KeepFile(d, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d.Failed("10.0.0.1", "", "ftp")
	d.Failed("10.0.0.2", "", "ftp")
	bans, err := ReadFile(path)
	if err != nil || len(bans) != 2 {
		t.Fatalf("ReadFile = %+v, %v; want two bans", bans, err)
	}
	if _, err := RemoveFromFile(path, "10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if _, err := RemoveFromFile(path, "10.0.0.1"); !errors.Is(err, ErrNoBan) {
		t.Fatalf("second remove: %v, want ErrNoBan", err)
	}
	if _, err := RemoveFromFile(path, "bogus"); err == nil {
		t.Fatal("remove of a name: want an error")
	}
	if err := f.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.Banned("10.0.0.1"); ok {
		t.Fatal("ban removed from the file still in force")
	}
	if _, ok := d.Banned("10.0.0.2"); !ok {
		t.Fatal("other ban lifted")
	}
	// Lifted in the Defender: gone from the file.
	d.Failed("10.0.0.3", "", "ftp")
	d.Unban("10.0.0.3")
	d2, _ := newTest(t, Config{Now: time.Now})
	f2, err := KeepFile(d2, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f2.Close()
	if got := d2.Bans(); len(got) != 1 || got[0].Addr != "10.0.0.2" {
		t.Fatalf("restored bans %+v, want 10.0.0.2 only", got)
	}
}

// TestFileReloadKeepsConcurrentBans: bans that start while the file is
// re-read (the historian re-reads it every second) stay in force.
func TestFileReloadKeepsConcurrentBans(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	d, _ := newTest(t, Config{BanAfter: 1, Now: time.Now})
	f, err := KeepFile(d, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stop := make(chan struct{})
	reloaded := make(chan struct{})
	go func() {
		defer close(reloaded)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := f.Reload(); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	const workers, each = 4, 25
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				d.Failed(fmt.Sprintf("10.1.%d.%d", w, i), "", "http")
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-reloaded
	if n := len(d.Bans()); n != workers*each {
		t.Fatalf("%d bans in force, want %d: bans started while the file was re-read were lifted", n, workers*each)
	}
}
