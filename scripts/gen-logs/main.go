// Command gen-logs writes a realistic log tree for demos and benchmarks:
// nested agent/app/date directories, lines with RFC 3339 timestamps, levels,
// request ids and messages, from a fixed seed (the same flags always give
// the same bytes).
//
//	go run ./scripts/gen-logs -out /tmp/logs -files 1000 -size 1MiB
//	go run ./scripts/gen-logs -out /tmp/logs -agents 3 -files 200 -size mixed
//	go run ./scripts/gen-logs -out /tmp/logs -append 10% -append-size 1KiB
//
// -size is the size of every file, or "mixed": sizes spread from a few KiB
// to several MiB (one in fifty files larger), as in a real /var/log.
// -append appends -append-size bytes of new lines to that share of the
// .log files already under -out (every n-th file, so runs are repeatable).
//
// -seed-manifest STATE adds -entries manifest entries to the agent -agent's
// manifest in the state directory STATE, for files deleted long ago (as a
// long-lived agent accumulates): the agent benchmark measures memory with
// a million-entry manifest without a million files on disk.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/syncer-dev/syncer/store"
)

func main() {
	out := flag.String("out", "", "output `DIR`ectory (created)")
	files := flag.Int("files", 100, "number of log files")
	size := flag.String("size", "mixed", "`SIZE` of each file (e.g. 4KiB, 1MiB) or mixed")
	agents := flag.Int("agents", 0, "top-level agent directories (0: none, files directly under -out)")
	apps := flag.Int("apps", 4, "application directories")
	days := flag.Int("days", 7, "date directories per application")
	seed := flag.Uint64("seed", 1, "random seed")
	appendPct := flag.String("append", "", "append to this `PERCENT` of the existing .log files instead of generating")
	appendSize := flag.String("append-size", "1KiB", "bytes to append to each chosen file")
	seedManifest := flag.String("seed-manifest", "", "add -entries gone entries to the manifest in state `DIR`")
	agent := flag.String("agent", "", "agent id of -seed-manifest")
	entries := flag.Int("entries", 1_000_000, "entries -seed-manifest adds")
	flag.Parse()
	if *seedManifest != "" {
		if *agent == "" {
			fail("-seed-manifest needs -agent")
		}
		if err := seedEntries(*seedManifest, *agent, *entries); err != nil {
			fail("%v", err)
		}
		fmt.Printf("added %d entries to %s\n", *entries, store.Dir(*seedManifest, *agent))
		return
	}
	if *out == "" {
		fail("-out is required")
	}
	if *appendPct != "" {
		pct, err := strconv.ParseFloat(strings.TrimSuffix(*appendPct, "%"), 64)
		if err != nil || pct <= 0 || pct > 100 {
			fail("-append %q: want a percentage like 10%%", *appendPct)
		}
		n, err := parseSize(*appendSize)
		if err != nil {
			fail("-append-size: %v", err)
		}
		total, count := appendTo(*out, pct, n, *seed)
		fmt.Printf("appended %d bytes to %d files\n", total, count)
		return
	}
	fixed := int64(-1)
	if *size != "mixed" {
		n, err := parseSize(*size)
		if err != nil {
			fail("-size: %v", err)
		}
		fixed = n
	}
	r := rand.New(rand.NewPCG(*seed, *seed*0x9e3779b97f4a7c15+1))
	appNames := []string{"api", "worker", "nginx", "db", "auth", "billing", "search", "cron"}
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var total int64
	for i := 0; i < *files; i++ {
		dir := *out
		if *agents > 0 {
			dir = filepath.Join(dir, fmt.Sprintf("node%02d", i%*agents))
		}
		app := appNames[(i/max(*agents, 1))%min(*apps, len(appNames))]
		day := base.AddDate(0, 0, (i/7)%max(*days, 1))
		dir = filepath.Join(dir, app, day.Format("2006-01-02"))
		n := fixed
		if n < 0 {
			n = mixedSize(r)
		}
		name := filepath.Join(dir, fmt.Sprintf("%s-%05d.log", app, i))
		if err := writeFile(name, n, r, day); err != nil {
			fail("%v", err)
		}
		total += n
	}
	fmt.Printf("wrote %d files, %d bytes, under %s\n", *files, total, *out)
}

