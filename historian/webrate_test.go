package historian

import (
	"context"
	"crypto/rand"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/syncer-dev/syncer/ftpfs"
	"github.com/syncer-dev/syncer/ftpfs/accounts"
)

// countingWriter counts what passes.
type countingWriter struct{ n *atomic.Int64 }

func (w countingWriter) Write(p []byte) (int, error) { w.n.Add(int64(len(p))); return len(p), nil }

// TestWebAndFTPDownloadsShareOneBudget: an account downloading over FTP
// and from the web viewer at once gets --max-download-rate for both
// together, not each: the historian gives the FTP server and the viewer
// one bucket per account. No timing is asserted: what both clients
// received within the window can never exceed one burst plus the rate
// times the window; with a bucket per door it was about twice that.
func TestWebAndFTPDownloadsShareOneBudget(t *testing.T) {
	const rate = 256 << 10
	const window = time.Second
	cfg := testConfig(t, t.TempDir())
	// The viewer wants a login on loopback too: it acts as node1.
	cfg.MaxDownloadRate = rate
	r := start(t, cfg)
	_, port, err := net.SplitHostPort(r.h.HTTPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	webAddr := net.JoinHostPort("127.0.0.1", port)
	data := make([]byte, 4<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	r.upload(t, "big.log", string(data))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fc, err := ftpfs.Dial(ctx, ftpfs.ClientConfig{Server: "ftp://" + r.h.FTPAddr().String(), User: "node1", Password: testPassword})
	if err != nil {
		t.Fatal(err)
	}
	defer fc.Close()
	req, err := http.NewRequest("GET", "http://"+webAddr+"/raw/node1/big.log", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("node1", testPassword)
	// Log in once before the window: the viewer remembers the password
	// check for a minute, so the web download starts at once (a bcrypt
	// under -race on a loaded machine takes most of a second).
	warm, err := http.NewRequest("GET", "http://"+webAddr+"/api/v1/agents", nil)
	if err != nil {
		t.Fatal(err)
	}
	warm.SetBasicAuth("node1", testPassword)
	if resp, err := http.DefaultClient.Do(warm); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("log in to the web viewer: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	var ftpBytes, webBytes atomic.Int64
	wctx, wcancel := context.WithTimeout(context.Background(), window)
	defer wcancel()
	start := time.Now()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		_, _ = fc.Retrieve(wctx, "/node1/big.log", countingWriter{&ftpBytes}, 0)
	}()
	go func() {
		defer wg.Done()
		resp, err := http.DefaultClient.Do(req.WithContext(wctx))
		if err != nil {
			return
		}
		defer resp.Body.Close()
		_, _ = io.Copy(countingWriter{&webBytes}, resp.Body)
	}()
	wg.Wait()
	elapsed := time.Since(start)
	got := ftpBytes.Load() + webBytes.Load()
	max := int64(accounts.BurstFor(rate)) + int64(rate*elapsed.Seconds()) + 1024
	t.Logf("in %v: FTP %d bytes, web %d bytes, together %d; one budget allows %d", elapsed, ftpBytes.Load(), webBytes.Load(), got, max)
	if got > max {
		t.Errorf("FTP and web together sent node1 %d bytes in %v, at most %d at %d B/s for the account", got, elapsed, max, rate)
	}
	if ftpBytes.Load() == 0 || webBytes.Load() == 0 {
		t.Logf("one door got nothing in the window (FTP %d, web %d): the bound still holds", ftpBytes.Load(), webBytes.Load())
	}
}
