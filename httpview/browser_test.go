package httpview

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/jlaffaye/ftp"
)

// chromiumPath is Debian's chromium; CI installs it (.ci/run). The test
// never downloads a browser.
const chromiumPath = "/usr/bin/chromium"

// demoLog makes n lines of a plausible service log; line i (1-based)
// carries "order=i", every 97th line is an ERROR with code=5xx.
func demoLog(seed int64, n int) []byte {
	r := rand.New(rand.NewSource(seed))
	t0 := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	paths := []string{"/v1/orders", "/v1/cart", "/v1/users/me", "/healthz", "/v1/search"}
	var b strings.Builder
	for i := 1; i <= n; i++ {
		ts := t0.Add(time.Duration(i) * 1370 * time.Millisecond).Format("2006-01-02T15:04:05.000Z")
		switch {
		case i%97 == 0:
			fmt.Fprintf(&b, "%s ERROR api  checkout failed order=%d code=%d upstream=payments err=\"context deadline exceeded\"\n", ts, i, 500+r.Intn(4))
		case i%31 == 0:
			fmt.Fprintf(&b, "%s WARN  api  slow request order=%d path=%s dur=%dms\n", ts, i, paths[r.Intn(len(paths))], 900+r.Intn(2000))
		default:
			fmt.Fprintf(&b, "%s INFO  api  request order=%d path=%s status=200 dur=%dms\n", ts, i, paths[r.Intn(len(paths))], 2+r.Intn(80))
		}
	}
	return []byte(b.String())
}

// pushAll runs the real agent over dir for .log and .gz files.
func (h *hist) pushAll(id, dir string) {
	h.t.Helper()
	if sum := h.pushIncluding(id, dir, []string{"**/*.log", "**/*.gz"}); sum.FilesFailed > 0 {
		h.t.Fatalf("push %s: %+v", id, sum)
	}
}

// browserT drives one headless Chromium tab.
type browserT struct {
	t       testing.TB
	ctx     context.Context
	base    string
	mu      sync.Mutex
	console []string
	shots   string
	// expected is a URL path whose console errors the test expects (a
	// 404 page it opens on purpose).
	expected string
}

func newBrowser(t testing.TB, base string) *browserT {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("browser test needs Debian's chromium at %s (apt-get install chromium): %v", chromiumPath, err)
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	ctx, cancelTab := chromedp.NewContext(alloc)
	b := &browserT{t: t, ctx: ctx, base: base, shots: os.Getenv("SYNCER_SCREENSHOTS")}
	// Start the browser now, with no deadline; every step has its own.
	if err := chromedp.Do(ctx); err != nil {
		cancelTab()
		cancelAlloc()
		t.Fatalf("start chromium: %v", err)
	}
	console := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range console {
			if err != nil {
				return
			}
			// Uncaught exceptions and errors, CSP violations among them.
			if m.IsException() || m.Type == "error" {
				b.mu.Lock()
				if b.expected == "" || !strings.HasSuffix(m.URL, b.expected) {
					b.console = append(b.console, m.String()+" at "+m.URL)
				}
				b.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		<-done
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, m := range b.console {
			t.Errorf("browser console: %s", m)
		}
	})
	return b
}

const stepTimeout = 30 * time.Second

func (b *browserT) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// wait evaluates a JavaScript expression until it is true. Errors count
// as false: while a click navigates, the old page's context goes away.
func (b *browserT) wait(what, expr string) {
	b.t.Helper()
	deadline := time.Now().Add(stepTimeout)
	var lastErr error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+expr+")"))
		cancel()
		if err == nil && ok {
			return
		}
		lastErr = err
		time.Sleep(50 * time.Millisecond)
	}
	loc, _ := chromedp.Run(b.ctx, chromedp.Location())
	b.t.Fatalf("waiting for %s (%s) on %s: not true in %v (last error: %v)", what, expr, loc, stepTimeout, lastErr)
}

