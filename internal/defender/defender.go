// Package defender counts failed logins wherever they happen (FTP, the web
// viewer) and bans the addresses they come from, in the manner of ProFTPD's
// mod_ban and SFTPGo's defender. It also bounds the password checks that
// run at once, so that a flood of guesses delays logins instead of taking
// every CPU from transfers.
//
// One Defender is shared by every service of a process: a failure on one
// counts on all, and a banned address is refused by all. It imports none
// of syncer's other packages but statelock (for the bans file).
package defender

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
)

// Defaults of Config, applied when a field is left at its zero value.
const (
	DefaultBanAfter  = 5
	DefaultWindow    = 10 * time.Minute
	DefaultBanFor    = 15 * time.Minute
	DefaultFailDelay = time.Second
)

// Errors of Check.
var (
	// ErrBanned: the address is banned; the password was not checked.
	ErrBanned = errors.New("address banned after repeated failed logins")
	// ErrBusy: no password check could start before the context ended
	// (too many at once); the password was not checked.
	ErrBusy = errors.New("too many logins in progress")
)

// Config configures a Defender. Zero values mean the defaults.
type Config struct {
	// BanAfter failed logins from one address within Window ban that
	// address for BanFor. A negative BanAfter disables bans (failures are
	// still delayed and checks still bounded).
	BanAfter       int
	Window, BanFor time.Duration
	// AccountAfter, if positive, is a number of failed logins for one
	// account within Window (from any addresses) that throttles the
	// password checks of that account to one a second, except from
	// addresses that logged in to it successfully since the Defender was
	// made. It is off by default: it slows a guesser spread over many
	// addresses, but the same guesser then also delays the account's own
	// agents after a restart (when every address is new). Failures per
	// account are counted either way (AccountFailures).
	AccountAfter int
	// FailDelay is how long Check waits before it reports a failure (not
	// holding a check slot). Negative disables the delay.
	FailDelay time.Duration
	// Verifiers bounds the password checks that run at once; 0 means
	// runtime.NumCPU(). Others wait in line until their context ends.
	Verifiers int
	// Now is the clock; nil means time.Now. Tests set it.
	Now func() time.Time
}

// Ban is one banned address.
type Ban struct {
	// Addr is the banned IP address, in its canonical text form.
	Addr string `json:"addr"`
	// Until is when the ban ends.
	Until time.Time `json:"until"`
	// Reason says why: the service and the failure count, or "manual".
	Reason string `json:"reason,omitempty"`
}

// Event is what a listener registered with OnChange receives: a ban that
// started (Lifted false) or one that was lifted before its end (Lifted
// true; bans that simply expire send nothing).
type Event struct {
	Ban    Ban
	Lifted bool
}

// Defender is the shared record of failed logins and bans. Create it with
// New; its methods are safe for concurrent use.
type Defender struct {
	cfg  Config
	gate gate

	mu        sync.Mutex
	addrFails map[string][]time.Time
	acctFails map[string][]time.Time
	acctSlow  map[string]time.Time            // account -> next time a throttled check may start
	good      map[string]map[string]time.Time // account -> address -> last success
	bans      map[string]Ban
	listeners map[int]func(Event)
	nextID    int
	calls     int
}

