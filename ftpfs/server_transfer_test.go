package ftpfs_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/syncer-dev/syncer/ftpfs"
	"github.com/syncer-dev/syncer/ftpfs/activity"
)

// versionRE matches a kept version's name.
var versionRE = regexp.MustCompile(`^a\.log\.superseded-\d{8}T\d{6}Z(-\d+)?$`)

// TestServerStorKeepsVersions: STOR without REST onto an existing file
// keeps the old bytes as a version, also for several rewrites in the same
// second.
func TestServerStorKeepsVersions(t *testing.T) {
	e := srvStart(t, nil)
	c := e.dial(srvAgent, srvPassword)
	contents := []string{"version one\n", "version two\n", "version three\n"}
	for _, s := range contents {
		if err := c.Stor("/node1/a.log", strings.NewReader(s)); err != nil {
			t.Fatalf("STOR: %v", err)
		}
	}
	if got := string(e.read("/node1/a.log")); got != contents[2] {
		t.Fatalf("current file %q, want %q", got, contents[2])
	}
	entries, err := os.ReadDir(e.file("/node1"))
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, de := range entries {
		if de.Name() == "a.log" {
			continue
		}
		if !versionRE.MatchString(de.Name()) {
			t.Errorf("unexpected file %q", de.Name())
			continue
		}
		kept = append(kept, string(e.read("/node1/"+de.Name())))
	}
	sort.Strings(kept)
	if want := []string{contents[0], contents[1]}; strings.Join(kept, "|") != strings.Join(want, "|") {
		t.Fatalf("kept versions %q, want %q", kept, want)
	}
	var superseded []activity.UploadEvent
	for _, ev := range e.events.forPath("/node1/a.log") {
		if ev.Kind == activity.UploadSuperseded {
			superseded = append(superseded, ev)
		}
	}
	if len(superseded) != 2 {
		t.Fatalf("%d UploadSuperseded events, want 2", len(superseded))
	}
	for _, ev := range superseded {
		if !versionRE.MatchString(filepath.Base(ev.VersionPath)) || !strings.HasPrefix(ev.VersionPath, "/node1/") {
			t.Errorf("VersionPath %q", ev.VersionPath)
		}
	}
}

// TestServerAgentDescriptionReplaced: the agent's description, rewritten on
// every push, replaces the old one; a commit record next to it is versioned.
func TestServerAgentDescriptionReplaced(t *testing.T) {
	e := srvStart(t, nil)
	c := e.dial(srvAgent, srvPassword)
	if err := c.MakeDir("/node1/.syncer"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/node1/.syncer/agent.json", "/node1/.syncer/c.json"} {
		for _, s := range []string{`{"n":1}`, `{"n":2}`} {
			if err := c.Stor(p, strings.NewReader(s)); err != nil {
				t.Fatalf("STOR %s: %v", p, err)
			}
		}
	}
	entries, err := os.ReadDir(e.file("/node1/.syncer"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range entries {
		names = append(names, de.Name())
	}
	if len(names) != 3 || names[0] != "agent.json" || names[1] != "c.json" || !strings.HasPrefix(names[2], "c.json.superseded-") {
		t.Fatalf(".syncer holds %q, want agent.json, c.json and one version of c.json", names)
	}
	if got := string(e.read("/node1/.syncer/agent.json")); got != `{"n":2}` {
		t.Fatalf("agent.json = %q", got)
	}
}

// TestServerRestRules: REST beyond the end is refused for everyone, below
// the end for agents; at the end it appends; APPE appends.
func TestServerRestRules(t *testing.T) {
	tests := []struct {
		name    string
		user    string
		verb    string
		offset  int64
		ok      bool
		wantMsg string
		want    string
	}{
		{"agent REST beyond end", srvAgent, "STOR", 20, false, "beyond the end", "0123456789"},
		{"admin REST beyond end", srvAdmin, "STOR", 11, false, "beyond the end", "0123456789"},
		{"agent REST below end", srvAgent, "STOR", 5, false, "below the end", "0123456789"},
		{"agent REST at end", srvAgent, "STOR", 10, true, "", "0123456789abc"},
		{"admin REST below end", srvAdmin, "STOR", 5, true, "", "01234abc89"},
		{"agent APPE", srvAgent, "APPE", 0, true, "", "0123456789abc"},
	}
	e := srvStart(t, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.put("/node1/r.log", []byte("0123456789"))
			r := e.rawLogin(tt.user)
			code, msg := r.store(tt.verb, "/node1/r.log", tt.offset, []byte("abc"))
			if tt.ok && code != 226 {
				t.Fatalf("%s: %d %s, want 226", tt.verb, code, msg)
			}
			if !tt.ok && (code < 500 || !strings.Contains(msg, tt.wantMsg)) {
				t.Fatalf("%s: %d %s, want a 5xx saying %q", tt.verb, code, msg, tt.wantMsg)
			}
			if got := string(e.read("/node1/r.log")); got != tt.want {
				t.Fatalf("file %q, want %q", got, tt.want)
			}
		})
	}
	// APPE and REST on a missing file: APPE creates, REST is beyond its end.
	r := e.rawLogin(srvAgent)
	if code, msg := r.store("APPE", "/node1/new.log", 0, []byte("fresh")); code != 226 {
		t.Fatalf("APPE new file: %d %s", code, msg)
	}
	if got := string(e.read("/node1/new.log")); got != "fresh" {
		t.Fatalf("APPE new file: %q", got)
	}
	if code, msg := r.store("STOR", "/node1/none.log", 3, []byte("x")); code < 500 {
		t.Fatalf("REST 3 on a missing file: %d %s", code, msg)
	}
	if _, err := os.Stat(e.file("/node1/none.log")); err == nil {
		t.Fatal("refused REST created the file")
	}
	// Downloads may resume, but not beyond the end either.
	e.put("/node1/d.log", []byte("0123456789"))
	resp, err := e.dial(srvAgent, srvPassword).RetrFrom("/node1/d.log", 4)
	if err != nil {
		t.Fatalf("RETR from 4: %v", err)
	}
	got, err := io.ReadAll(resp)
	_ = resp.Close()
	if err != nil || string(got) != "456789" {
		t.Fatalf("RETR from 4: %q, %v", got, err)
	}
	r.expect(350, "REST 11")
	dc := r.epsv()
	if code, msg := r.cmd("RETR /node1/d.log"); code < 500 {
		t.Fatalf("RETR beyond the end: %d %s", code, msg)
	}
	_ = dc.Close()
}

