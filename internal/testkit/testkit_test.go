package testkit

import (
	"fmt"
	"net"
	"net/textproto"
	"strings"
	"testing"
	"time"
)

func TestLockedBuffer(t *testing.T) {
	tests := []struct {
		name   string
		limit  int
		writes []string
		want   string
	}{
		{"unlimited keeps all", 0, []string{"ab", "cd", "ef"}, "abcdef"},
		{"limit drops what comes once past it", 3, []string{"ab", "cd", "ef", "gh"}, "abcd"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := &LockedBuffer{Limit: tc.limit}
			for _, w := range tc.writes {
				if n, err := b.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", w, n, err)
				}
			}
			if got := b.String(); got != tc.want {
				t.Fatalf("String() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestFreeAddrWaitListeningWaitPortFree(t *testing.T) {
	addr := FreeAddr(t)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("FreeAddr gave %s, which cannot be bound: %v", addr, err)
	}
	WaitListening(t, addr)
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	WaitPortFree(t, port)
}

// login logs in on an FTP server at addr and returns the reply code.
func login(t *testing.T, addr, user, pass string) int {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	c := textproto.NewConn(nc)
	if _, _, err := c.ReadResponse(220); err != nil {
		t.Fatalf("greeting: %v", err)
	}
	if err := c.PrintfLine("USER %s", user); err != nil {
		t.Fatal(err)
	}
	// vsftpd logs anonymous in on USER (no_anon_password).
	code, _, err := c.ReadResponse(3)
	if code == 230 {
		return code
	}
	if code != 331 {
		t.Fatalf("USER: %v", err)
	}
	if err := c.PrintfLine("PASS %s", pass); err != nil {
		t.Fatal(err)
	}
	code, _, _ = c.ReadResponse(230)
	return code
}

func TestStartPyftpd(t *testing.T) {
	srv := StartPyftpd(t, PyftpdConfig{User: "agent", Password: "pw-right", AuthFailedTimeout: 10 * time.Millisecond})
	addr := fmt.Sprintf("127.0.0.1:%d", srv.Port)
	if want := "ftp://" + addr; srv.URL != want {
		t.Fatalf("URL = %q, want %q", srv.URL, want)
	}
	if got := login(t, addr, "agent", "pw-right"); got != 230 {
		t.Fatalf("right password: reply %d, want 230", got)
	}
	if got := login(t, addr, "agent", "pw-wrong"); got != 530 {
		t.Fatalf("wrong password: reply %d, want 530", got)
	}
	srv.Stop()
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("%s still accepts after Stop", addr)
	}
	srv.Start(t)
	if got := login(t, addr, "agent", "pw-right"); got != 230 {
		t.Fatalf("after restart: reply %d, want 230", got)
	}
}

func TestStartVsftpd(t *testing.T) {
	srv := StartVsftpd(t)
	if !strings.HasSuffix(srv.Addr, fmt.Sprintf(":%d", srv.Port)) {
		t.Fatalf("Addr %q does not end in port %d", srv.Addr, srv.Port)
	}
	if got := login(t, srv.Addr, "anonymous", "agent@example.org"); got != 230 {
		t.Fatalf("anonymous login: reply %d, want 230", got)
	}
	srv.Stop()
	srv.Start(t)
	if got := login(t, srv.Addr, "anonymous", "agent@example.org"); got != 230 {
		t.Fatalf("after restart: reply %d, want 230", got)
	}
}
