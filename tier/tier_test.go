package tier

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/syncer-dev/syncer/internal/archive"
	"github.com/syncer-dev/syncer/store"
)

// TestSealEvictRead: files are cut into segments by size and by idle
// time, their local bytes are freed once confirmed, and reads through the
// tier return the very bytes, sealed, evicted and hot alike, while the
// file keeps growing.
func TestSealEvictRead(t *testing.T) {
	e := newEnv(t, nil)
	big := logs("big", 40000) // ~4 MiB: four SealSize segments, the rest hot
	small := logs("small", 100)
	e.write("node1/app/big.log", big, false)
	e.write("node1/app/small.log", small, false)
	if err := e.round(); err != nil {
		t.Fatal(err)
	}
	segs := e.objects("seg/")
	if len(segs) != int(int64(len(big))/(1<<20)) {
		t.Fatalf("after one round: %d segments, want %d (whole SealSize ones of big.log only): %v", len(segs), len(big)/(1<<20), segs)
	}
	p := filepath.Join(e.root, "node1/app/big.log")
	if got := allocated(t, p); got > int64(len(big))-int64(len(segs))<<20+64<<10 {
		t.Errorf("big.log occupies %d bytes on disk after eviction of %d MiB; want at most its hot tail", got, len(segs))
	}
	if fi, _ := os.Stat(p); fi.Size() != int64(len(big)) {
		t.Fatalf("size after eviction %d, want %d (KEEP_SIZE)", fi.Size(), len(big))
	}
	for _, rel := range []string{"node1/app/big.log", "node1/app/small.log"} {
		want := big
		if strings.HasSuffix(rel, "small.log") {
			want = small
		}
		got, err := e.read(rel)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("read %s: %d bytes (err %v), want %d identical", rel, len(got), err, len(want))
		}
	}
	// Appends keep working on the file with holes; idle time seals the rest.
	more := logs("more", 500)
	e.write("node1/app/big.log", more, true)
	all := append(append([]byte(nil), big...), more...)
	e.clock.Add(2 * time.Minute)
	if err := e.round(); err != nil {
		t.Fatal(err)
	}
	got, err := e.read("node1/app/big.log")
	if err != nil || !bytes.Equal(got, all) {
		t.Fatalf("read after append and idle seal: %d bytes (err %v), want %d identical", len(got), err, len(all))
	}
	ent, err := e.ix.Lookup("node1", "app/big.log")
	if err != nil || ent.SHA256Hex() != sum(all) {
		t.Fatalf("index sha256 %s (err %v), want %s", ent.SHA256Hex(), err, sum(all))
	}
	// Random reads at frame and segment borders.
	f, err := e.tier.Open("node1", "app/big.log")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, off := range []int64{0, FrameSize - 3, 1<<20 - 5, 3<<20 + 17, int64(len(all)) - 4096} {
		b := make([]byte, 4096)
		n, err := f.ReadAt(b, off)
		want := all[off:min(off+4096, int64(len(all)))]
		if (err != nil && n != len(want)) || !bytes.Equal(b[:n], want) {
			t.Fatalf("ReadAt %d: %d bytes, err %v", off, n, err)
		}
	}
	if n := len(e.objects("meta/")); n != 0 {
		t.Logf("meta objects: %d", n)
	}
}

