package tier

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/syncer-dev/syncer/internal/testkit"
	"github.com/syncer-dev/syncer/store"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testkit.StopS3()
	os.Exit(code)
}

// env is a tier over a fresh bucket, an archive root and an index.
type env struct {
	t           *testing.T
	s3          testkit.S3
	bucket      string
	root, state string
	clock       *testkit.Clock
	tier        *Tier
	ix          *store.Index
	stop        func()
	admin       *minio.Client // a second S3 client, behind the tier's back
}

func s3Client(t *testing.T, s testkit.S3) *minio.Client {
	t.Helper()
	ep := strings.TrimPrefix(strings.TrimPrefix(s.Endpoint, "http://"), "https://")
	c, err := minio.New(ep, &minio.Options{Creds: credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Secure: strings.HasPrefix(s.Endpoint, "https://"), Region: s.Region, BucketLookup: minio.BucketLookupPath})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newEnv makes a bucket and starts a tier with cfg's knobs over it.
func newEnv(t *testing.T, tweak func(*Config)) *env {
	t.Helper()
	s := testkit.StartS3(t)
	admin := s3Client(t, s)
	r := make([]byte, 5)
	_, _ = rand.Read(r)
	name := "syncer-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	name = strings.Trim(name[:min(len(name), 40)], "-") + "-" + hex.EncodeToString(r)
	ctx := context.Background()
	if err := admin.MakeBucket(ctx, name, minio.MakeBucketOptions{Region: s.Region}); err != nil {
		t.Fatalf("make bucket %s: %v", name, err)
	}
	t.Cleanup(func() {
		for o := range admin.ListObjects(ctx, name, minio.ListObjectsOptions{Recursive: true}) {
			_ = admin.RemoveObject(ctx, name, o.Key, minio.RemoveObjectOptions{})
		}
		_ = admin.RemoveBucket(ctx, name)
	})
	e := &env{t: t, s3: s, bucket: name, admin: admin, root: t.TempDir(), state: t.TempDir(),
		clock: testkit.NewClock(time.Now())}
	e.start(tweak)
	return e
}

func (e *env) config(tweak func(*Config)) Config {
	cfg := Config{URL: "s3://" + e.bucket + "/pre", Endpoint: e.s3.Endpoint, PathStyle: true, Region: e.s3.Region,
		Creds:    credentials.NewStaticV4(e.s3.AccessKey, e.s3.SecretKey, ""),
		SealSize: 1 << 20, SealIdle: time.Minute, LocalKeep: 0, CacheSize: 8 << 20,
		State: e.state, Root: e.root, Now: e.clock.Now, Logger: testLogger(e.t)}
	if tweak != nil {
		tweak(&cfg)
	}
	return cfg
}

// start opens the tier (restoring from the bucket) and an index over it.
func (e *env) start(tweak func(*Config)) {
	t := e.t
	t.Helper()
	tr, err := New(e.config(tweak))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Restore(context.Background()); err != nil {
		t.Fatal(err)
	}
	ix, err := store.OpenIndex(store.IndexConfig{Dir: filepath.Join(e.state, "index"), Root: e.root, Content: tr, ReconcileEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	tr.Attach(ix)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ix.Run(ctx) }()
	<-ix.Ready()
	e.tier, e.ix = tr, ix
	stopped := false
	e.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		<-done
		ix.Close()
		tr.Close()
	}
	t.Cleanup(e.stop)
}

// write writes a file into the archive as an upload would and tells the
// index.
func (e *env) write(rel string, data []byte, appendTo bool) {
	e.t.Helper()
	p := filepath.Join(e.root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		e.t.Fatal(err)
	}
	flag := os.O_CREATE | os.O_WRONLY | os.O_TRUNC
	if appendTo {
		flag = os.O_CREATE | os.O_WRONLY | os.O_APPEND
	}
	f, err := os.OpenFile(p, flag, 0o644)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		e.t.Fatal(err)
	}
	f.Close()
	e.ix.Notify(store.IngestEvent{Kind: store.IngestClosed, Path: "/" + rel, Time: time.Now()})
	if err := e.ix.Flush(context.Background()); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) round() error {
	e.t.Helper()
	return e.tier.Round(context.Background())
}

// read reads agent/rel whole through the tier.
func (e *env) read(rel string) ([]byte, error) {
	agent, r, _ := strings.Cut(rel, "/")
	f, err := e.tier.Open(agent, r)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

func (e *env) objects(sub string) []string {
	var keys []string
	for o := range e.admin.ListObjects(context.Background(), e.bucket, minio.ListObjectsOptions{Prefix: "pre/" + sub, Recursive: true}) {
		if o.Err != nil {
			e.t.Fatal(o.Err)
		}
		keys = append(keys, o.Key)
	}
	return keys
}

// allocated is the bytes the file occupies on disk.
func allocated(t *testing.T, p string) int64 {
	t.Helper()
	return diskBytes(t, p)
}

// logs is text of n lines from seed.
func logs(seed string, n int) []byte {
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, "2026-12-03T12:%02d:%02d.%06d %s INFO request id=%08x path=/api/v1/items/%d status=200 took=%dms\n", (i/60)%60, i%60, i, seed, i*7919, i%977, i%113)
	}
	return b.Bytes()
}

func sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