// TestServerResumeAfterCut: the data connection dies mid-upload; the
// client reconnects, asks SIZE and sends the rest; the archived file is
// byte-identical to the source.
func TestServerResumeAfterCut(t *testing.T) {
	e := srvStart(t, nil)
	src := srvRandom(t, 3<<20)
	const path = "/node1/app/big.log"
	if err := os.MkdirAll(e.file("/node1/app"), 0o755); err != nil {
		t.Fatal(err)
	}

	r := e.rawLogin(srvAgent)
	dc := r.epsv()
	r.expect(150, "STOR %s", path)
	if _, err := dc.Write(src[:1<<20+12345]); err != nil {
		t.Fatal(err)
	}
	// Cut hard: RST instead of FIN, as a crashed client or a network cut.
	if tc, ok := dc.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = dc.Close()
	r.reply() // 226 or an error: FTP cannot tell a cut from an end
	_ = r.conn.Close()

	c := e.dial(srvAgent, srvPassword)
	var size int64
	eventually(t, "the cut upload to close", func() bool {
		evs := e.events.forPath(path)
		return len(evs) > 0 && (evs[len(evs)-1].Kind == activity.UploadClosed || evs[len(evs)-1].Kind == activity.UploadFailed)
	})
	size, err := c.FileSize(path)
	if err != nil {
		t.Fatalf("SIZE: %v", err)
	}
	if size <= 0 || size > int64(len(src)) {
		t.Fatalf("SIZE after the cut = %d", size)
	}
	if err := c.StorFrom(path, bytes.NewReader(src[size:]), uint64(size)); err != nil {
		t.Fatalf("REST %d + STOR: %v", size, err)
	}
	got := e.read(path)
	if sha256.Sum256(got) != sha256.Sum256(src) {
		t.Fatalf("archived %d bytes differ from the %d source bytes", len(got), len(src))
	}
	evs := e.events.forPath(path)
	last := evs[len(evs)-1]
	if last.Kind != activity.UploadClosed || last.Offset != size || last.Written != int64(len(src))-size || last.Size != int64(len(src)) {
		t.Fatalf("last event %+v, want Closed at offset %d", last, size)
	}
}

