package ftpfs

import (
	"strings"
	"testing"
	"time"
)

func TestHelloTextRoundTrip(t *testing.T) {
	now := time.Date(2026, 12, 3, 9, 16, 49, 123456789, time.UTC)
	h := ParseHello(helloText("node1", "v1.2.0", now))
	if h.Version != "v1.2.0" || !h.Time.Equal(now) {
		t.Errorf("ParseHello(helloText) = %+v", h)
	}
	if h := ParseHello("Password ok, continue"); h.Version != "" || !h.Time.IsZero() {
		t.Errorf("another server's reply: %+v", h)
	}
}

// TestHelloTapKeepsOnly230: the tap sees the whole login conversation,
// the PASS command included, split anywhere; it keeps the 230 reply's
// text and nothing else, and drops everything once finished.
func TestHelloTapKeepsOnly230(t *testing.T) {
	conv := "220 syncer FTP server ready\r\nUSER node1\r\n331 OK\r\nPASS s3cret-pw\r\n230 Logged in as node1; syncer historian v1; time 2026-12-03T09:16:49Z\r\nFEAT\r\n"
	for split := 1; split < len(conv); split += 7 {
		tap := &helloTap{}
		for i := 0; i < len(conv); i += split {
			if _, err := tap.Write([]byte(conv[i:min(i+split, len(conv))])); err != nil {
				t.Fatal(err)
			}
		}
		if strings.Contains(string(tap.line)+tap.text, "s3cret") {
			t.Fatalf("split %d: the tap kept the password: %q %q", split, tap.line, tap.text)
		}
		if got := tap.finish(); !strings.HasPrefix(got, "Logged in as node1; syncer historian v1") {
			t.Fatalf("split %d: 230 text %q", split, got)
		}
		_, _ = tap.Write([]byte("230 later\r\n"))
		if tap.text == "later" {
			t.Fatal("the tap kept reading after finish")
		}
	}
}

// TestBanFrom reads syncer's ban refusals (at connect, USER and PASS).
func TestBanFrom(t *testing.T) {
	until := time.Date(2026, 12, 3, 9, 31, 59, 0, time.UTC)
	for _, msg := range []string{
		`Too many failed logins from 127.0.0.1; try again after 2026-12-03T09:31:59Z`,
		`421 "Too many failed logins from 10.0.0.1; try again after 2026-12-03T09:31:59Z"`,
		`too many failed logins from this address; try again after 2026-12-03T09:31:59Z`,
	} {
		be := banFrom(msg)
		if be == nil || !be.Until.Equal(until) {
			t.Errorf("banFrom(%q) = %+v, want until %s", msg, be, until)
		}
	}
	if be := banFrom("too many failed logins from this address"); be == nil || !be.Until.IsZero() {
		t.Errorf("a ban without an end: %+v", be)
	}
	if be := banFrom("Authentication error: login incorrect"); be != nil {
		t.Errorf("a wrong password read as a ban: %+v", be)
	}
}
