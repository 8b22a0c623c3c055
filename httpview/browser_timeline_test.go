package httpview

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/syncer-dev/syncer/internal/testkit"
)

// tlBrowserLog writes n lines, one a second from t0, every 13th an ERROR
// followed by a stack frame; it returns the file and its lines.
func tlBrowserLog(t0 time.Time, node string, n int) ([]byte, []string) {
	var b strings.Builder
	var lines []string
	for i := 0; i < n; i++ {
		ts := t0.Add(time.Duration(i) * time.Second).UTC().Format("2006-01-02T15:04:05.000Z")
		l := fmt.Sprintf("%s INFO %s request %d ok", ts, node, i)
		if i%13 == 0 {
			l = fmt.Sprintf("%s ERROR %s request %d failed", ts, node, i)
		}
		lines = append(lines, l)
		b.WriteString(l + "\n")
		if i%13 == 0 {
			lines = append(lines, "\tat com.example.Handler.run(Handler.java:7)")
			b.WriteString(lines[len(lines)-1] + "\n")
		}
	}
	return []byte(b.String()), lines
}

// TestBrowserTimeline drives /timeline in a real Chromium: pick a range
// and the ERROR level in the form, check the rows against the logs,
// follow a line to its place in the file view, then watch live mode show
// a line pushed meanwhile by the real agent.
func TestBrowserTimeline(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		testkit.Unavailable(t, fmt.Sprintf("browser test needs Debian's chromium at %s (apt-get install chromium): %v", chromiumPath, err))
	}
	h := newHist(t, false)
	t0 := time.Now().UTC().Truncate(time.Second).Add(-10 * time.Minute)
	src1, src2 := t.TempDir(), t.TempDir()
	log1, _ := tlBrowserLog(t0, "n1", 480)
	log2, _ := tlBrowserLog(t0.Add(500*time.Millisecond), "n2", 480)
	writeFile(t, filepath.Join(src1, "app", "service.log"), log1)
	writeFile(t, filepath.Join(src2, "web", "api.log"), log2)
	h.pushAll("n1", src1)
	h.pushAll("n2", src2)

	b := newBrowser(t, h.http.URL)
	b.do("viewport", chromedp.EmulateViewport(1280, 900))
	b.open("/timeline", `document.querySelector('#tl-status').dataset.done === '1'`)

	// Pick 10:02–10:04 (relative to t0) and ERROR, in the form, in UTC.
	since, until := t0.Add(2*time.Minute), t0.Add(4*time.Minute)
	b.do("pick a range and a level",
		chromedp.SetValue(chromedp.CSS("#tl-last"), ""),
		chromedp.SetValue(chromedp.CSS("#tl-since"), since.Format("2006-01-02 15:04:05")),
		chromedp.SetValue(chromedp.CSS("#tl-until"), until.Format("2006-01-02 15:04:05")),
		chromedp.SetValue(chromedp.CSS("#tl-level"), "error"))
	b.click(`#tl-form button[type=submit]`, `location.search.includes('level=error') && document.querySelector('#tl-status').dataset.done === '1'`)

	// Expected: the ERROR lines of both files in [since, until), with
	// their stack frames, in time order.
	var want []string
	for i := 120; i < 240; i++ {
		for _, node := range []string{"n1", "n2"} {
			if i%13 == 0 {
				ts := t0.Add(time.Duration(i) * time.Second)
				if node == "n2" {
					ts = ts.Add(500 * time.Millisecond)
				}
				if ts.Before(until) {
					want = append(want, fmt.Sprintf("%s ERROR %s request %d failed", ts.Format("2006-01-02T15:04:05.000Z"), node, i), "\tat com.example.Handler.run(Handler.java:7)")
				}
			}
		}
	}
	got := eval[[]string](b, `[...document.querySelectorAll('#tl-lines .tl-row .tx')].map(e => e.textContent)`)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("timeline rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := eval[int](b, `document.querySelectorAll('#tl-lines .tl-row.lv-error').length`); n != len(want) {
		t.Errorf("%d rows coloured as errors, want %d", n, len(want))
	}
	if z := eval[string](b, `document.querySelector('[data-tz-label]').textContent + ' ' + document.querySelector('#tz').textContent`); !strings.Contains(z, "UTC") {
		t.Errorf("the zone is not shown: %q", z)
	}
	b.shot("timeline", false)

	// Content search in a time range: the same lines, in time order,
	// across both agents, with their times.
	b.open("/search?"+url.Values{"q": {"failed"}, "since": {since.Format("2006-01-02 15:04:05")}, "until": {until.Format("2006-01-02 15:04:05")}}.Encode(),
		`document.querySelector('#grep-status').dataset.done === '1'`)
	hits := eval[[]string](b, `[...document.querySelectorAll('#grep-results .hit .tx')].map(e => e.textContent)`)
	var wantHits []string
	for _, w := range want {
		if strings.Contains(w, "failed") {
			wantHits = append(wantHits, w)
		}
	}
	if strings.Join(hits, "\n") != strings.Join(wantHits, "\n") {
		t.Fatalf("search in a range:\n%s\nwant:\n%s", strings.Join(hits, "\n"), strings.Join(wantHits, "\n"))
	}
	if w := eval[string](b, `document.querySelector('#grep-results .hit .when').textContent`); !strings.HasPrefix(w, since.Add(10*time.Second).Format("2006-01-02 15:04")) {
		t.Errorf("first hit's time shown as %q", w)
	}
	b.open("/timeline?"+url.Values{"since": {since.Format(time.RFC3339)}, "until": {until.Format(time.RFC3339)}, "level": {"error"}}.Encode(),
		`document.querySelector('#tl-status').dataset.done === '1'`)

	// Follow the first line to its place in the file view.
	b.click(`#tl-lines .tl-row a.t`, `location.pathname.startsWith('/view/') && !!document.querySelector('#lines .ln.sel')`)
	if sel := eval[string](b, `document.querySelector('#lines .ln.sel .tx').textContent`); sel != want[0] {
		t.Fatalf("the file view selects %q, want %q", sel, want[0])
	}

	// The file view is a log view: levels coloured (a stack frame with its
	// message), only the matching lines on request, a jump to a time.
	if n := eval[int](b, `[...document.querySelectorAll('#lines .ln.lv-error')].filter(r => r.querySelector('.tx').textContent.startsWith('\tat ')).length`); n == 0 {
		t.Error("no stack frame coloured as its error")
	}
	if n := eval[int](b, `[...document.querySelectorAll('#lines .ln.lv-error .tx')].filter(e => !e.textContent.includes('ERROR') && !e.textContent.startsWith('\tat ')).length`); n != 0 {
		t.Errorf("%d lines coloured as errors that are not", n)
	}
	b.do("search ERROR", chromedp.SetValue(chromedp.ID("q"), "request 2[0-9]+ failed"), chromedp.Click(chromedp.ID("re"), chromedp.NodeVisible))
	b.click(`#only`, `document.querySelector('#lines').classList.contains('only')`)
	visible := eval[[]string](b, `[...document.querySelectorAll('#lines .ln')].filter(r => r.offsetParent !== null).map(r => r.querySelector('.tx').textContent)`)
	if len(visible) == 0 {
		t.Fatal("only matching: nothing shown")
	}
	for _, v := range visible {
		if !regexp.MustCompile(`request 2[0-9]+ failed`).MatchString(v) {
			t.Fatalf("only matching shows %q", v)
		}
	}
	b.click(`#only`, `!document.querySelector('#lines').classList.contains('only')`)
	jumpTo := t0.Add(5*time.Minute + 30*time.Second)
	b.do("type a time", chromedp.SetValue(chromedp.ID("jump-t"), jumpTo.Format("2006-01-02 15:04:05")))
	b.click(`#btn-jump`, `location.search.includes('time=') && (document.querySelector('#lines .ln.sel .tx')||{}).textContent.startsWith('`+jumpTo.Format("2006-01-02T15:04:05")+`')`)

	// A live log opens at its end and follows; the header follows too.
	b.open("/view/n1/app/service.log", `document.querySelector('#btn-tail').getAttribute('aria-pressed') === 'true' && document.querySelectorAll('#lines .ln').length > 0`)
	lastLine := eval[string](b, `document.querySelector('#lines .ln:last-child .tx').textContent`)
	if !strings.Contains(lastLine, "request 479") {
		t.Fatalf("a live log opened at %q, not at its end", lastLine)
	}
	sizeBefore := eval[string](b, `document.querySelector('#f-size').title`)
	follow := fmt.Sprintf("%s WARN n1 followed in the file view", time.Now().UTC().Format("2006-01-02T15:04:05.000Z"))
	appendLine(t, filepath.Join(src1, "app", "service.log"), follow)
	h.pushAll("n1", src1)
	b.wait("the appended line in the file view", fmt.Sprintf(`(document.querySelector('#lines .ln:last-child .tx')||{}).textContent === %q && document.querySelector('#lines .ln:last-child').classList.contains('lv-warn')`, follow))
	b.wait("the header's size follows", `document.querySelector('#f-size').title !== `+fmt.Sprintf("%q", sizeBefore))

	// Live mode shows a line pushed meanwhile.
	b.open("/timeline?last=15m&live=1", `document.querySelector('#tl-status').dataset.done === '1' && document.querySelectorAll('#tl-lines .tl-row').length > 0`)
	marker := fmt.Sprintf("%s ERROR n1 pushed while the page was open", time.Now().UTC().Format("2006-01-02T15:04:05.000Z"))
	appendLine(t, filepath.Join(src1, "app", "service.log"), marker)
	h.pushAll("n1", src1)
	b.wait("the pushed line in live mode", fmt.Sprintf(`[...document.querySelectorAll('#tl-lines .tl-row .tx')].some(e => e.textContent === %q)`, marker))
}

func appendLine(t *testing.T, p, line string) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := fmt.Fprintln(f, line); err != nil {
		t.Fatal(err)
	}
}