// New returns a Defender with cfg's settings; errors name the bad field.
func New(cfg Config) (*Defender, error) {
	bad := func(field string, v any) error {
		return fmt.Errorf("defender: Config.%s %v: must not be negative", field, v)
	}
	switch {
	case cfg.Window < 0:
		return nil, bad("Window", cfg.Window)
	case cfg.BanFor < 0:
		return nil, bad("BanFor", cfg.BanFor)
	case cfg.Verifiers < 0:
		return nil, bad("Verifiers", cfg.Verifiers)
	}
	if cfg.BanAfter == 0 {
		cfg.BanAfter = DefaultBanAfter
	}
	if cfg.Window == 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.BanFor == 0 {
		cfg.BanFor = DefaultBanFor
	}
	if cfg.FailDelay == 0 {
		cfg.FailDelay = DefaultFailDelay
	}
	if cfg.Verifiers == 0 {
		cfg.Verifiers = runtime.NumCPU()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Defender{
		cfg:       cfg,
		gate:      gate{free: cfg.Verifiers},
		addrFails: map[string][]time.Time{},
		acctFails: map[string][]time.Time{},
		acctSlow:  map[string]time.Time{},
		good:      map[string]map[string]time.Time{},
		bans:      map[string]Ban{},
		listeners: map[int]func(Event){},
	}, nil
}

// CanonicalAddr returns the canonical text of an IP address given as
// "IP", "IP:PORT" or "[IP]:PORT" (IPv4-mapped IPv6 becomes IPv4), or an
// error for anything else.
func CanonicalAddr(s string) (string, error) {
	if h, _, err := net.SplitHostPort(s); err == nil {
		s = h
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	if err != nil {
		return "", fmt.Errorf("not an IP address: %q", s)
	}
	return a.Unmap().WithZone("").String(), nil
}

// key is addr's canonical form, or addr itself when it is not an IP (so a
// caller's odd address still gets counted, under its own name).
func key(addr string) string {
	if k, err := CanonicalAddr(addr); err == nil {
		return k
	}
	return addr
}

// Banned reports whether addr (IP or IP:PORT) is banned, and until when.
func (d *Defender) Banned(addr string) (until time.Time, banned bool) {
	k := key(addr)
	d.mu.Lock()
	defer d.mu.Unlock()
	b, ok := d.bans[k]
	if !ok {
		return time.Time{}, false
	}
	if !d.cfg.Now().Before(b.Until) {
		delete(d.bans, k)
		return time.Time{}, false
	}
	return b.Until, true
}

// Failed records a failed login from addr for account on service ("ftp",
// "http"); account may be "". It reports the ban this failure started, if
// any; listeners hear of it before Failed returns.
func (d *Defender) Failed(addr, account, service string) (ban Ban, started bool) {
	k := key(addr)
	now := d.cfg.Now()
	d.mu.Lock()
	d.calls++
	if d.calls%1024 == 0 {
		d.sweep(now)
	}
	if account != "" {
		d.acctFails[account] = recent(d.acctFails[account], now, d.cfg.Window, true)
	}
	if d.cfg.BanAfter < 0 {
		d.mu.Unlock()
		return Ban{}, false
	}
	fails := recent(d.addrFails[k], now, d.cfg.Window, true)
	if len(fails) < d.cfg.BanAfter {
		d.addrFails[k] = fails
		d.mu.Unlock()
		return Ban{}, false
	}
	delete(d.addrFails, k)
	ban = Ban{Addr: k, Until: now.Add(d.cfg.BanFor),
		Reason: fmt.Sprintf("%d failed logins within %s (last: %s)", len(fails), d.cfg.Window, service)}
	d.bans[k] = ban
	ls := d.listenersLocked()
	d.mu.Unlock()
	for _, l := range ls {
		l(Event{Ban: ban})
	}
	return ban, true
}

// AccountFailures is the number of failed logins for account within the
// window, from any addresses.
func (d *Defender) AccountFailures(account string) int {
	now := d.cfg.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	fails := recent(d.acctFails[account], now, d.cfg.Window, false)
	if len(fails) == 0 {
		delete(d.acctFails, account)
	} else {
		d.acctFails[account] = fails
	}
	return len(fails)
}

// Succeeded records a successful login from addr to account: the address
// is then trusted for that account when the account is throttled, and its
// failure count is cleared.
func (d *Defender) Succeeded(addr, account, service string) {
	k := key(addr)
	now := d.cfg.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.addrFails, k)
	if account == "" {
		return
	}
	m := d.good[account]
	if m == nil {
		m = map[string]time.Time{}
		d.good[account] = m
	}
	m[k] = now
}

// recent keeps the times within window of now and, with add, appends now.
func recent(ts []time.Time, now time.Time, window time.Duration, add bool) []time.Time {
	out := ts[:0]
	for _, t := range ts {
		if now.Sub(t) < window {
			out = append(out, t)
		}
	}
	if add {
		out = append(out, now)
	}
	return out
}

// goodFor is how long a successful login keeps an address trusted for
// its account.
const goodFor = 7 * 24 * time.Hour

// sweep drops expired entries so that the maps stay bounded by what was
// seen within one window. d.mu is held.
func (d *Defender) sweep(now time.Time) {
	for k, ts := range d.addrFails {
		if len(recent(ts, now, d.cfg.Window, false)) == 0 {
			delete(d.addrFails, k)
		}
	}
	for k, ts := range d.acctFails {
		if len(recent(ts, now, d.cfg.Window, false)) == 0 {
			delete(d.acctFails, k)
		}
	}
	for k, t := range d.acctSlow {
		if now.After(t) {
			delete(d.acctSlow, k)
		}
	}
	for acct, m := range d.good {
		for a, t := range m {
			if now.Sub(t) > goodFor {
				delete(m, a)
			}
		}
		if len(m) == 0 {
			delete(d.good, acct)
		}
	}
	for k, b := range d.bans {
		if !now.Before(b.Until) {
			delete(d.bans, k)
		}
	}
}

// Check runs verify, a password check, for a login from addr to account
// on service, under the defender's rules:
//   - a banned address gets ErrBanned at once, and again if it was banned
//     while the check waited for its turn: verify is not run;
//   - at most Config.Verifiers checks run at once; the others wait in line
//     until ctx ends (the caller's login deadline), then get ErrBusy; the
//     checks of addresses with recent failures wait behind the others, so
//     that a guessing flood delays its own guesses before an agent's login;
//   - with Config.AccountAfter, a throttled account gets one check a
//     second from addresses that never logged in to it;
//   - a failure of verify is recorded (Failed) and reported after
//     Config.FailDelay; a success is recorded (Succeeded).
//
// It returns verify's error, ErrBanned, ErrBusy or ctx's error.
func (d *Defender) Check(ctx context.Context, addr, account, service string, verify func() error) error {
	if _, banned := d.Banned(addr); banned {
		return ErrBanned
	}
	if err := d.throttle(ctx, addr, account); err != nil {
		return err
	}
	if !d.gate.acquire(ctx, d, addr, account) {
		return ErrBusy
	}
	// Banned while in line: this guess is not evaluated either.
	if _, banned := d.Banned(addr); banned {
		d.gate.release(d)
		return ErrBanned
	}
	err := verify()
	d.gate.release(d)
	if err == nil {
		d.Succeeded(addr, account, service)
		return nil
	}
	d.Failed(addr, account, service)
	if d.cfg.FailDelay > 0 {
		t := time.NewTimer(d.cfg.FailDelay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	return err
}

// suspect reports whether a check from addr for account goes to the back
// of the line: the address failed recently, or is banned, and never
// logged in to the account. It takes d.mu, never held while gate.mu is
// taken.
func (d *Defender) suspect(addr, account string) bool {
	k := key(addr)
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, trusted := d.good[account][k]; trusted && account != "" {
		return false
	}
	_, banned := d.bans[k]
	return banned || len(d.addrFails[k]) > 0
}

// gate admits a bounded number of password checks at once. A freed slot
// goes to the first waiter whose address is clean at that moment (see
// suspect), else to the first waiter: a flood's guesses, queued while
// their addresses were still clean, fall behind an agent's login as soon
// as they start failing.
type gate struct {
	mu      sync.Mutex
	free    int
	waiters []*waiter
}

type waiter struct {
	ch            chan struct{}
	addr, account string
}

// acquire waits for a slot until ctx ends; it reports whether it got one.
func (g *gate) acquire(ctx context.Context, d *Defender, addr, account string) bool {
	g.mu.Lock()
	if g.free > 0 {
		g.free--
		g.mu.Unlock()
		return true
	}
	w := &waiter{ch: make(chan struct{}), addr: addr, account: account}
	g.waiters = append(g.waiters, w)
	g.mu.Unlock()
	select {
	case <-w.ch:
		return true
	case <-ctx.Done():
	}
	g.mu.Lock()
	if i := slices.Index(g.waiters, w); i >= 0 {
		g.waiters = slices.Delete(g.waiters, i, i+1)
		g.mu.Unlock()
		return false
	}
	g.mu.Unlock()
	// Granted as ctx ended: hand the slot on.
	g.release(d)
	return false
}

// release frees a slot, or hands it to the waiter that goes first.
func (g *gate) release(d *Defender) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.waiters) == 0 {
		g.free++
		return
	}
	i := slices.IndexFunc(g.waiters, func(w *waiter) bool { return !d.suspect(w.addr, w.account) })
	i = max(i, 0)
	w := g.waiters[i]
	g.waiters = slices.Delete(g.waiters, i, i+1)
	close(w.ch)
}

// waiting is the number of checks in line.
func (g *gate) waiting() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.waiters)
}

