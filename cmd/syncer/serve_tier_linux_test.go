package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/syncer-dev/syncer/internal/testkit"
)

// tierBucket makes a fresh bucket on the test S3 endpoint (the harness's
// Ceph RGW, or SYNCER_TEST_S3_ENDPOINT) and returns the serve.yaml lines
// that put a historian's tier in it; the keys go in the environment, the
// way serve takes them.
func tierBucket(t *testing.T) (yaml string, admin *minio.Client, bucket string) {
	t.Helper()
	s := testkit.StartS3(t)
	ep := strings.TrimPrefix(strings.TrimPrefix(s.Endpoint, "http://"), "https://")
	admin, err := minio.New(ep, &minio.Options{Creds: credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Secure: strings.HasPrefix(s.Endpoint, "https://"), Region: s.Region, BucketLookup: minio.BucketLookupPath})
	if err != nil {
		t.Fatal(err)
	}
	bucket = "syncer-serve-" + strings.ToLower(rand.Text()[:10])
	ctx := context.Background()
	if err := admin.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: s.Region}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for o := range admin.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
			_ = admin.RemoveObject(ctx, bucket, o.Key, minio.RemoveObjectOptions{})
		}
		_ = admin.RemoveBucket(ctx, bucket)
	})
	t.Setenv("AWS_ACCESS_KEY_ID", s.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", s.SecretKey)
	t.Setenv("AWS_REGION", s.Region)
	yaml = fmt.Sprintf("tier: s3://%s/hist\ntier-endpoint: %s\ntier-path-style: true\nseal-size: 1MiB\nseal-idle: 1s\nlocal-keep: 0s\n", bucket, s.Endpoint)
	return yaml, admin, bucket
}

// tierLogs writes a source tree of log files: lines with "needle" here
// and there, one file of several segments.
func tierLogs(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	for _, f := range []struct {
		rel   string
		lines int
	}{{"app/big.log", 40000}, {"app/sub/small.log", 20}, {"other.log", 3000}, {"deep/a/b/c.log", 9000}} {
		var b bytes.Buffer
		for i := range f.lines {
			word := "INFO"
			if i%997 == 13 {
				word = "needle"
			}
			fmt.Fprintf(&b, "2026-12-03T12:%02d:%02d.%06d %s %s request=%08x path=/api/items/%d took=%dms\n", i/60%60, i%60, i, f.rel, word, i*7919, i%977, i%113)
		}
		files[f.rel] = b.Bytes()
		writeTestFile(t, filepath.Join(dir, f.rel), b.String())
	}
	return files
}