// TestServerStaleWriterCut: a client that is still "uploading" on a silent
// data connection is cut by a new upload of the same path; its later bytes
// never reach the file.
func TestServerStaleWriterCut(t *testing.T) {
	e := srvStart(t, nil)
	const path = "/node1/s.log"
	first := bytes.Repeat([]byte("A"), 100000)
	rest := bytes.Repeat([]byte("B"), 50000)

	stale := e.rawLogin(srvAgent)
	dc := stale.epsv()
	stale.expect(150, "STOR %s", path)
	if _, err := dc.Write(first); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the first bytes to land", func() bool {
		fi, err := os.Stat(e.file(path))
		return err == nil && fi.Size() == int64(len(first))
	})

	c := e.dial(srvAgent, srvPassword)
	size, err := c.FileSize(path)
	if err != nil || size != int64(len(first)) {
		t.Fatalf("SIZE = %d, %v", size, err)
	}
	if err := c.StorFrom(path, bytes.NewReader(rest), uint64(size)); err != nil {
		t.Fatalf("resume while the stale writer holds the path: %v", err)
	}
	// The stale client tries to go on; nothing of it may land.
	for i := 0; i < 20; i++ {
		if _, err := dc.Write(bytes.Repeat([]byte("X"), 10000)); err != nil {
			break
		}
	}
	_ = dc.Close()
	eventually(t, "both uploads to end", func() bool {
		ends := 0
		for _, ev := range e.events.forPath(path) {
			if ev.Kind == activity.UploadClosed || ev.Kind == activity.UploadFailed {
				ends++
			}
		}
		return ends == 2
	})
	want := append(append([]byte{}, first...), rest...)
	if got := e.read(path); !bytes.Equal(got, want) {
		t.Fatalf("file has %d bytes (%d X), want the %d bytes of the two writers in order", len(got), bytes.Count(got, []byte("X")), len(want))
	}
	var failed *activity.UploadEvent
	for _, ev := range e.events.forPath(path) {
		if ev.Kind == activity.UploadFailed {
			failed = &ev
		}
	}
	if failed == nil || !errors.Is(failed.Err, ftpfs.ErrBusy) {
		t.Fatalf("the stale upload did not end with an UploadFailed wrapping ErrBusy: %+v", failed)
	}
	if failed.Written != int64(len(first)) {
		t.Fatalf("stale upload wrote %d bytes, want %d", failed.Written, len(first))
	}
	// The stale session was closed.
	if code, _ := stale.cmd("NOOP"); code == 200 {
		t.Fatal("the stale session still answers")
	}
}

// TestServerUploadEvents: Opened, Progress, Closed with offsets and sizes.
func TestServerUploadEvents(t *testing.T) {
	e := srvStart(t, func(cfg *ftpfs.ServerConfig) { cfg.MaxUploadRate = 400 << 10 })
	c := e.dial(srvAgent, srvPassword)
	data := srvRandom(t, 300<<10) // ~0.75 s at the limit: a few progress events
	if err := c.Stor("/node1/ev.log", bytes.NewReader(data[:1000])); err != nil {
		t.Fatal(err)
	}
	if err := c.StorFrom("/node1/ev.log", bytes.NewReader(data[1000:]), 1000); err != nil {
		t.Fatal(err)
	}
	evs := e.events.forPath("/node1/ev.log")
	var kinds []string
	for _, ev := range evs {
		kinds = append(kinds, ev.Kind.String())
		if ev.User != srvAgent || ev.Time.IsZero() {
			t.Errorf("event %+v: bad user or time", ev)
		}
	}
	seq := strings.Join(kinds, ",")
	if !regexp.MustCompile(`^opened,(progress,)*closed,opened,(progress,)+closed$`).MatchString(seq) {
		t.Fatalf("event sequence %s", seq)
	}
	var prev int64
	for _, ev := range evs[2:] {
		if ev.Offset != 1000 {
			t.Errorf("%s: offset %d, want 1000", ev.Kind, ev.Offset)
		}
		if ev.Size != ev.Offset+ev.Written || ev.Written < prev {
			t.Errorf("%s: size %d, written %d (previous %d)", ev.Kind, ev.Size, ev.Written, prev)
		}
		prev = ev.Written
	}
	if last := evs[len(evs)-1]; last.Size != int64(len(data)) || last.Written != int64(len(data))-1000 {
		t.Fatalf("closing event %+v", last)
	}
	// At most about four progress events per second.
	if first, last := evs[2], evs[len(evs)-1]; len(evs)-4 > int(last.Time.Sub(first.Time).Seconds()*4)+2 {
		t.Fatalf("%d progress events in %s", len(evs)-4, last.Time.Sub(first.Time))
	}
}
