package ftptest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/syncer-dev/syncer/ftpfs"
)

// Target is an FTP server RunClientSuite runs against.
type Target struct {
	// Name names the server in failures.
	Name string
	// Config logs in with an account that may create directories and files
	// under Dir. Its timeouts should be short: the suite checks failures.
	Config ftpfs.ClientConfig
	// WrongLogin is a configuration whose login the server refuses.
	WrongLogin ftpfs.ClientConfig
	// Dir is an FTP directory the account may write in.
	Dir string
	// Local maps an FTP path under Dir to the local file the server keeps
	// it in, so that the suite can check the bytes that arrived.
	Local func(ftpPath string) string
	// Stop stops the server and Start starts it again on the same
	// address; the pool's reconnect test is skipped without them.
	Stop  func()
	Start func(t testing.TB)
}

// RunClientSuite runs the suite that syncer's FTP client (ftpfs.Dial,
// Client, Pool) passes against any FTP server: login and refusal, MkdirAll,
// resumable Upload (grow, unchanged, shrunk, cut and resumed, empty),
// Size, Retrieve and List, error sentinels, and a pool under concurrency
// and across a server restart. Each part is a subtest; the server must be
// running and empty under tg.Dir.
func RunClientSuite(t *testing.T, tg Target) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := &suite{ctx: ctx, tg: tg}
	for _, part := range clientSuite {
		t.Run(part.name, func(t *testing.T) { part.run(s, t) })
	}
}

// clientSuite is the parts of RunClientSuite, in order; each is a subtest.
var clientSuite = []struct {
	name string
	run  func(*suite, *testing.T)
}{
	{"DialNoop", (*suite).dialNoop},
	{"WrongLogin", (*suite).wrongLogin},
	{"MkdirAll", (*suite).mkdirAll},
	{"UploadNewGrowCut", (*suite).uploadNewGrowCut},
	{"SizeMissing", (*suite).sizeMissing},
	{"RetrieveList", (*suite).retrieveList},
	{"PoolConcurrent", (*suite).poolConcurrent},
	{"PoolReconnect", (*suite).poolReconnect},
}

// suite is one run of the client suite against one target.
type suite struct {
	ctx context.Context
	tg  Target
}

