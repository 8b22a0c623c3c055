package httpview

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// tlRef is one line as the test wrote it: what the timeline must return.
type tlRef struct {
	agent, path string
	offset      int64
	t           time.Time
	level       string
	text        string
}

// tlWriter writes a log file line by line in one format and keeps the
// reference of each line.
type tlWriter struct {
	agent, path string
	buf         bytes.Buffer
	refs        []tlRef
	t           time.Time
	level       string
}

func (w *tlWriter) line(t time.Time, level, text string, format func(time.Time, string) string) {
	w.t, w.level = t.UTC(), level
	w.add(format(t, level) + text)
}

// cont writes a line without a time: it belongs to the line before.
func (w *tlWriter) cont(text string) { w.add(text) }

func (w *tlWriter) add(s string) {
	w.refs = append(w.refs, tlRef{w.agent, w.path, int64(w.buf.Len()), w.t, w.level, s})
	w.buf.WriteString(s + "\n")
}

var tlLevels = []string{"debug", "info", "info", "info", "warn", "error"}

// tlCorpus writes three agents' logs in different formats and zones over
// the same hours, lines interleaved across them, with stack traces, plus a
// file of another day; it returns the reference of every line.
func tlCorpus(t *testing.T, root string, seed uint64) []tlRef {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	base := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	plus2 := time.FixedZone("", 2*3600)
	minus7 := time.FixedZone("", -7*3600)
	var all []tlRef
	write := func(w *tlWriter) {
		p := filepath.Join(root, w.agent, filepath.FromSlash(w.path))
		writeFile(t, p, w.buf.Bytes())
		all = append(all, w.refs...)
	}
	levelWord := map[string]string{"debug": "DEBUG", "info": "INFO", "warn": "WARNING", "error": "ERROR"}

	// n1: RFC 3339 with a +02:00 zone, log4j-like, Java stack traces.
	w := &tlWriter{agent: "n1", path: "app/service.log"}
	tm := base
	for i := 0; i < 3000; i++ {
		tm = tm.Add(time.Duration(rng.IntN(3000)) * time.Millisecond)
		l := tlLevels[rng.IntN(len(tlLevels))]
		w.line(tm, l, fmt.Sprintf("request %d handled", i), func(t time.Time, l string) string {
			return t.In(plus2).Format("2006-01-02T15:04:05.000-07:00") + " " + strings.ToUpper(l) + " [main] c.e.App - "
		})
		if l == "error" {
			w.cont("java.lang.IllegalStateException: boom " + fmt.Sprint(i))
			w.cont("\tat com.example.App.handle(App.java:42)")
		}
	}
	write(w)

	// n1: JSON lines, times in UTC (Z).
	w = &tlWriter{agent: "n1", path: "app/events.json"}
	tm = base
	for i := 0; i < 2000; i++ {
		tm = tm.Add(time.Duration(rng.IntN(4000)) * time.Millisecond)
		l := tlLevels[rng.IntN(len(tlLevels))]
		w.t, w.level = tm, l
		w.add(fmt.Sprintf(`{"time":%q,"level":%q,"msg":"event %d"}`, tm.Format(time.RFC3339Nano), strings.ToUpper(l), i))
	}
	write(w)

	// n2: nginx combined, -0700, whole seconds; the level is the status.
	w = &tlWriter{agent: "n2", path: "nginx/access.log"}
	tm = base
	for i := 0; i < 2500; i++ {
		tm = tm.Add(time.Duration(rng.IntN(4)) * time.Second)
		status, l := 200, "info"
		switch rng.IntN(8) {
		case 0:
			status, l = 404, "warn"
		case 1:
			status, l = 502, "error"
		}
		w.t, w.level = tm, l
		w.add(fmt.Sprintf(`192.0.2.%d - - [%s] "GET /item/%d HTTP/1.1" %d 512 "-" "curl/8.5.0"`, i%250, tm.In(minus7).Format("02/Jan/2006:15:04:05 -0700"), i, status))
	}
	write(w)

	// n3: Python logging's default, no zone (read as UTC), tracebacks.
	w = &tlWriter{agent: "n3", path: "py/worker.log"}
	tm = base
	for i := 0; i < 2500; i++ {
		tm = tm.Add(time.Duration(rng.IntN(3500)) * time.Millisecond)
		l := tlLevels[rng.IntN(len(tlLevels)-1)+1]
		w.line(tm, l, fmt.Sprintf("job %d", i), func(t time.Time, l string) string {
			return t.Format("2006-01-02 15:04:05,000") + " - worker - " + levelWord[l] + " - "
		})
		if l == "error" {
			w.cont("Traceback (most recent call last):")
			w.cont(`  File "/srv/worker.py", line 9, in run`)
			w.cont("ZeroDivisionError: division by zero")
		}
	}
	write(w)

	// n3: a file of the day before, wholly outside every range asked.
	w = &tlWriter{agent: "n3", path: "py/old.log"}
	for i := 0; i < 100; i++ {
		w.line(base.Add(-24*time.Hour+time.Duration(i)*time.Second), "info", "old", func(t time.Time, l string) string {
			return t.Format("2006-01-02 15:04:05,000") + " - worker - INFO - "
		})
	}
	write(w)
	return all
}