// TestCorruptSegment: a segment replaced behind the tier's back by a
// second S3 client is never served: the read fails with EIO and the file
// shows mismatch in the index.
func TestCorruptSegment(t *testing.T) {
	e := newEnv(t, nil)
	data := logs("c", 30000)
	e.write("node2/c.log", data, false)
	e.clock.Add(2 * time.Minute)
	if err := e.round(); err != nil {
		t.Fatal(err)
	}
	segs := e.objects("seg/")
	if len(segs) < 2 {
		t.Fatalf("segments: %v", segs)
	}
	// Same length, one byte changed: only the checks can tell.
	ctx := context.Background()
	obj, err := e.admin.GetObject(ctx, e.bucket, segs[1], minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(obj)
	b := buf.Bytes()
	b[len(b)/3] ^= 0x55
	if _, err := e.admin.PutObject(ctx, e.bucket, segs[1], bytes.NewReader(b), int64(len(b)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := e.read("node2/c.log")
	if err == nil || !errors.Is(err, syscall.EIO) {
		t.Fatalf("read of a corrupted segment: %d bytes, err %v; want EIO", len(got), err)
	}
	if bytes.Equal(got, data[:len(got)]) && len(got) > 1<<20 {
		t.Fatalf("read returned %d bytes, past the corrupted segment", len(got))
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ent, err := e.ix.Lookup("node2", "c.log")
		if err == nil && ent.Status() == store.VerifyMismatch {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("index status %v (err %v), want mismatch", ent.Status(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// It stays refused: a later read fails too, even of the good segment.
	if _, err := e.read("node2/c.log"); err == nil {
		t.Fatal("second read of the mismatched file succeeded")
	}
}

// TestRestoreFromBucket: a historian with empty state and archive
// directories and the same bucket gets every sealed file back, read
// through the tier and identical.
func TestRestoreFromBucket(t *testing.T) {
	e := newEnv(t, nil)
	files := map[string][]byte{
		"n1/a/one.log":                         logs("one", 20000),
		"n1/a/two.log":                         logs("two", 10),
		"n2/deep/er/three.log":                 logs("three", 3000),
		"n2/x y/naïve \x01.log":                logs("odd", 50),
		"n2/a.log.superseded-20261203T120000Z": logs("v", 70),
	}
	for rel, b := range files {
		e.write(rel, b, false)
	}
	e.clock.Add(2 * time.Minute)
	if err := e.round(); err != nil {
		t.Fatal(err)
	}
	e.stop()
	if err := os.RemoveAll(e.root); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(e.state); err != nil {
		t.Fatal(err)
	}
	e.start(nil)
	for rel, want := range files {
		agent, r, _ := strings.Cut(rel, "/")
		ent, err := e.ix.Lookup(agent, r)
		if err != nil || ent.Size != int64(len(want)) || ent.SHA256Hex() != sum(want) {
			t.Errorf("restored %s: size %d sha %s err %v; want %d %s", rel, ent.Size, ent.SHA256Hex(), err, len(want), sum(want))
		}
		got, err := e.read(rel)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("read restored %s: %d bytes, err %v", rel, len(got), err)
		}
	}
}

// TestRetention deletes files whose last segment is older than the
// agent's retention, and only those.
func TestRetention(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Retain = 48 * time.Hour
		c.RetainAgent = map[string]time.Duration{"keep": 0, "short": time.Hour}
	})
	for _, rel := range []string{"keep/a.log", "short/a.log", "norm/a.log"} {
		e.write(rel, logs(rel, 100), false)
	}
	e.clock.Add(2 * time.Minute)
	if err := e.round(); err != nil {
		t.Fatal(err)
	}
	if n := len(e.objects("seg/")); n != 3 {
		t.Fatalf("%d segments, want 3", n)
	}
	e.clock.Add(2 * time.Hour)
	if err := e.round(); err != nil {
		t.Fatal(err)
	}
	_ = e.ix.Flush(context.Background())
	if _, err := e.ix.Lookup("short", "a.log"); !errors.Is(err, store.ErrNoEntry) {
		t.Errorf("short/a.log after its retention: %v, want gone", err)
	}
	if n := len(e.objects("seg/short/")); n != 0 {
		t.Errorf("short's segments after its retention: %d", n)
	}
	e.clock.Add(72 * time.Hour)
	if err := e.round(); err != nil {
		t.Fatal(err)
	}
	_ = e.ix.Flush(context.Background())
	if _, err := e.ix.Lookup("norm", "a.log"); !errors.Is(err, store.ErrNoEntry) {
		t.Errorf("norm/a.log after --retain: %v, want gone", err)
	}
	if _, err := e.ix.Lookup("keep", "a.log"); err != nil {
		t.Errorf("keep/a.log (retain 0: for ever): %v", err)
	}
	if n := len(e.objects("seg/")); n != 1 {
		t.Errorf("%d segments left, want keep's one", n)
	}
}

// TestRetriedSeal: a historian that died after its PUT went through and
// before it recorded the segment seals the same bytes again on restart,
// finds its own object (412 on If-None-Match) and takes it; an object of
// another historian under the key is never taken.
func TestRetriedSeal(t *testing.T) {
	e := newEnv(t, nil)
	data := logs("r", 5000)
	e.write("n/r.log", data, false)
	e.clock.Add(2 * time.Minute)
	if err := e.round(); err != nil {
		t.Fatal(err)
	}
	before := e.objects("seg/")
	// Forget the record, keep the intent: as after a kill -9 mid-seal.
	rec, _, _ := e.tier.cat.get("n", "r.log")
	k := rec.Segments[0].Key
	nonce := k[strings.LastIndexByte(k, '-')+1 : len(k)-len(".zst")]
	if err := e.tier.setIntent(&rec, rec.sealed(), nonce); err != nil {
		t.Fatal(err)
	}
	// Local bytes are needed again to reseal: put them back.
	e.write("n/r.log", data, false)
	if err := e.tier.cat.del("n", "r.log"); err != nil {
		t.Fatal(err)
	}
	if err := e.round(); err != nil {
		t.Fatalf("resealing over our own object: %v", err)
	}
	if after := e.objects("seg/"); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Fatalf("objects before %v, after %v", before, after)
	}
	rec, _, _ = e.tier.cat.get("n", "r.log")
	if rec.sealed() != int64(len(data)) {
		t.Fatalf("sealed %d, want %d", rec.sealed(), len(data))
	}
	// A different object under the key: refused, and the file not sealed.
	_ = e.tier.cat.del("n", "r.log")
	if err := e.tier.setIntent(&rec, rec.sealed(), nonce); err != nil {
		t.Fatal(err)
	}
	e.write("n/r.log", data, false)
	ctx := context.Background()
	junk := []byte("not ours")
	if _, err := e.admin.PutObject(ctx, e.bucket, before[0], bytes.NewReader(junk), int64(len(junk)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := e.round(); err == nil || !strings.Contains(err.Error(), "not this historian's") {
		t.Fatalf("seal over a foreign object: %v", err)
	}
}

// TestStoreDown: with radosgw stopped, sealing fails and is retried,
// the backlog is counted, files keep growing; once it is back, everything
// is sealed.
func TestStoreDown(t *testing.T) {
	e := newEnv(t, nil)
	if e.s3.Ceph == nil {
		t.Skip("needs the harness's own Ceph (radosgw stopped and started)")
	}
	e.s3.Ceph.StopRGW(t)
	restarted := false
	defer func() {
		if !restarted {
			e.s3.Ceph.StartRGW(t)
		}
	}()
	data := logs("d", 20000)
	e.write("n/d.log", data, false)
	e.clock.Add(2 * time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	err := e.tier.Round(ctx)
	cancel()
	if err == nil {
		t.Fatal("round with radosgw down: no error")
	}
	if got := e.tier.m.backlog.Load(); got != int64(len(data)) {
		t.Fatalf("backlog %d, want %d", got, len(data))
	}
	e.write("n/d.log", data, true) // ingest goes on
	e.s3.Ceph.StartRGW(t)
	restarted = true
	e.clock.Add(2 * time.Minute)
	if err := e.round(); err != nil {
		t.Fatal(err)
	}
	if got := e.tier.m.backlog.Load(); got != 0 {
		t.Fatalf("backlog after recovery %d", got)
	}
	got, err := e.read("n/d.log")
	if err != nil || !bytes.Equal(got, append(append([]byte(nil), data...), data...)) {
		t.Fatalf("read after the store came back: %d bytes, %v", len(got), err)
	}
}

// TestSegmentHashChecked: a segment read whole, in order, is checked
// against its recorded SHA-256 as well as frame by frame.
func TestSegmentHashChecked(t *testing.T) {
	e := newEnv(t, nil)
	data := logs("h", 10000) // one segment of two frames
	e.write("n/h.log", data, false)
	e.clock.Add(2 * time.Minute)
	if err := e.round(); err != nil {
		t.Fatal(err)
	}
	got, err := e.read("n/h.log")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read: %d bytes, %v", len(got), err)
	}
	rec, _, _ := e.tier.cat.get("n", "h.log")
	if len(rec.Segments) != 1 || len(rec.Segments[0].Frames) < 2 || rec.Evicted == 0 {
		t.Fatalf("want one evicted segment of several frames: %+v", rec)
	}
	rec.Segments[0].SHA256 = strings.Repeat("0", 64)
	if err := e.tier.cat.put(&rec); err != nil {
		t.Fatal(err)
	}
	if _, err := e.read("n/h.log"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("whole read of a segment whose hash differs: %v, want ErrCorrupt", err)
	}
}

// TestSupersededKeepsItsSegments: a sealed, evicted file renamed to a
// version before a new upload takes its place keeps its segments under
// the version's name, told by the FTP server's event or, without one,
// found by its inode; the new file at the path is all local.
func TestSupersededKeepsItsSegments(t *testing.T) {
	for _, told := range []bool{true, false} {
		t.Run(map[bool]string{true: "told", false: "found"}[told], func(t *testing.T) {
			e := newEnv(t, nil)
			old := logs("old", 15000)
			e.write("n/app.log", old, false)
			e.clock.Add(2 * time.Minute)
			if err := e.round(); err != nil {
				t.Fatal(err)
			}
			const version = "app.log.superseded-20261203T120000Z"
			if err := os.Rename(filepath.Join(e.root, "n/app.log"), filepath.Join(e.root, "n", version)); err != nil {
				t.Fatal(err)
			}
			if told {
				e.tier.Superseded("/n/app.log", "/n/"+version)
			}
			e.ix.Notify(store.IngestEvent{Kind: store.IngestSuperseded, Path: "/n/app.log", VersionPath: "/n/" + version, Time: time.Now()})
			fresh := logs("new", 300)
			e.write("n/app.log", fresh, false)
			if err := e.round(); err != nil {
				t.Fatal(err)
			}
			for rel, want := range map[string][]byte{"n/" + version: old, "n/app.log": fresh} {
				got, err := e.read(rel)
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("%s: %d bytes (err %v), want %d identical", rel, len(got), err, len(want))
				}
			}
			e.clock.Add(2 * time.Minute)
			if err := e.round(); err != nil {
				t.Fatal(err)
			}
			got, err := e.read("n/app.log")
			if err != nil || !bytes.Equal(got, fresh) {
				t.Errorf("new app.log once sealed: %d bytes (err %v)", len(got), err)
			}
			// The bucket alone gives each its own bytes back.
			e.stop()
			_ = os.RemoveAll(e.root)
			_ = os.RemoveAll(e.state)
			e.start(nil)
			for rel, want := range map[string][]byte{"n/" + version: old, "n/app.log": fresh} {
				got, err := e.read(rel)
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("restored %s: %d bytes (err %v), want %d identical", rel, len(got), err, len(want))
				}
			}
		})
	}
}

// TestHighWater: over the disk's high-water mark, sealed bytes are
// evicted at once whatever --local-keep says; under it they stay.
func TestHighWater(t *testing.T) {
	for _, over := range []bool{false, true} {
		t.Run(map[bool]string{false: "under", true: "over"}[over], func(t *testing.T) {
			e := newEnv(t, func(c *Config) {
				c.LocalKeep = time.Hour
				c.HighWater = 0.999999
				if over {
					c.HighWater = 1e-9 // any disk in use is over it
				}
			})
			data := logs("w", 20000)
			e.write("n/w.log", data, false)
			e.clock.Add(2 * time.Minute)
			if err := e.round(); err != nil {
				t.Fatal(err)
			}
			got := allocated(t, filepath.Join(e.root, "n/w.log"))
			if evicted := got < int64(len(data))/2; evicted != over {
				t.Fatalf("over the mark: %v; %d of %d bytes still on disk", over, got, len(data))
			}
			if b, err := e.read("n/w.log"); err != nil || !bytes.Equal(b, data) {
				t.Fatalf("read: %d bytes, %v", len(b), err)
			}
		})
	}
}

// TestCommitAfterEviction: an agent's commit record for a prefix of a
// file whose bytes were evicted (and appended to since) is checked by the
// index against the bytes read through the tier, not the holes on disk.
func TestCommitAfterEviction(t *testing.T) {
	e := newEnv(t, nil)
	first := logs("p", 20000)
	e.write("n/p.log", first, false)
	e.clock.Add(2 * time.Minute)
	if err := e.round(); err != nil {
		t.Fatal(err)
	}
	if rec, _, _ := e.tier.cat.get("n", "p.log"); rec.Evicted < 1<<20 {
		t.Fatalf("evicted %d bytes, want the sealed prefix", rec.Evicted)
	}
	more := logs("q", 100)
	e.write("n/p.log", more, true)
	commit := func(seq int, data []byte) {
		t.Helper()
		rec := archive.CommitRecord{Agent: "n", Seq: uint64(seq), Time: time.Now().UTC(),
			Files: []archive.CommitFile{{Path: "p.log", Size: int64(len(data)), SHA256: sum(data)}}}
		b, _ := json.Marshal(rec)
		name := fmt.Sprintf("%s/%s/%08d.json", archive.MetaDir, archive.CommitsDir, seq)
		e.write("n/"+name, b, false)
	}
	commit(1, first) // a prefix of what the index has hashed: read again from 0
	ent, err := e.ix.Lookup("n", "p.log")
	if err != nil || ent.Status() == store.VerifyMismatch {
		t.Fatalf("after a commit of the evicted prefix: %v %v, want no mismatch", ent.Status(), err)
	}
	all := append(append([]byte(nil), first...), more...)
	commit(2, all)
	if ent, err = e.ix.Lookup("n", "p.log"); err != nil || ent.Status() != store.VerifyVerified {
		t.Fatalf("after a commit of the whole file: %v %v, want verified", ent.Status(), err)
	}
	// The same check with a wrong hash of the prefix is a mismatch: the
	// test can fail.
	bad := bytes.Clone(first)
	bad[10] ^= 1
	commit(3, bad)
	if ent, _ = e.ix.Lookup("n", "p.log"); ent.Status() != store.VerifyMismatch {
		t.Fatalf("after a commit of other bytes: %v, want mismatch", ent.Status())
	}
}

// TestCompaction: a file sealed a little at a time has its small
// segments merged into one; the small ones leave the bucket a minute
// later; reads before, during and after, and a restore, give the bytes.
func TestCompaction(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.LocalKeep = time.Hour })
	var all []byte
	for i := range compactMin {
		part := logs(fmt.Sprint("part", i), 300)
		all = append(all, part...)
		e.write("n/slow.log", part, i > 0)
		e.clock.Add(2 * time.Minute)
		if err := e.round(); err != nil {
			t.Fatal(err)
		}
		if rec, _, _ := e.tier.cat.get("n", "slow.log"); i < compactMin-1 && len(rec.Segments) != i+1 {
			t.Fatalf("after %d idle seals: %d segments", i+1, len(rec.Segments))
		}
	}
	rec, _, _ := e.tier.cat.get("n", "slow.log")
	if len(rec.Segments) != 1 || rec.sealed() != int64(len(all)) {
		t.Fatalf("after four idle seals and compaction: %d segments up to %d, want 1 up to %d", len(rec.Segments), rec.sealed(), len(all))
	}
	if n := len(e.objects("seg/")); n != 5 {
		t.Fatalf("%d objects right after compaction, want 5: the four small ones wait a minute", n)
	}
	e.clock.Add(2 * time.Minute)
	if err := e.round(); err != nil {
		t.Fatal(err)
	}
	if keys := e.objects("seg/"); len(keys) != 1 || keys[0] != rec.Segments[0].Key {
		t.Fatalf("objects a minute later: %v, want only %s", keys, rec.Segments[0].Key)
	}
	e.clock.Add(2 * time.Hour) // past --local-keep: evicted, read from the merged segment
	if err := e.round(); err != nil {
		t.Fatal(err)
	}
	if got, err := e.read("n/slow.log"); err != nil || !bytes.Equal(got, all) {
		t.Fatalf("read after compaction: %d bytes, %v", len(got), err)
	}
	e.stop()
	_ = os.RemoveAll(e.root)
	_ = os.RemoveAll(e.state)
	e.start(nil)
	if got, err := e.read("n/slow.log"); err != nil || !bytes.Equal(got, all) {
		t.Fatalf("read after restore: %d bytes, %v", len(got), err)
	}
}

// TestOpenLocalFileIsNotEvicted: a file opened while all its bytes are
// local (what the FUSE view's passthrough descriptor reads without asking
// the daemon) keeps them on the disk until it is closed, over several
// passes; the pass after the close evicts it, and reads stay identical
// all along.
func TestOpenLocalFileIsNotEvicted(t *testing.T) {
	e := newEnv(t, nil)
	big := logs("pinned", 30000) // ~3 MiB: whole SealSize segments
	e.write("node1/app/big.log", big, false)
	f, err := e.tier.Open("node1", "app/big.log")
	if err != nil {
		t.Fatal(err)
	}
	if l, ok := f.(archive.Local); !ok || !l.IsLocal() {
		t.Fatalf("Open of a file with nothing evicted gave %T, want an archive.Local", f)
	}
	p := filepath.Join(e.root, "node1/app/big.log")
	disk, err := os.Open(p) // the passthrough reader: the disk file itself
	if err != nil {
		t.Fatal(err)
	}
	defer disk.Close()
	for pass := range 3 {
		if err := e.round(); err != nil {
			t.Fatal(err)
		}
		if n := len(e.objects("seg/")); n == 0 {
			t.Fatalf("pass %d: nothing sealed", pass)
		}
		got, err := io.ReadAll(io.NewSectionReader(disk, 0, int64(len(big))))
		if err != nil || !bytes.Equal(got, big) {
			t.Fatalf("pass %d: the disk file read %d bytes (err %v), not the archived ones: evicted while open", pass, len(got), err)
		}
		if got := allocated(t, p); got < int64(len(big))-64<<10 {
			t.Fatalf("pass %d: %d bytes allocated of %d: evicted while open", pass, got, len(big))
		}
	}
	f.Close()
	if err := e.round(); err != nil {
		t.Fatal(err)
	}
	if got := allocated(t, p); got >= int64(len(big))-1<<20 {
		t.Fatalf("after close: %d bytes allocated of %d, want the sealed bytes evicted", got, len(big))
	}
	got, err := e.read("node1/app/big.log")
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("read after eviction: %d bytes (err %v), want %d identical", len(got), err, len(big))
	}
}

