package httpview

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/syncer-dev/syncer/ftpfs"
	"github.com/syncer-dev/syncer/ftpfs/accounts"
	"github.com/syncer-dev/syncer/ftpfs/activity"
	"github.com/syncer-dev/syncer/ftpfs/ftptest"
	"github.com/syncer-dev/syncer/store"
	"github.com/syncer-dev/syncer/syncer"
)

// hist is a historian in-process: FTP server, index, HTTP API, with
// agent accounts n1 and n2, an admin and an account that never pushes.
type hist struct {
	t       *testing.T
	root    string
	state   string
	users   *accounts.DB
	ftp     *ftpfs.Server
	ix      *store.Index
	ixStop  func()
	metrics *Metrics
	http    *httptest.Server
	auth    bool
}

var passwords = map[string]string{"n1": "pw-n1-secret", "n2": "pw-n2-secret", "admin": "pw-admin-secret", "ghost": "pw-ghost-secret"}

func newHist(t *testing.T, requireAuth bool) *hist {
	t.Helper()
	h := &hist{t: t, root: t.TempDir(), state: t.TempDir(), users: accounts.New(), metrics: NewMetrics(), auth: requireAuth}
	for _, name := range []string{"n1", "n2", "ghost"} {
		if err := h.users.Add(accounts.User{Name: name}, passwords[name]); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.users.Add(accounts.User{Name: "admin", Admin: true}, passwords["admin"]); err != nil {
		t.Fatal(err)
	}
	h.startIndex()
	h.ftp = ftptest.NewServer(t, h.root, ftptest.WithConfig(func(cfg *ftpfs.ServerConfig) {
		cfg.Users = h.users
		cfg.BanAfter = 0 // the server's default
		cfg.OnUpload = func(ev activity.UploadEvent) { feedUpload(h.ix, h.metrics, ev) }
	})).FTP()
	h.startHTTP()
	t.Cleanup(func() { h.stopAll() })
	return h
}

func (h *hist) startIndex() {
	h.t.Helper()
	ix, err := store.OpenIndex(store.IndexConfig{Dir: filepath.Join(h.state, "index"), Root: h.root, ReconcileEvery: -1})
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ix.Run(ctx) }()
	<-ix.Ready()
	h.ix = ix
	h.ixStop = func() {
		cancel()
		if err := <-done; err != nil {
			h.t.Errorf("index Run: %v", err)
		}
		if err := ix.Close(); err != nil {
			h.t.Errorf("index Close: %v", err)
		}
	}
}

func (h *hist) startHTTP() {
	h.t.Helper()
	conns := func() []activity.ConnInfo { return nil }
	if h.ftp != nil {
		conns = h.ftp.Connections
	}
	s, err := New(Config{Index: h.ix, Root: h.root, Connections: conns, Users: h.users, RequireAuth: h.auth,
		Metrics: h.metrics, Overview: Overview{FTPAddr: "127.0.0.1:2121", ArchiveRoot: h.root}})
	if err != nil {
		h.t.Fatal(err)
	}
	h.http = httptest.NewServer(s.Handler())
}

func (h *hist) stopAll() {
	if h.http != nil {
		h.http.Close()
		h.http = nil
	}
	if h.ixStop != nil {
		h.ixStop()
		h.ixStop = nil
	}
}

// restartIndex stops the index and the HTTP server, optionally deletes the
// index directory, and starts both again (the FTP server keeps running
// but its events go to the old index; tests do not push meanwhile).
func (h *hist) restartIndex(deleteIt bool) {
	h.t.Helper()
	h.stopAll()
	if deleteIt {
		if err := os.RemoveAll(filepath.Join(h.state, "index")); err != nil {
			h.t.Fatal(err)
		}
	}
	h.metrics = NewMetrics()
	h.startIndex()
	h.startHTTP()
}

func (h *hist) flush() {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.ix.Flush(ctx); err != nil {
		h.t.Fatal(err)
	}
}

func (h *hist) reconcile() {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.ix.Reconcile(ctx); err != nil {
		h.t.Fatal(err)
	}
}

// push runs the real agent (package syncer) once over dir as agent id.
func (h *hist) push(id, dir string) syncer.Summary {
	h.t.Helper()
	return h.pushIncluding(id, dir, nil)
}

// pushIncluding is push with the agent's --include patterns (nil for the
// default).
func (h *hist) pushIncluding(id, dir string, include []string) syncer.Summary {
	h.t.Helper()
	state := filepath.Join(h.state, "agent-"+id)
	m, err := store.Open(store.Dir(state, id))
	if err != nil {
		h.t.Fatal(err)
	}
	defer m.Close()
	a, err := syncer.NewAgent(syncer.Options{AgentID: id, Dir: dir, StateDir: state, Parallel: 2, Interval: time.Minute, Include: include}, m)
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conns, err := syncer.Connect(ctx, ftpfs.ClientConfig{Server: "ftp://" + h.ftp.Addr().String(), User: id, Password: passwords[id]}, 2)
	if err != nil {
		h.t.Fatal(err)
	}
	defer conns.Close()
	sum, err := a.Push(ctx, conns)
	if err != nil {
		h.t.Fatalf("push %s: %v (%+v)", id, err, sum)
	}
	h.flush()
	return sum
}

// get does GET path as user ("" without credentials) and returns the
// status and body.
func (h *hist) get(user, path string, hdr ...string) (*http.Response, []byte) {
	h.t.Helper()
	req, err := http.NewRequest("GET", h.http.URL+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, passwords[user])
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp, b
}

// getJSON does GET path, wants status 200 and decodes the body into v.
func (h *hist) getJSON(user, path string, v any) {
	h.t.Helper()
	resp, b := h.get(user, path)
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		h.t.Fatalf("GET %s: %v: %s", path, err, b)
	}
}

// rawGet sends the request line exactly as given (no client-side
// cleaning or re-encoding) and returns the status code and body.
func (h *hist) rawGet(target string) (int, string) {
	h.t.Helper()
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(h.http.URL, "http://"), 5*time.Second)
	if err != nil {
		h.t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n", target)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		h.t.Fatalf("GET %q: %v", target, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func writeFile(t *testing.T, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func sumHex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func logLines(seed, n int) []byte {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "2026-11-24T10:00:%02dZ node%d INFO request %d served in %dms\n", i%60, seed, i, (i*7)%100)
	}
	return []byte(b.String())
}

// feedUpload gives an upload event to the index and the metrics, as the
// historian's upload glue does (package historian, which imports this
// one); the metrics count only completed uploads here.
func feedUpload(ix *store.Index, m *Metrics, ev activity.UploadEvent) {
	agent, _, _ := strings.Cut(strings.TrimPrefix(ev.Path, "/"), "/")
	kinds := map[activity.UploadKind]store.IngestKind{
		activity.UploadOpened: store.IngestOpened, activity.UploadProgress: store.IngestProgress,
		activity.UploadClosed: store.IngestClosed, activity.UploadFailed: store.IngestFailed,
		activity.UploadSuperseded: store.IngestSuperseded,
	}
	switch ev.Kind {
	case activity.UploadClosed:
		m.Received(agent, ev.Written)
		m.FileReceived(agent)
	case activity.UploadFailed:
		m.UploadFailed(agent)
	}
	if kind, ok := kinds[ev.Kind]; ok {
		ix.Notify(store.IngestEvent{Kind: kind, Path: ev.Path, VersionPath: ev.VersionPath,
			Account: ev.User, Offset: ev.Offset, Time: ev.Time,
			Rewrite: ev.Kind == activity.UploadOpened && ev.Offset < ev.Size})
	}
}