// tlFetch pages through the timeline with the cursor and returns every
// line and the last page's trailer.
func tlFetch(t *testing.T, h *hist, q url.Values, page int) ([]TimelineLine, []TimelineDone) {
	t.Helper()
	var lines []TimelineLine
	var dones []TimelineDone
	cursor := ""
	for n := 0; n < 10000; n++ {
		qq := url.Values{}
		for k, v := range q {
			qq[k] = v
		}
		qq.Set("max", fmt.Sprint(page))
		if cursor != "" {
			qq.Set("cursor", cursor)
		}
		resp, body := h.get("", "/api/v1/timeline?"+qq.Encode())
		if resp.StatusCode != 200 {
			t.Fatalf("timeline %s: %d %s", qq.Encode(), resp.StatusCode, body)
		}
		sc := bufio.NewScanner(bytes.NewReader(body))
		sc.Buffer(nil, 1<<20)
		var done *TimelineDone
		got := 0
		for sc.Scan() {
			if bytes.Contains(sc.Bytes(), []byte(`"done":true`)) {
				var d TimelineDone
				if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
					t.Fatal(err)
				}
				done = &d
				continue
			}
			if done != nil {
				t.Fatalf("a line after the trailer: %s", sc.Text())
			}
			var l TimelineLine
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				t.Fatalf("%v: %s", err, sc.Text())
			}
			lines = append(lines, l)
			got++
		}
		if done == nil {
			t.Fatalf("no trailer: %s", body)
		}
		if done.Reason != "" {
			t.Fatalf("page ended early: %+v", *done)
		}
		if got > page || done.Lines != got {
			t.Fatalf("page of %d lines (trailer says %d), asked for %d", got, done.Lines, page)
		}
		dones = append(dones, *done)
		if done.Cursor == "" {
			return lines, dones
		}
		cursor = done.Cursor
	}
	t.Fatal("the cursor never ends")
	return nil, nil
}

// TestTimeline: three agents, four formats, three zones; the API returns
// exactly the lines in range in time order (checked against a sort of all
// lines), paging loses and repeats nothing, filters hold, and the file of
// another day is never opened.
func TestTimeline(t *testing.T) {
	h := newHist(t, false)
	all := tlCorpus(t, h.root, 1)
	h.reconcile()
	// The order the API promises, written out here rather than taken
	// from the code under test: time, agent, path, offset.
	slices.SortFunc(all, func(a, b tlRef) int {
		return cmp.Or(a.t.Compare(b.t), cmp.Compare(a.agent, b.agent), cmp.Compare(a.path, b.path), cmp.Compare(a.offset, b.offset))
	})
	since := time.Date(2026, 12, 3, 9, 30, 0, 0, time.UTC)
	until := since.Add(20 * time.Minute)
	cases := []struct {
		name string
		q    url.Values
		keep func(tlRef) bool
		page int
	}{
		{"range", url.Values{}, func(tlRef) bool { return true }, 37},
		{"range in one page", url.Values{}, func(tlRef) bool { return true }, 10000},
		{"errors", url.Values{"level": {"error"}}, func(r tlRef) bool { return r.level == "error" }, 50},
		{"two agents and a glob", url.Values{"agent": {"n1", "n3"}, "path": {"**/*.log"}}, func(r tlRef) bool {
			return (r.agent == "n1" || r.agent == "n3") && strings.HasSuffix(r.path, ".log")
		}, 100},
		{"filter in and out", url.Values{"q": {"request|job|GET"}, "exclude": {"/item/1"}}, func(r tlRef) bool {
			return strings.Contains(r.text, "request") || strings.Contains(r.text, "job") || (strings.Contains(r.text, "GET") && !strings.Contains(r.text, "/item/1"))
		}, 100},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := c.q
			q.Set("since", since.Format(time.RFC3339))
			q.Set("until", until.Format(time.RFC3339))
			var want []tlRef
			for _, r := range all {
				if !r.t.Before(since) && r.t.Before(until) && c.keep(r) {
					want = append(want, r)
				}
			}
			got, dones := tlFetch(t, h, q, c.page)
			if len(want) < 50 {
				t.Fatalf("the corpus gives only %d lines for this case", len(want))
			}
			for i := 0; i < max(len(got), len(want)); i++ {
				if i >= len(got) || i >= len(want) {
					t.Fatalf("got %d lines, want %d (first difference at %d)", len(got), len(want), i)
				}
				g, w := got[i], want[i]
				if g.Agent != w.agent || g.Path != w.path || g.Offset != w.offset || !g.Time.Equal(w.t) || g.Text != w.text || g.Level != w.level {
					t.Fatalf("line %d:\n got %s %s @%d %v %s %q\nwant %s %s @%d %v %s %q", i, g.Agent, g.Path, g.Offset, g.Time, g.Level, g.Text, w.agent, w.path, w.offset, w.t, w.level, w.text)
				}
				if g.LineNo < 1 {
					t.Fatalf("line %d has no line number: %+v", i, g)
				}
			}
			for _, d := range dones {
				if c.q.Get("agent") == "" && (d.Skipped != 1 || d.Opened != 4 || d.Files != 5) {
					t.Fatalf("trailer %+v: want 5 files, the day-old one skipped unopened, 4 opened", d)
				}
			}
		})
	}

	// Line numbers are those of the file, and the file view shows the line.
	_, b := h.get("", "/api/v1/timeline?max=3&since="+since.Format(time.RFC3339)+"&agent=n3")
	var first TimelineLine
	if err := json.Unmarshal(bytes.SplitN(b, []byte("\n"), 2)[0], &first); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(h.root, first.Agent, first.Path))
	if err != nil {
		t.Fatal(err)
	}
	if n := int64(bytes.Count(data[:first.Offset], []byte("\n"))) + 1; n != first.LineNo {
		t.Fatalf("line_no %d, the file says %d", first.LineNo, n)
	}
}