// TestSequentialReadAhead: a sequential reader of an evicted file (128 KiB
// reads, as the FUSE view gets them) is served by read-ahead in runs of
// frames, a few large GETs instead of one per frame, and still gets the
// very bytes, every frame and the whole segment checked.
func TestSequentialReadAhead(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.SealSize = 40 << 20; c.CacheSize = 64 << 20 })
	data := logs("seq", 420000) // ~42 MiB: one 80-frame segment, the rest hot
	e.write("node1/app/seq.log", data, false)
	if err := e.round(); err != nil {
		t.Fatal(err)
	}
	if segs := e.objects("seg/"); len(segs) != 1 {
		t.Fatalf("%d segments, want 1: %v", len(segs), segs)
	}
	for round := range 2 { // the second time from the cache, no GET
		f, err := e.tier.Open("node1", "app/seq.log")
		if err != nil {
			t.Fatal(err)
		}
		before := e.tier.b.reqs.Load()
		var got []byte
		b := make([]byte, 128<<10)
		for off := int64(0); ; {
			n, err := f.ReadAt(b, off)
			got = append(got, b[:n]...)
			off += int64(n)
			if err == io.EOF || (err == nil && off == int64(len(data))) {
				break
			}
			if err != nil {
				t.Fatalf("ReadAt %d: %v", off, err)
			}
		}
		f.Close()
		e.tier.fetchWG.Wait() // the read-ahead's last GETs, and the cache files
		e.tier.cache.wg.Wait()
		reqs := e.tier.b.reqs.Load() - before
		if !bytes.Equal(got, data) {
			t.Fatalf("round %d: read %d bytes, not the %d written", round, len(got), len(data))
		}
		frames := (40 << 20) / FrameSize
		// The seek table (2 GETs when not known), the first frame, then
		// runs of readAheadChunk frames.
		if limit := int64(frames/readAheadChunk + 6); round == 0 && reqs > limit {
			t.Errorf("a sequential read of %d evicted frames made %d requests, want at most %d (read-ahead in runs)", frames, reqs, limit)
		}
		if round == 1 && reqs != 0 {
			t.Errorf("reading again from a warm cache made %d requests, want 0", reqs)
		}
	}
}