// throttle waits for a throttled account's next check slot (see
// Config.AccountAfter), or returns ErrBusy when ctx ends first.
func (d *Defender) throttle(ctx context.Context, addr, account string) error {
	if account == "" || d.cfg.AccountAfter <= 0 {
		return nil
	}
	k := key(addr)
	now := d.cfg.Now()
	d.mu.Lock()
	if _, trusted := d.good[account][k]; trusted {
		d.mu.Unlock()
		return nil
	}
	fails := recent(d.acctFails[account], now, d.cfg.Window, false)
	d.acctFails[account] = fails
	if len(fails) < d.cfg.AccountAfter {
		d.mu.Unlock()
		return nil
	}
	at := d.acctSlow[account]
	if at.Before(now) {
		at = now
	}
	d.acctSlow[account] = at.Add(time.Second)
	d.mu.Unlock()
	wait := at.Sub(now)
	if wait <= 0 {
		return nil
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
		return ErrBusy
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ErrBusy
	}
}

// Ban bans addr until the given time for reason (an operator's or a
// restored ban). It returns an error for an address that is not an IP.
func (d *Defender) Ban(addr string, until time.Time, reason string) error {
	k, err := CanonicalAddr(addr)
	if err != nil {
		return fmt.Errorf("ban: %w", err)
	}
	b := Ban{Addr: k, Until: until, Reason: reason}
	d.mu.Lock()
	d.bans[k] = b
	delete(d.addrFails, k)
	ls := d.listenersLocked()
	d.mu.Unlock()
	for _, l := range ls {
		l(Event{Ban: b})
	}
	return nil
}

