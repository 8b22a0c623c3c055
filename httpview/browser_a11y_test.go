package httpview

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/syncer-dev/syncer/internal/testkit"
)

// axeSource is axe-core (testdata/axe-core/README.md), injected into the
// pages under test; the viewer neither embeds nor serves it.
const axeSource = "testdata/axe-core/axe.min.js"

// axeSerious runs axe-core on the page and returns its serious and
// critical violations, one line each.
func (b *browserT) axeSerious(src string) []string {
	b.t.Helper()
	if !eval[bool](b, src+";\ntypeof axe === 'object'") {
		b.t.Fatal("axe-core did not load")
	}
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`axe.run(document, {resultTypes: ["violations"]}).then(r => r.violations
		.filter(v => v.impact === "serious" || v.impact === "critical")
		.map(v => v.id + " (" + v.impact + "): " + v.help + ": " + v.nodes.slice(0, 4).map(n => n.target.join(" ") + " [" + (n.failureSummary || "").replace(/\s+/g, " ") + "]").join(" | ")))`,
		chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("axe.run: %v", err)
	}
	return v
}

// TestBrowserAccessibility runs axe-core (a real Chromium, the pages as
// served) on every page of the viewer, in the light and the dark scheme,
// on a desktop and on a phone: no serious or critical violation. On the
// phone the agents table keeps its Status column on screen.
func TestBrowserAccessibility(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		testkit.Unavailable(t, fmt.Sprintf("browser test needs Debian's chromium at %s (apt-get install chromium): %v", chromiumPath, err))
	}
	src, err := os.ReadFile(axeSource)
	if err != nil {
		t.Fatal(err)
	}
	h := newHist(t, false)
	dir := t.TempDir()
	t0 := time.Now().UTC().Add(-5 * time.Minute)
	live, _ := tlBrowserLog(t0, "n1", 200)
	writeFile(t, filepath.Join(dir, "app", "service.log"), live)
	writeFile(t, filepath.Join(dir, "app", "old.log"), demoLog(1, 300))
	writeFile(t, filepath.Join(dir, "db", "postgres.log"), demoLog(2, 50))
	h.pushAll("n1", dir)
	dir2 := t.TempDir()
	writeFile(t, filepath.Join(dir2, "kernel.log"), demoLog(3, 100))
	h.pushAll("n2", dir2)

	pages := []struct{ path, ready string }{
		{"/", `!!document.querySelector('.cards')`},
		{"/agents", `!!document.querySelector('#agents')`},
		{"/agent/n1", `!!document.querySelector('#listing')`},
		{"/agent/n1/app", `document.querySelectorAll('#tree details').length > 0`},
		{"/view/n1/app/old.log?line=40&q=ERROR", `!!document.querySelector('#lines .ln.sel')`},
		{"/view/n1/app/service.log", `document.querySelector('#btn-tail').getAttribute('aria-pressed') === 'true'`},
		{"/search", `!!document.querySelector('#grep-form')`},
		{"/search?q=ERROR&max=50", `document.querySelector('#grep-status').dataset.done === '1'`},
		{"/search?name=*.log", `!!document.querySelector('#name-table')`},
		{"/connections", `!!document.querySelector('#conns')`},
		{"/timeline?last=24h&level=warn", `document.querySelector('#tl-status').dataset.done === '1' && document.querySelectorAll('.tl-row').length > 0`},
		{"/no/such/page", `document.title.startsWith('Not Found')`},
	}
	b := newBrowser(t, h.http.URL)
	b.mu.Lock()
	b.expected = "/no/such/page" // its 404 status is logged as an error
	b.mu.Unlock()
	for _, dev := range []struct {
		name string
		set  chromedp.Action[chromedp.Void]
	}{
		{"desktop", chromedp.EmulateViewport(1280, 900)},
		{"phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile)},
	} {
		for _, scheme := range []string{"light", "dark"} {
			b.do(dev.name, dev.set)
			if _, err := chromedp.Call(b.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
				Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}}); err != nil {
				t.Fatal(err)
			}
			for _, p := range pages {
				b.open(p.path, p.ready)
				if v := b.axeSerious(string(src)); len(v) > 0 {
					t.Errorf("%s %s %s: axe-core finds %d serious or critical violations:\n  %s", dev.name, scheme, p.path, len(v), strings.Join(v, "\n  "))
				}
			}
			if dev.name == "phone" {
				b.open("/agents", `!!document.querySelector('#agents')`)
				if right := eval[float64](b, `Math.max(...[...document.querySelectorAll('#agents .badge')].map(e => e.getBoundingClientRect().right))`); right > 390 || right <= 0 {
					t.Errorf("on a 390px phone the agents' Status ends at %.0fpx", right)
				}
				if eval[bool](b, `localStorage.getItem('syncer.wrap') === null`) {
					b.open("/view/n1/app/old.log", `document.querySelectorAll('#lines .ln').length > 0`)
					if !eval[bool](b, `document.querySelector('#lines').classList.contains('wrap')`) {
						t.Error("wrap is off on a phone")
					}
				}
			}
		}
	}
}