// TestRestoreWarmsCache: a restore fetches the restored files' frames into
// the cache in the background, several GETs at once, so that the index,
// which then hashes every file one after the other, finds them there
// instead of waiting for a GET per small file.
func TestRestoreWarmsCache(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.CacheSize = 64 << 20 })
	files := map[string][]byte{}
	for i := range 40 {
		files[fmt.Sprintf("n1/app/d%d/f%02d.log", i%4, i)] = logs(fmt.Sprint("w", i), 40+i)
	}
	for rel, b := range files {
		e.write(rel, b, false)
	}
	e.clock.Add(2 * time.Minute)
	if err := e.round(); err != nil { // seals them all and ships a snapshot
		t.Fatal(err)
	}
	e.stop()
	for _, d := range []string{e.root, e.state} {
		if err := os.RemoveAll(d); err != nil {
			t.Fatal(err)
		}
	}
	tr, err := New(e.config(func(c *Config) { c.CacheSize = 64 << 20 }))
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	n, err := tr.Restore(context.Background())
	if err != nil || n != len(files) {
		t.Fatalf("restored %d files (err %v), want %d", n, err, len(files))
	}
	tr.fetchWG.Wait() // the warming
	tr.cache.wg.Wait()
	before := tr.b.reqs.Load()
	for rel, want := range files {
		agent, r, _ := strings.Cut(rel, "/")
		f, err := tr.Open(agent, r)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(f)
		f.Close()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("read restored %s: %d bytes (err %v), want %d identical", rel, len(got), err, len(want))
		}
	}
	if reqs := tr.b.reqs.Load() - before; reqs != 0 {
		t.Errorf("reading the %d restored files made %d requests to the store, want 0 (warmed at restore)", len(files), reqs)
	}
}