// Unban lifts addr's ban, and forgets its failures; it reports whether
// there was a ban to lift.
func (d *Defender) Unban(addr string) bool {
	k := key(addr)
	now := d.cfg.Now()
	d.mu.Lock()
	b, ok := d.bans[k]
	delete(d.bans, k)
	delete(d.addrFails, k)
	ok = ok && now.Before(b.Until)
	var ls []func(Event)
	if ok {
		ls = d.listenersLocked()
	}
	d.mu.Unlock()
	for _, l := range ls {
		l(Event{Ban: b, Lifted: true})
	}
	return ok
}

// Bans lists the bans in force, sorted by address.
func (d *Defender) Bans() []Ban {
	now := d.cfg.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]Ban, 0, len(d.bans))
	for _, b := range d.bans {
		if now.Before(b.Until) {
			out = append(out, b)
		}
	}
	slices.SortFunc(out, func(a, b Ban) int { return strings.Compare(a.Addr, b.Addr) })
	return out
}

// OnChange registers l to hear of every ban that starts and every ban that
// is lifted (not of bans that expire). l is called synchronously, outside
// the defender's lock, by the goroutine that caused the change: it must
// return quickly and may call the Defender. remove unregisters it.
func (d *Defender) OnChange(l func(Event)) (remove func()) {
	d.mu.Lock()
	id := d.nextID
	d.nextID++
	d.listeners[id] = l
	d.mu.Unlock()
	return func() {
		d.mu.Lock()
		delete(d.listeners, id)
		d.mu.Unlock()
	}
}

func (d *Defender) listenersLocked() []func(Event) {
	ids := make([]int, 0, len(d.listeners))
	for id := range d.listeners {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := make([]func(Event), 0, len(ids))
	for _, id := range ids {
		out = append(out, d.listeners[id])
	}
	return out
}