// mixedSize draws a size from KiB to large: most files small, some MiB.
func mixedSize(r *rand.Rand) int64 {
	switch x := r.IntN(100); {
	case x < 2:
		return 8<<20 + r.Int64N(24<<20)
	case x < 20:
		return 256<<10 + r.Int64N(2<<20)
	default:
		return 1<<10 + r.Int64N(64<<10)
	}
}

var levels = []string{"INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"}
var msgs = []string{
	"request served", "cache miss, fetching from origin", "connection reset by peer",
	"user logged in", "slow query detected", "retrying upstream call", "job finished",
	"config reloaded", "disk usage above threshold", "payment authorised",
}
var paths = []string{"/api/v1/orders", "/api/v1/users", "/healthz", "/login", "/static/app.js", "/search"}

// line appends one log line to b.
func line(b []byte, r *rand.Rand, ts time.Time) []byte {
	b = ts.AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	b = append(b, ' ')
	b = append(b, levels[r.IntN(len(levels))]...)
	b = append(b, " req="...)
	b = strconv.AppendUint(b, r.Uint64()&0xffffffff, 16)
	b = append(b, " path="...)
	b = append(b, paths[r.IntN(len(paths))]...)
	b = append(b, " status="...)
	b = strconv.AppendInt(b, int64([]int{200, 200, 200, 201, 204, 301, 404, 500}[r.IntN(8)]), 10)
	b = append(b, " took="...)
	b = strconv.AppendInt(b, int64(r.IntN(2000)), 10)
	b = append(b, "ms "...)
	b = append(b, msgs[r.IntN(len(msgs))]...)
	return append(b, '\n')
}

// writeLines writes exactly n bytes of lines to w.
func writeLines(w *bufio.Writer, n int64, r *rand.Rand, ts time.Time) error {
	buf := make([]byte, 0, 256)
	for n > 0 {
		ts = ts.Add(time.Duration(r.IntN(3000)) * time.Millisecond)
		buf = line(buf[:0], r, ts)
		if int64(len(buf)) > n {
			buf = buf[:n]
			buf[len(buf)-1] = '\n'
		}
		if _, err := w.Write(buf); err != nil {
			return err
		}
		n -= int64(len(buf))
	}
	return nil
}

func writeFile(name string, n int64, r *rand.Rand, day time.Time) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if err := writeLines(w, n, r, day); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// appendTo appends n bytes to every k-th .log file under dir (sorted), so
// that pct percent of them grow.
func appendTo(dir string, pct float64, n int64, seed uint64) (int64, int) {
	var names []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".log") {
			names = append(names, p)
		}
		return nil
	})
	sort.Strings(names)
	step := max(int(100/pct+0.5), 1)
	r := rand.New(rand.NewPCG(seed, 7))
	var total int64
	count := 0
	for i := 0; i < len(names); i += step {
		f, err := os.OpenFile(names[i], os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			fail("%v", err)
		}
		w := bufio.NewWriter(f)
		if err := writeLines(w, n, r, time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)); err != nil {
			fail("%v", err)
		}
		if err := w.Flush(); err != nil {
			fail("%v", err)
		}
		f.Close()
		total += n
		count++
	}
	return total, count
}

// seedEntries adds n entries of long-deleted files to a manifest.
func seedEntries(state, agent string, n int) error {
	m, err := store.Open(store.Dir(state, agent))
	if err != nil {
		return err
	}
	hs := make([]byte, 108)
	for i := 0; i < n; {
		b := m.NewBatch()
		for j := 0; j < 10_000 && i < n; j, i = j+1, i+1 {
			e := store.Entry{Status: store.StatusGone, Size: 1 << 20, Archived: 1 << 20,
				Dev: 1, Ino: uint64(100_000_000 + i), HashState: hs, HeadLen: 4096, Versions: 1}
			p := fmt.Sprintf("old/2025-%02d-%02d/host-%07d.log", i%12+1, i%28+1, i)
			if err := b.Put([]byte(p), e); err != nil {
				return err
			}
		}
		if err := b.Commit(false); err != nil {
			return err
		}
	}
	return m.Close()
}

// parseSize reads 4KiB, 1MiB, 1GiB, 512 (bytes).
func parseSize(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suf string
		m   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(s, u.suf) {
			s, mult = strings.TrimSuffix(s, u.suf), u.m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad size %q (want e.g. 4KiB, 1MiB)", s)
	}
	return n * mult, nil
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "gen-logs: "+format+"\n", args...)
	os.Exit(2)
}