func hexSum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// metric reads one unlabelled value from /metrics.
func (p *serveProc) metric(t *testing.T, name string) float64 {
	t.Helper()
	code, body := p.get(t, "/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return -1
}

// waitSealed waits until the tier has no backlog and big.log's local
// bytes are evicted (at most its last block left on disk). The files must
// be in the index already: the backlog counted is that of a pass that
// started after the call (two passes ended since).
func waitSealed(t *testing.T, p *serveProc, root string, files map[string][]byte) {
	t.Helper()
	r0 := p.metric(t, "syncer_tier_rounds_total")
	deadline := time.Now().Add(60 * time.Second)
	for {
		var st syscall.Stat_t
		err := syscall.Stat(filepath.Join(root, "node1", "app/big.log"), &st)
		if err == nil && p.metric(t, "syncer_tier_rounds_total") >= r0+2 && p.metric(t, "syncer_tier_unsealed_bytes") == 0 && st.Blocks*512 <= 8192 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not sealed and evicted in time: unsealed %v, big.log allocated %d bytes\n%s",
				p.metric(t, "syncer_tier_unsealed_bytes"), st.Blocks*512, p.stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// grepLines runs grep -rn over dir and returns its lines with dir cut off,
// sorted.
func grepLines(t *testing.T, dir, pattern string) []string {
	t.Helper()
	out, err := exec.Command("grep", "-rn", pattern, dir).Output()
	if err != nil {
		t.Fatalf("grep -rn %s %s: %v", pattern, dir, err)
	}
	lines := strings.Split(strings.TrimSpace(strings.ReplaceAll(string(out), dir+"/", "")), "\n")
	slices.Sort(lines)
	return lines
}

// checkViews reads every file through the mount and the web and wants the
// source's bytes.
func checkViews(t *testing.T, p *serveProc, mp, logs string, files map[string][]byte) {
	t.Helper()
	defer func() {
		if t.Failed() {
			t.Logf("serve's log:\n%s", p.stderr)
		}
	}()
	for rel, want := range files {
		got, err := os.ReadFile(filepath.Join(mp, "node1", rel))
		if err != nil || hexSum(got) != hexSum(want) {
			t.Errorf("mount %s: %d bytes sha256 %s (err %v), want %d %s", rel, len(got), hexSum(got), err, len(want), hexSum(want))
		}
		code, body := p.get(t, "/raw/node1/"+rel)
		if code != 200 || hexSum([]byte(body)) != hexSum(want) {
			t.Errorf("/raw %s: %d, %d bytes", rel, code, len(body))
		}
		code, body = p.get(t, "/download/node1/"+rel)
		if code != 200 || hexSum([]byte(body)) != hexSum(want) {
			t.Errorf("/download %s: %d, %d bytes", rel, code, len(body))
		}
	}
	// Range requests on the evicted file, across frame and segment borders.
	big := files["app/big.log"]
	for _, r := range [][2]int{{0, 4095}, {524280, 524300}, {1<<20 - 10, 1<<20 + 4000}, {len(big) - 100, len(big) - 1}} {
		req, _ := http.NewRequest("GET", p.scheme+"://"+p.http+"/raw/node1/app/big.log", nil)
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", r[0], r[1]))
		resp, err := insecureClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(b, big[r[0]:r[1]+1]) {
			t.Errorf("/raw Range %v: %d, %d bytes, want 206 and the source's bytes", r, resp.StatusCode, len(b))
		}
	}
	// grep -r over the mount finds what grep -r finds over the source.
	if got, want := grepLines(t, filepath.Join(mp, "node1"), "needle"), grepLines(t, logs, "needle"); !slices.Equal(got, want) {
		t.Errorf("grep -rn over the mount: %d lines, over the source: %d", len(got), len(want))
	}
	out, err := exec.Command("tail", "-n", "3", filepath.Join(mp, "node1", "app/big.log")).Output()
	lines := bytes.SplitAfter(big, []byte("\n"))
	if err != nil || !bytes.Equal(out, bytes.Join(lines[len(lines)-4:], nil)) {
		t.Errorf("tail -n 3 through the mount: %q %v", out, err)
	}
	// The web's content search and file view.
	code, body := p.get(t, "/api/v1/grep?q=needle&agent=node1")
	if n := strings.Count(body, `"line":`); code != 200 || n != len(grepLines(t, logs, "needle")) {
		t.Errorf("/api/v1/grep: %d, %d matches", code, n)
	}
	code, body = p.get(t, "/api/v1/lines/node1/app/big.log")
	if first := string(lines[0][:40]); code != 200 || !strings.Contains(body, first) {
		t.Errorf("/api/v1/lines: %d, first line %q not in %.200s", code, first, body)
	}
}

// TestServeTierEndToEnd: a real serve with --tier and a real agent push;
// the files are sealed into the bucket and their local bytes evicted; the
// mount and the web give back the bytes identical; then, with its state
// and archive directories deleted, serve started again on the same bucket
// lists and verifies every file from the bucket alone.
func TestServeTierEndToEnd(t *testing.T) {
	testkit.RequireRoot(t, "the FUSE mount")
	if _, err := os.Stat("/dev/fuse"); err != nil {
		testkit.Unavailable(t, "the FUSE mount needs /dev/fuse")
	}
	tierYAML, admin, bucket := tierBucket(t)
	const pw = "pw-node1-tier"
	mp := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mp, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(mp, syscall.MNT_DETACH) })
	c := newServeConfig(t, pw, tierYAML+"mount: "+mp+"\n")
	logs := filepath.Join(c.base, "logs")
	files := tierLogs(t, logs)
	p := startServe(t, c.config, c.http)
	r := runAgent(t, pw, "push", "--server", "ftp://"+c.ftp, "--user", "node1",
		"--agent-id", "node1", "--dir", logs, "--state", filepath.Join(c.base, "agent"), "--json")
	if r.code != 0 {
		t.Fatalf("push: %d %s %s", r.code, r.stdout, r.stderr)
	}
	for rel, b := range files {
		waitVerified(t, p, rel, len(b))
	}
	waitSealed(t, p, c.root, files)
	var segs int
	for o := range admin.ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Prefix: "hist/seg/", Recursive: true}) {
		if o.Err == nil {
			segs++
		}
	}
	if segs < len(files)+2 {
		t.Fatalf("%d segments in the bucket, want at least %d", segs, len(files)+2)
	}
	checkViews(t, p, mp, logs, files)
	p.stop(t)

	// Disaster: the historian's disks are gone. The bucket is enough.
	for _, d := range []string{c.root, c.state} {
		if err := os.RemoveAll(d); err != nil {
			t.Fatal(err)
		}
	}
	p = startServe(t, c.config, c.http)
	for rel, b := range files {
		waitVerified(t, p, rel, len(b))
	}
	checkViews(t, p, mp, logs, files)
	p.stop(t)
	if !strings.Contains(p.stderr.String(), "historian restored from the bucket") { // read once serve is gone
		t.Errorf("no restore logged:\n%s", p.stderr)
	}

	// A segment altered behind the historian's back (a second S3 client)
	// is never served: the web answers 502 with a message, the mount EIO,
	// and the file shows mismatch.
	ctx := context.Background()
	var key string
	for o := range admin.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: "hist/seg/node1/other.log@", Recursive: true}) {
		key = o.Key
	}
	obj, err := admin.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	seg, _ := io.ReadAll(obj)
	obj.Close()
	seg[len(seg)/2] ^= 0x20
	if _, err := admin.PutObject(ctx, bucket, key, bytes.NewReader(seg), int64(len(seg)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	p = startServe(t, c.config, c.http)
	if code, body := p.get(t, "/raw/node1/other.log"); code != http.StatusBadGateway || !strings.Contains(body, "checksum") {
		t.Errorf("/raw of a corrupted segment: %d %.200q, want 502 with a message", code, body)
	}
	if _, err := os.ReadFile(filepath.Join(mp, "node1", "other.log")); !errors.Is(err, syscall.EIO) {
		t.Errorf("read of a corrupted segment through the mount: %v, want EIO", err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		var f fileStatus
		p.getJSON(t, "/api/v1/files/node1/other.log", &f)
		if f.Status == "mismatch" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("corrupted file shows %q, want mismatch", f.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.stop(t)
}

// TestServeTierKilledMidSeal: serve killed with SIGKILL while it seals
// leaves no partial segment in the bucket, and once restarted seals the
// rest: the segments tile the file exactly, each a whole zstd stream whose
// bytes hash to the SHA-256 it carries, and the file reads back identical.
func TestServeTierKilledMidSeal(t *testing.T) {
	tierYAML, admin, bucket := tierBucket(t)
	const pw = "pw-node1-kill"
	c := newServeConfig(t, pw, tierYAML)
	logs := filepath.Join(c.base, "logs")
	var b bytes.Buffer
	for i := 0; b.Len() < 24<<20; i++ {
		fmt.Fprintf(&b, "2026-12-03T12:00:00.%06d node1 INFO request=%08x path=/api/items/%d took=%dms\n", i, i*7919, i%977, i%113)
	}
	big := b.Bytes()
	writeTestFile(t, filepath.Join(logs, "big.log"), string(big))
	p := startServe(t, c.config, c.http)
	r := runAgent(t, pw, "push", "--server", "ftp://"+c.ftp, "--user", "node1",
		"--agent-id", "node1", "--dir", logs, "--state", filepath.Join(c.base, "agent"), "--json")
	if r.code != 0 {
		t.Fatalf("push: %d %s %s", r.code, r.stdout, r.stderr)
	}
	deadline := time.Now().Add(60 * time.Second)
	for p.metric(t, "syncer_tier_sealed_segments_total") < 1 || p.metric(t, "syncer_tier_unsealed_bytes") <= 0 {
		if time.Now().After(deadline) {
			t.Fatalf("nothing sealed in time\n%s", p.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	left := p.metric(t, "syncer_tier_unsealed_bytes")
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.done
	t.Logf("killed with %v bytes left to seal", left)

	p = startServe(t, c.config, c.http)
	waitVerified(t, p, "big.log", len(big))
	deadline = time.Now().Add(60 * time.Second)
	r0 := p.metric(t, "syncer_tier_rounds_total")
	for p.metric(t, "syncer_tier_rounds_total") < r0+2 || p.metric(t, "syncer_tier_unsealed_bytes") != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("not sealed after the restart\n%s", p.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	ctx := context.Background()
	dec, _ := zstd.NewReader(nil)
	defer dec.Close()
	var at int64
	for o := range admin.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: "hist/seg/", Recursive: true, WithMetadata: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		at0, at1, ok := segmentRange(o.Key)
		if !ok || at0 != at {
			t.Fatalf("segment %s: want one starting at %d (no gap, no overlap)", o.Key, at)
		}
		obj, err := admin.GetObject(ctx, bucket, o.Key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		st, _ := obj.Stat()
		comp, _ := io.ReadAll(obj)
		obj.Close()
		data, err := dec.DecodeAll(comp, nil)
		if err != nil || int64(len(data)) != at1-at0 || !bytes.Equal(data, big[at0:at1]) ||
			hexSum(data) != st.UserMetadata["Syncer-Sha256"] {
			t.Fatalf("segment %s: %d bytes decoded (err %v), sha256 %s, metadata %v", o.Key, len(data), err, hexSum(data), st.UserMetadata)
		}
		at = at1
	}
	if at != int64(len(big)) {
		t.Fatalf("segments end at %d, the file at %d", at, len(big))
	}
	code, body := p.get(t, "/raw/node1/big.log")
	if code != 200 || hexSum([]byte(body)) != hexSum(big) {
		t.Fatalf("/raw after the restart: %d, %d bytes", code, len(body))
	}
	p.stop(t)
}

// segmentRange reads START-END from a segment key.
func segmentRange(key string) (int64, int64, bool) {
	i := strings.LastIndexByte(key, '@')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.SplitN(strings.SplitN(key[i+1:], ".", 2)[0], "-", 2)
	if len(f) != 2 {
		return 0, 0, false
	}
	a, err1 := strconv.ParseInt(f[0], 16, 64)
	b, err2 := strconv.ParseInt(f[1], 16, 64)
	return a, b, err1 == nil && err2 == nil
}