func (s *suite) dial(t *testing.T) *ftpfs.Client {
	t.Helper()
	c, err := ftpfs.Dial(s.ctx, s.tg.Config)
	if err != nil {
		t.Fatalf("dial %s: %v", s.tg.Name, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func (s *suite) dialNoop(t *testing.T) {
	c := s.dial(t)
	if err := c.Noop(s.ctx); err != nil {
		t.Fatalf("noop: %v", err)
	}
}

func (s *suite) wrongLogin(t *testing.T) {
	c, err := ftpfs.Dial(s.ctx, s.tg.WrongLogin)
	if err == nil {
		_ = c.Close()
		t.Fatal("dial with a wrong login succeeded")
	}
	if !errors.Is(err, ftpfs.ErrClientLogin) {
		t.Fatalf("wrong login: got %v, want ErrClientLogin", err)
	}
	if ftpfs.IsTransient(err) {
		t.Errorf("a refused login must not count as transient: %v", err)
	}
	if pw := s.tg.WrongLogin.Password; strings.Contains(err.Error(), pw) {
		t.Errorf("error text contains the password: %v", err)
	}
}

func (s *suite) mkdirAll(t *testing.T) {
	c := s.dial(t)
	deep := path.Join(s.tg.Dir, "mk/a/b/c/d")
	if err := c.MkdirAll(s.ctx, deep); err != nil {
		t.Fatalf("mkdirall %s: %v", deep, err)
	}
	if fi, err := os.Stat(s.tg.Local(deep)); err != nil || !fi.IsDir() {
		t.Fatalf("server did not create %s: %v", deep, err)
	}
	// Cached, and a second client finds it made by someone else.
	if err := c.MkdirAll(s.ctx, deep); err != nil {
		t.Fatalf("mkdirall again: %v", err)
	}
	other := s.dial(t)
	if err := other.MkdirAll(s.ctx, path.Join(deep, "e")); err != nil {
		t.Fatalf("mkdirall below a directory another client made: %v", err)
	}
	if err := other.MkdirAll(s.ctx, path.Join(s.tg.Dir, "mk/a/b")); err != nil {
		t.Fatalf("mkdirall of an existing directory: %v", err)
	}
}

func (s *suite) uploadNewGrowCut(t *testing.T) {
	c := s.dial(t)
	dir := path.Join(s.tg.Dir, "up/x")
	if err := c.MkdirAll(s.ctx, dir); err != nil {
		t.Fatal(err)
	}
	data := RandomBytes(t, 3*ftpfs.UploadBufferSize+1234)
	p := path.Join(dir, "grow.log")

	// A new file.
	first := int64(100_000)
	res, err := c.Upload(s.ctx, p, bytes.NewReader(data), first)
	if err != nil {
		t.Fatalf("upload new: %v", err)
	}
	if res.Offset != 0 || res.Sent != first {
		t.Fatalf("upload new: got %+v, want offset 0, sent %d", res, first)
	}
	AssertSameFile(t, s.tg.Local(p), data[:first])

	// The source grew: only the growth is sent.
	size := int64(len(data))
	res, err = c.Upload(s.ctx, p, bytes.NewReader(data), size)
	if err != nil {
		t.Fatalf("upload grown: %v", err)
	}
	if res.Offset != first || res.Sent != size-first {
		t.Fatalf("upload grown: got %+v, want offset %d, sent %d", res, first, size-first)
	}
	AssertSameFile(t, s.tg.Local(p), data)

	// Unchanged: nothing is sent.
	res, err = c.Upload(s.ctx, p, bytes.NewReader(data), size)
	if err != nil || res.Sent != 0 || res.Offset != size {
		t.Fatalf("upload unchanged: got %+v, %v; want nothing sent", res, err)
	}

	// The source shrank: refused, nothing sent.
	res, err = c.Upload(s.ctx, p, bytes.NewReader(data), first)
	if !errors.Is(err, ftpfs.ErrRemoteLarger) || res.Sent != 0 {
		t.Fatalf("upload of a shorter source: got %+v, %v; want ErrRemoteLarger", res, err)
	}

	// Cut halfway by a failing reader, then resumed.
	cutPath := path.Join(dir, "cut.log")
	cut := int64(len(data) / 2)
	res1, err := c.Upload(s.ctx, cutPath, &cutReaderAt{data: data, cut: cut}, size)
	if err == nil {
		t.Fatal("upload from a reader that fails halfway succeeded")
	}
	if !errors.Is(err, errCut) {
		t.Errorf("cut upload: error does not wrap the reader's error: %v", err)
	}
	if ftpfs.IsTransient(err) {
		t.Errorf("a failing source must not count as transient: %v", err)
	}
	// The connection itself is fine after a local read error.
	if err := c.Noop(s.ctx); err != nil {
		t.Fatalf("noop after a cut upload: %v", err)
	}
	res2, err := c.Upload(s.ctx, cutPath, bytes.NewReader(data), size)
	if err != nil {
		t.Fatalf("resume after cut: %v", err)
	}
	if res2.Offset == 0 || res2.Offset > cut {
		t.Errorf("resume after cut: offset %d, want in (0, %d]", res2.Offset, cut)
	}
	if res2.Offset+res2.Sent != size {
		t.Errorf("resume after cut: offset %d + sent %d != size %d", res2.Offset, res2.Sent, size)
	}
	if resent := res1.Sent + res2.Sent - size; resent < 0 || resent > ftpfs.UploadBufferSize {
		t.Errorf("bytes sent again after the cut: %d, want 0..%d", resent, ftpfs.UploadBufferSize)
	}
	AssertSameFile(t, s.tg.Local(cutPath), data)

	// An empty source makes an empty file.
	emptyPath := path.Join(dir, "empty.log")
	if res, err := c.Upload(s.ctx, emptyPath, bytes.NewReader(nil), 0); err != nil || res.Sent != 0 {
		t.Fatalf("upload empty: %+v, %v", res, err)
	}
	AssertSameFile(t, s.tg.Local(emptyPath), nil)
}

func (s *suite) sizeMissing(t *testing.T) {
	c := s.dial(t)
	_, err := c.Size(s.ctx, path.Join(s.tg.Dir, "no/such/file.log"))
	if !errors.Is(err, ftpfs.ErrNotFound) {
		t.Fatalf("size of a missing file: got %v, want ErrNotFound", err)
	}
	// A reply error leaves the connection usable.
	if err := c.Noop(s.ctx); err != nil {
		t.Fatalf("noop after 550: %v", err)
	}
}

func (s *suite) retrieveList(t *testing.T) {
	c := s.dial(t)
	dir := path.Join(s.tg.Dir, "rl")
	if err := c.MkdirAll(s.ctx, path.Join(dir, "sub")); err != nil {
		t.Fatal(err)
	}
	data := RandomBytes(t, 70_000)
	p := path.Join(dir, "f.log")
	if _, err := c.Store(s.ctx, p, bytes.NewReader(data), 0); err != nil {
		t.Fatalf("store: %v", err)
	}
	for _, off := range []int64{0, 1, 12345, int64(len(data))} {
		var buf bytes.Buffer
		n, err := c.Retrieve(s.ctx, p, &buf, off)
		if err != nil {
			t.Fatalf("retrieve from %d: %v", off, err)
		}
		if n != int64(len(data))-off || !bytes.Equal(buf.Bytes(), data[off:]) {
			t.Fatalf("retrieve from %d: got %d bytes, want data[%d:] (%d bytes)", off, n, off, len(data)-int(off))
		}
	}
	if _, err := c.Retrieve(s.ctx, path.Join(dir, "missing"), io.Discard, 0); !errors.Is(err, ftpfs.ErrNotFound) {
		t.Errorf("retrieve missing: got %v, want ErrNotFound", err)
	}
	entries, err := c.List(s.ctx, dir)
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	got := map[string]ftpfs.Entry{}
	for _, e := range entries {
		got[e.Name] = e
	}
	if e, ok := got["f.log"]; !ok || e.Dir || e.Size != int64(len(data)) {
		t.Errorf("list: f.log = %+v (present %v), want a file of %d bytes", e, ok, len(data))
	}
	if e, ok := got["sub"]; !ok || !e.Dir {
		t.Errorf("list: sub = %+v (present %v), want a directory", e, ok)
	}
	if len(got) != 2 {
		t.Errorf("list: got %d entries %v, want 2", len(got), entries)
	}
}

func (s *suite) poolConcurrent(t *testing.T) {
	pool := ftpfs.NewPool(s.tg.Config, 4)
	defer pool.Close()
	dir := path.Join(s.tg.Dir, "pool")
	const files = 50
	contents := make([][]byte, files)
	for i := range contents {
		contents[i] = RandomBytes(t, 1000+i*997)
	}
	jobs := make(chan int)
	errs := make(chan error, files)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				errs <- poolUpload(s.ctx, pool, path.Join(dir, fmt.Sprintf("d%d", i%5)), fmt.Sprintf("f%02d.log", i), contents[i])
			}
		}()
	}
	for i := range files {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	for i := range files {
		AssertSameFile(t, s.tg.Local(path.Join(dir, fmt.Sprintf("d%d", i%5), fmt.Sprintf("f%02d.log", i))), contents[i])
	}
}

func (s *suite) poolReconnect(t *testing.T) {
	if s.tg.Stop == nil || s.tg.Start == nil {
		t.Skip("the target cannot be stopped and started again")
	}
	pool := ftpfs.NewPool(s.tg.Config, 1)
	pool.MinBackoff, pool.MaxBackoff = 20*time.Millisecond, 200*time.Millisecond
	defer pool.Close()
	dir := path.Join(s.tg.Dir, "reconnect")
	data := RandomBytes(t, 50_000)
	if err := poolUpload(s.ctx, pool, dir, "before.log", data); err != nil {
		t.Fatal(err)
	}

	// The server goes away while the pool holds an idle connection,
	// and comes back while Get is retrying.
	s.tg.Stop()
	got := make(chan error, 1)
	go func() {
		gctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
		defer cancel()
		got <- poolUpload(gctx, pool, dir, "after.log", data)
	}()
	time.Sleep(300 * time.Millisecond) // let a few dials fail first
	s.tg.Start(t)
	if err := <-got; err != nil {
		t.Fatalf("upload after the server restarted: %v", err)
	}
	AssertSameFile(t, s.tg.Local(path.Join(dir, "after.log")), data)
}

// poolUpload is what an agent worker does: get a client, upload, put it
// back with the error; transient errors are retried with a fresh client.
func poolUpload(ctx context.Context, pool *ftpfs.Pool, dir, name string, data []byte) error {
	for attempt := 1; ; attempt++ {
		c, err := pool.Get(ctx)
		if err != nil {
			return err
		}
		err = c.MkdirAll(ctx, dir)
		if err == nil {
			_, err = c.Upload(ctx, path.Join(dir, name), bytes.NewReader(data), int64(len(data)))
		}
		pool.Put(c, err)
		if err == nil || !ftpfs.IsTransient(err) || attempt == 5 {
			return err
		}
	}
}

var errCut = errors.New("source cut")

// cutReaderAt serves data up to cut, then fails: an agent killed or a disk
// failing halfway through a file.
type cutReaderAt struct {
	data []byte
	cut  int64
}

func (r *cutReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= r.cut {
		return 0, errCut
	}
	n := copy(p, r.data[off:r.cut])
	if n < len(p) {
		return n, errCut
	}
	return n, nil
}

// RandomBytes is n random bytes (content no compression or dedup helps).
func RandomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// AssertSameFile compares the file the server wrote with want by SHA-256.
func AssertSameFile(t testing.TB, local string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(local)
	if err != nil {
		t.Fatalf("read what the server stored: %v", err)
	}
	if sha256.Sum256(got) != sha256.Sum256(want) {
		t.Fatalf("%s: stored %d bytes differ from the source's %d (sha256)", local, len(got), len(want))
	}
}
