package syncer

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/syncer-dev/syncer/ftpfs"
)

// TestWatchBackoff: a dead server is retried within seconds to a minute;
// a refused login, certificate or tree waits minutes (never often enough
// to add up to the server's ban of 5 failures in 10 minutes); a ban is
// waited out; a success starts over.
func TestWatchBackoff(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	login := fmt.Errorf("connect: %w", ftpfs.ErrClientLogin)
	down := fmt.Errorf("connect: %w", ftpfs.ErrUnreachable)
	b := newBackoff()
	var got []time.Duration
	for _, err := range []error{down, down, down, login, login, login, login, down} {
		d, _ := b.next(err, now)
		got = append(got, d)
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Minute, 10 * time.Minute, 20 * time.Minute, 30 * time.Minute, time.Second}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("waits %v, want %v", got, want)
	}
	until := now.Add(14 * time.Minute)
	if d, why := b.next(fmt.Errorf("x: %w", &ftpfs.BannedError{Until: until}), now); d != 14*time.Minute+time.Second || why == "" {
		t.Errorf("ban until +14m: wait %v (%q)", d, why)
	}
	if d, _ := b.next(&ftpfs.BannedError{}, now); d != MaxRefusedRetry {
		t.Errorf("ban without an end: wait %v, want %v", d, MaxRefusedRetry)
	}
	for _, err := range []error{fmt.Errorf("x: %w", ftpfs.ErrCertificate), &DeniedError{AgentID: "a", Dir: "/a/", Err: ftpfs.ErrPermission}} {
		b.reset()
		if d, _ := b.next(err, now); d != RefusedRetry {
			t.Errorf("%v: wait %v, want %v", err, d, RefusedRetry)
		}
		if !IsConnectError(err) {
			t.Errorf("%v is not a connect error", err)
		}
	}
	if errors.Is(down, ftpfs.ErrBanned) {
		t.Error("an unreachable server matches ErrBanned")
	}
}