func TestTimelineBadRequests(t *testing.T) {
	h := newHist(t, false)
	for _, q := range []string{"since=yesterday", "until=10:00", "since=2026-12-03T10:00:00Z&until=2026-12-03T09:00:00Z", "level=loud", "q=(", "exclude=[", "cursor=eA", "cursor=!!!", "agent=../x", "max=-1", "timeout=soon"} {
		resp, body := h.get("", "/api/v1/timeline?"+q)
		if resp.StatusCode != 400 || !bytes.Contains(body, []byte(`"error"`)) || bytes.Count(body, []byte("\n")) > 1 {
			t.Errorf("%s: %d %s, want 400 and one line of error", q, resp.StatusCode, body)
		}
	}
}

// TestGrepByTime: a content search with since/until returns exactly the
// matching lines of the range, ordered by time across agents, each with
// its time and level; the file of another day is not read.
func TestGrepByTime(t *testing.T) {
	h := newHist(t, false)
	all := tlCorpus(t, h.root, 2)
	h.reconcile()
	slices.SortFunc(all, func(a, b tlRef) int {
		return cmp.Or(a.t.Compare(b.t), cmp.Compare(a.agent, b.agent), cmp.Compare(a.path, b.path), cmp.Compare(a.offset, b.offset))
	})
	since := time.Date(2026, 12, 3, 9, 10, 0, 0, time.UTC)
	until := since.Add(time.Hour)
	re := "(Exception|Error|502)"
	var want []tlRef
	for _, r := range all {
		if !r.t.Before(since) && r.t.Before(until) && (strings.Contains(r.text, "Exception") || strings.Contains(r.text, "Error") || strings.Contains(r.text, "502")) {
			want = append(want, r)
		}
	}
	q := url.Values{"q": {re}, "since": {since.Format(time.RFC3339)}, "until": {until.Format(time.RFC3339)}, "max": {"100000"}}
	resp, body := h.get("", "/api/v1/grep?"+q.Encode())
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	lines := bytes.Split(bytes.TrimSpace(body), []byte("\n"))
	var done GrepDone
	if err := json.Unmarshal(lines[len(lines)-1], &done); err != nil || !done.Done || done.Reason != "" {
		t.Fatalf("trailer %s: %v", lines[len(lines)-1], err)
	}
	lines = lines[:len(lines)-1]
	if len(lines) != len(want) || len(want) < 100 || done.Matches != len(want) || done.Files != 4 {
		t.Fatalf("%d matches (trailer %+v), want %d from 4 files", len(lines), done, len(want))
	}
	for i, l := range lines {
		var m GrepMatch
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatal(err)
		}
		w := want[i]
		if m.Agent != w.agent || m.Path != w.path || m.Text != w.text || m.Time == nil || !m.Time.Equal(w.t) || m.Level != w.level || m.Line < 1 {
			t.Fatalf("match %d: got %+v, want %+v", i, m, w)
		}
	}
}