func eval[T any](b *browserT, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

func (b *browserT) open(path, ready string) {
	b.t.Helper()
	b.do("open "+path, chromedp.Navigate(b.base+path))
	b.wait(path+" ready", "document.readyState === 'complete' && ("+ready+")")
}

// click clicks sel and waits for ready (a new page, usually).
func (b *browserT) click(sel, ready string) {
	b.t.Helper()
	b.do("click "+sel, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
	b.wait("after clicking "+sel, "document.readyState === 'complete' && ("+ready+")")
}

// shot takes a screenshot (of the whole page if full, else of the
// viewport) into $SYNCER_SCREENSHOTS/name.png
// (docs/screenshots in the repository); without the variable it only
// checks that one can be taken.
func (b *browserT) shot(name string, full bool) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	take := chromedp.CaptureScreenshot()
	if full {
		take = chromedp.FullScreenshot(100)
	}
	png, err := chromedp.Run(ctx, take)
	if err != nil || len(png) < 1000 {
		b.t.Fatalf("screenshot %s: %v (%d bytes)", name, err, len(png))
	}
	if b.shots == "" {
		return
	}
	if err := os.MkdirAll(b.shots, 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.shots, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// TestBrowserEndToEnd drives the viewer in a real headless Chromium
// against a historian in-process (FTP server, index and HTTP wired as in
// `syncer serve`), with data pushed by the real agent.
func TestBrowserEndToEnd(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("browser test needs Debian's chromium at %s (apt-get install chromium): %v", chromiumPath, err)
	}
	h := newHist(t, false)
	src := t.TempDir()
	const nLines = 2500
	serverLog := demoLog(1, nLines)
	writeFile(t, filepath.Join(src, "app", "server.log"), serverLog)
	writeFile(t, filepath.Join(src, "app", "worker.log"), demoLog(2, 400))
	writeFile(t, filepath.Join(src, "app", "<script>alert(1).log"), []byte("a file name with markup\n"))
	writeFile(t, filepath.Join(src, "app", "evil.log"), []byte("before\n<script>window.__xss=1</script>\n<img src=x onerror=\"window.__xss=2\">\nafter\n"))
	writeFile(t, filepath.Join(src, "app", "archive", "2026-11-23.log.gz"), gzipped(t, demoLog(3, 800)))
	writeFile(t, filepath.Join(src, "db", "postgres.log"), demoLog(4, 300))
	writeFile(t, filepath.Join(src, "db", "slow-queries.log"), demoLog(5, 120))
	h.pushAll("n1", src)
	src2 := t.TempDir()
	writeFile(t, filepath.Join(src2, "kernel.log"), demoLog(6, 200))
	h.pushAll("n2", src2)

	b := newBrowser(t, h.http.URL)
	b.do("viewport", chromedp.EmulateViewport(1280, 900))

	// Overview → Agents → n1 → app → server.log, by clicking.
	b.open("/", `document.querySelector('.cards') !== null`)
	cards := eval[string](b, `Array.from(document.querySelectorAll('.cards')).map(c => c.innerText).join('\n')`)
	if !strings.Contains(cards, "2\nagents") && !strings.Contains(cards, "2 agents") {
		t.Errorf("overview cards: %q", cards)
	}
	// The overview leads with what needs attention: the account that never pushed.
	if got := eval[string](b, `document.querySelector('main h2').innerText + ' ' + document.querySelector('ul.attention').innerText`); !strings.Contains(got, "Needs attention") || !strings.Contains(got, "ghost") {
		t.Errorf("overview does not lead with the agents needing attention: %q", got)
	}
	b.shot("overview", true)
	b.click(`nav.side a[href="/agents"]`, `location.pathname === '/agents' && !!document.querySelector('#agents')`)
	rows := eval[string](b, `document.querySelector('#agents tbody').innerText`)
	for _, want := range []string{"n1", "n2", "ghost", "never seen", "active"} {
		if !strings.Contains(rows, want) {
			t.Errorf("agents table has no %q: %q", want, rows)
		}
	}
	b.click(`#agents thead a[href="/agents?sort=files"]`, `location.search === '?sort=files'`)
	b.shot("agents", true)
	b.click(`#agents a[href="/agent/n1"]`, `location.pathname === '/agent/n1' && !!document.querySelector('#listing')`)
	b.click(`#listing a[href="/agent/n1/app"]`, `location.pathname === '/agent/n1/app' && document.querySelectorAll('#tree details').length > 0`)
	// The file name with markup is text: a link whose text is the name,
	// and no script element came from it.
	if n := eval[int](b, `[...document.querySelectorAll('#listing a')].filter(a => a.textContent === '<script>alert(1).log').length`); n != 1 {
		t.Errorf("file name with markup: %d links show it as text", n)
	}
	b.wait("tree opened on the current directory", `!!document.querySelector('#tree li.cur details[open] a.file')`)
	b.shot("agent", true)
	b.click(`#listing a[href="/view/n1/app/server.log"]`, `location.pathname === '/view/n1/app/server.log' && document.querySelectorAll('#lines .ln').length > 100`)
	lines := strings.Split(strings.TrimSuffix(string(serverLog), "\n"), "\n")
	if got := eval[string](b, `document.querySelector('#lines .ln .tx').textContent`); got != lines[0] {
		t.Errorf("first line shown %q, want %q", got, lines[0])
	}
	if got := eval[string](b, `document.querySelector('#lines .ln .no').textContent`); got != "1" {
		t.Errorf("first line number %q", got)
	}

	// Search in the file: the next match is highlighted, with its number.
	b.do("type a search", chromedp.SetValue(chromedp.ID("q"), "order=1234 "))
	b.click(`#btn-next`, `!!document.querySelector('#lines mark.cur')`)
	if no := eval[string](b, `document.querySelector('#lines mark.cur').closest('.ln').querySelector('.no').textContent`); no != "1234" {
		t.Errorf("match shown at line %q, want 1234", no)
	}
	if q := eval[string](b, `location.search`); !strings.Contains(q, "q=order%3D1234") {
		t.Errorf("search not in the URL: %q", q)
	}
	// Next goes to the following ERROR line, previous comes back.
	b.do("search ERROR", chromedp.SetValue(chromedp.ID("q"), "ERROR"))
	b.click(`#btn-next`, `(document.querySelector('#lines mark.cur')||{}).textContent === 'ERROR' && document.querySelector('#lines .ln.sel .no').textContent === '1261'`)
	b.click(`#btn-next`, `document.querySelector('#lines .ln.sel .no').textContent === '1358'`)
	b.click(`#btn-prev`, `document.querySelector('#lines .ln.sel .no').textContent === '1261'`)
	b.shot("view", true)
	// Wrap and the end of the file.
	b.click(`#wrap`, `document.querySelector('#lines').classList.contains('wrap')`)
	b.click(`#btn-end`, `(document.querySelector('#lines .ln:last-child .no')||{}).textContent === '`+strconv.Itoa(nLines)+`'`)
	b.click(`#btn-start`, `document.querySelector('#lines .ln .no').textContent === '1'`)
	b.click(`#wrap`, `!document.querySelector('#lines').classList.contains('wrap')`)

	// Live tail: the agent appends and pushes; the lines appear.
	b.click(`#btn-tail`, `document.querySelector('#btn-tail').getAttribute('aria-pressed') === 'true' && document.querySelector('#lines .ln:last-child .no').textContent === '`+strconv.Itoa(nLines)+`'`)
	f, err := os.OpenFile(filepath.Join(src, "app", "server.log"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	tailLines := "2026-11-24T09:00:00.000Z INFO  api  TAIL-MARKER-1 appended by the agent\n2026-11-24T09:00:00.001Z WARN  api  TAIL-MARKER-2 <b>not bold</b>\n"
	if _, err := f.WriteString(tailLines); err != nil {
		t.Fatal(err)
	}
	f.Close()
	h.pushAll("n1", src)
	b.wait("tailed lines", `[...document.querySelectorAll('#lines .ln .tx')].some(e => e.textContent.includes('TAIL-MARKER-2 <b>not bold</b>'))`)
	if no := eval[string](b, `document.querySelector('#lines .ln:last-child .no').textContent`); no != strconv.Itoa(nLines+2) {
		t.Errorf("tailed line numbered %q, want %d", no, nLines+2)
	}
	if n := eval[int](b, `document.querySelectorAll('#lines b').length`); n != 0 {
		t.Error("a tailed line was rendered as HTML")
	}
	b.click(`#btn-tail`, `document.querySelector('#btn-tail').getAttribute('aria-pressed') === 'false'`)

	// Download the file and compare its SHA-256 with the agent's copy.
	dl := t.TempDir()
	if _, err := chromedp.CallBrowser(b.ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dl}); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(src, "app", "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	b.do("click download", chromedp.Click(chromedp.ID("dl"), chromedp.NodeVisible))
	got := waitDownload(t, dl, int64(len(want)))
	if sha256.Sum256(got) != sha256.Sum256(want) {
		t.Errorf("downloaded file: sha256 %s, want %s", hexSum(got), hexSum(want))
	}

	// A <script> in a log line shows as text and does not run.
	b.open("/view/n1/app/evil.log", `document.querySelectorAll('#lines .ln').length === 4`)
	if got := eval[string](b, `document.querySelectorAll('#lines .ln .tx')[1].textContent`); got != "<script>window.__xss=1</script>" {
		t.Errorf("markup line shown as %q", got)
	}
	if x := eval[string](b, `String(window.__xss)`); x != "undefined" {
		t.Errorf("a log line ran as script: __xss=%s", x)
	}
	// A .gz file shows decompressed.
	gzLines := strings.SplitN(string(demoLog(3, 800)), "\n", 2)
	b.open("/view/n1/app/archive/2026-11-23.log.gz", `document.querySelectorAll('#lines .ln').length > 100`)
	if got := eval[string](b, `document.querySelector('#lines .ln .tx').textContent`); got != gzLines[0] {
		t.Errorf(".gz first line %q, want %q", got, gzLines[0])
	}

	// Content search across agents, results streamed, a hit opens the
	// file view at its line.
	b.click(`nav.side a[href="/search"]`, `location.pathname === '/search' && !!document.querySelector('#grep-form')`)
	b.do("content query", chromedp.SetValue(chromedp.ID("grep-q"), `checkout failed order=\d+ code=50[0-3]`),
		chromedp.SetValue(chromedp.ID("grep-path"), "**/*.log"))
	b.click(`#grep-form button[type=submit]`, `document.querySelector('#grep-status').dataset.done === '1'`)
	status := eval[string](b, `document.querySelector('#grep-status').textContent`)
	nHits := eval[int](b, `document.querySelectorAll('#grep-results .hit').length`)
	wantHits := 0
	for _, d := range [][]byte{serverLog, demoLog(2, 400), demoLog(4, 300), demoLog(5, 120), demoLog(6, 200)} {
		wantHits += len(regexp.MustCompile(`checkout failed order=\d+ code=50[0-3]`).FindAll(d, -1))
	}
	if nHits != wantHits || !strings.Contains(status, "complete") {
		t.Errorf("content search: %d hits, want %d; status %q", nHits, wantHits, status)
	}
	b.shot("search", false)
	href := eval[string](b, `document.querySelector('#grep-results .hit a.ln').getAttribute('href')`)
	u, err := url.Parse(href)
	if err != nil {
		t.Fatal(err)
	}
	line := u.Query().Get("line")
	b.click(`#grep-results .hit a.ln`, `!!document.querySelector('#lines .ln.sel')`)
	if no := eval[string](b, `document.querySelector('#lines .ln.sel .no').textContent`); no != line || line == "" {
		t.Errorf("opened a hit at line %q, want %q (%s)", no, line, href)
	}
	if txt := eval[string](b, `document.querySelector('#lines .ln.sel .tx').textContent`); !strings.Contains(txt, "checkout failed") {
		t.Errorf("the hit's line is %q", txt)
	}
	// A name search.
	b.open("/search?name=*.log.gz", `!!document.querySelector('#name-table')`)
	if got := eval[string](b, `document.querySelector('#name-table tbody').innerText`); !strings.Contains(got, "app/archive/2026-11-23.log.gz") {
		t.Errorf("name search: %q", got)
	}

	// Connections: a live FTP session shows.
	fc, err := ftp.Dial(h.ftp.Addr().String(), ftp.DialWithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer fc.Quit()
	if err := fc.Login("n2", passwords["n2"]); err != nil {
		t.Fatal(err)
	}
	b.open("/connections", `document.querySelector('#conns tbody').innerText.includes('n2')`)
	b.shot("connections", true)

	// On a phone, in dark mode.
	b.do("phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(1.5), chromedp.EmulateMobile))
	if _, err := chromedp.Call(b.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}}); err != nil {
		t.Fatal(err)
	}
	b.open("/view/n1/app/server.log?line=1261&q=ERROR", `!!document.querySelector('#lines .ln.sel')`)
	if bg := eval[string](b, `getComputedStyle(document.body).backgroundColor`); bg != "rgb(13, 17, 23)" {
		t.Errorf("dark mode background %q", bg)
	}
	if w := eval[int](b, `document.documentElement.scrollWidth`); w > 390 {
		t.Errorf("the page is %dpx wide on a 390px phone", w)
	}
	b.shot("view-phone-dark", false)
	b.open("/agent/n1/app", `document.querySelectorAll('#tree details').length > 0`)
	b.shot("agent-phone-dark", false)
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// waitDownload waits for the one finished download in dir of size bytes.
func waitDownload(t *testing.T, dir string, size int64) []byte {
	t.Helper()
	deadline := time.Now().Add(stepTimeout)
	for time.Now().Before(deadline) {
		es, _ := os.ReadDir(dir)
		for _, e := range es {
			if strings.HasSuffix(e.Name(), ".crdownload") {
				continue
			}
			if fi, err := e.Info(); err == nil && fi.Size() == size {
				b, err := os.ReadFile(filepath.Join(dir, e.Name()))
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no download of %d bytes in %s", size, dir)
	return nil
}
