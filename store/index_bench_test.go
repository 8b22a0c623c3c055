package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// BenchmarkIndexBuild1M writes 1,000,000 file entries (in 1,000
// directories of 1,000) through the writer a reconcile uses, then reopens
// the index (which counts every entry). It measures the index itself, not
// hashing the files: see BenchmarkIndexReconcile for that.
//
//	go test -run '^$' -bench IndexBuild1M -benchtime 1x ./store/
func BenchmarkIndexBuild1M(b *testing.B) {
	const dirs, perDir = 1000, 1000
	for i := 0; i < b.N; i++ {
		base := b.TempDir()
		if err := os.MkdirAll(filepath.Join(base, "root"), 0o755); err != nil {
			b.Fatal(err)
		}
		ix, err := OpenIndex(IndexConfig{Dir: filepath.Join(base, "ix"), Root: filepath.Join(base, "root"), ReconcileEvery: -1})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		w := ix.newWriter()
		w.agent("node1")
		now := time.Now().UnixNano()
		for d := 0; d < dirs; d++ {
			dir := fmt.Sprintf("app/%04d", d)
			if err := w.put(nil, &IndexEntry{Agent: "node1", Path: dir, Dir: true, MtimeNs: now}); err != nil {
				b.Fatal(err)
			}
			for f := 0; f < perDir; f++ {
				e := IndexEntry{Agent: "node1", Path: dir + "/part-" + strconv.Itoa(f) + ".log", Size: 20480, MtimeNs: now, Hashed: 20480,
					hashState: make([]byte, 108), FirstUploadNs: now, LastUploadNs: now, Account: "node1"}
				if err := w.put(nil, &e); err != nil {
					b.Fatal(err)
				}
				if err := w.maybeFlush(); err != nil {
					b.Fatal(err)
				}
			}
		}
		if err := w.flush(); err != nil {
			b.Fatal(err)
		}
		if err := ix.db.Flush(); err != nil {
			b.Fatal(err)
		}
		build := time.Since(start)
		if err := ix.Close(); err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		ix, err = OpenIndex(IndexConfig{Dir: filepath.Join(base, "ix"), Root: filepath.Join(base, "root"), ReconcileEvery: -1})
		if err != nil {
			b.Fatal(err)
		}
		open := time.Since(start)
		if st := ix.Stats(); st.Files != dirs*perDir {
			b.Fatalf("reopened index counts %d files", st.Files)
		}
		start = time.Now()
		es, _, err := ix.List("node1", "app/0500", "", 0)
		if err != nil || len(es) != perDir {
			b.Fatalf("list: %d %v", len(es), err)
		}
		list := time.Since(start)
		b.ReportMetric(build.Seconds(), "build-s")
		b.ReportMetric(open.Seconds(), "reopen-s")
		b.ReportMetric(float64(list.Microseconds())/1000, "list1000-ms")
		b.ReportMetric(float64(ix.DiskUsage())/(1<<20), "disk-MiB")
		ix.Close()
	}
}

// BenchmarkIndexReconcile builds the index of 20,000 small files from the
// disk (walk, stat, SHA-256 of every file): a rebuild after the index
// directory was deleted.
//
//	go test -run '^$' -bench IndexReconcile -benchtime 1x ./store/
func BenchmarkIndexReconcile(b *testing.B) {
	base := b.TempDir()
	root := filepath.Join(base, "root")
	data := make([]byte, 2048)
	for d := 0; d < 20; d++ {
		dir := filepath.Join(root, "node1", "app", fmt.Sprintf("%02d", d))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		for f := 0; f < 1000; f++ {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%04d.log", f)), data, 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dir := filepath.Join(base, fmt.Sprintf("ix%d", i))
		ix, err := OpenIndex(IndexConfig{Dir: dir, Root: root, ReconcileEvery: -1})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if err := ix.reconcile(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(time.Since(start).Microseconds())/20000, "us/file")
		if st := ix.Stats(); st.Files != 20000 {
			b.Fatalf("indexed %d files", st.Files)
		}
		ix.Close()
	}
}
