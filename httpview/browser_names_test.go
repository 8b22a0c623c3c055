package httpview

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/syncer-dev/syncer/internal/defender"
)

// TestBrowserShowsDeceivingNamesEscaped: in a real Chromium, names with
// a direction control or a zero-width character show as marked escapes,
// never raw, both where the server renders them (listing, breadcrumbs,
// heading) and where the page script does (the tree, name search
// results); a name mixing scripts is marked; links still open the exact
// file. An admin lifts a ban from the connections page.
func TestBrowserShowsDeceivingNamesEscaped(t *testing.T) {
	h := newHist(t, false)
	const (
		bidi  = "report\u202egol.exe"
		zw    = "ap\u200bp"
		mixed = "p\u0430yments.log"
	)
	for _, rel := range []string{bidi, zw + "/inner.log", mixed, "plain.log"} {
		writeFile(t, filepath.Join(h.root, "n1", "odd", rel), []byte("line one\nline two\n"))
	}
	h.reconcile()
	d, err := defender.New(defender.Config{BanAfter: 1, FailDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	d.Failed("203.0.113.7", "", "ftp")
	_, srv := h.serverWith(func(c *Config) { c.Defender = d })
	b := newBrowser(t, srv.URL)
	// No raw hidden character in what the page shows.
	const noRaw = `!/[\u202e\u200b]/.test(document.body.innerText)`

	b.open("/agent/n1/odd", `document.querySelectorAll('#tree a.file').length === 3`)
	if !eval[bool](b, noRaw) {
		t.Errorf("the directory page shows a hidden character raw: %q", eval[string](b, `document.body.innerText`))
	}
	for _, sel := range []string{"#listing", "#tree"} {
		if got := eval[string](b, `[...document.querySelectorAll('`+sel+` .esc')].map(e => e.textContent + '|' + e.title).join(' ')`); !strings.Contains(got, `\u202e|U+202E, a direction control`) || !strings.Contains(got, `\u200b|U+200B, a zero-width character`) {
			t.Errorf("%s escapes: %q", sel, got)
		}
		if n := eval[int](b, `document.querySelectorAll('`+sel+` .lookalike').length`); n != 1 {
			t.Errorf("%s: %d names marked as mixing scripts, want 1", sel, n)
		}
	}
	// The escape is visible: it has a box of its own.
	if w := eval[float64](b, `document.querySelector('#listing .esc').getBoundingClientRect().width`); w < 10 {
		t.Errorf("the escape is %.1fpx wide", w)
	}
	b.shot("names", true)

	// The link opens the exact file; its heading and title show the escape.
	b.click(`#listing a[href="/view/n1/odd/report%E2%80%AEgol.exe"]`, `document.querySelectorAll('#lines .ln').length === 2`)
	if got := eval[string](b, `document.querySelector('h1.fname').innerText + ' · ' + document.title`); got != `report\u202egol.exe · report\u202egol.exe · syncer` {
		t.Errorf("file view heading and title: %q", got)
	}
	b.open("/agent/n1/odd/ap%E2%80%8Bp", `document.querySelectorAll('#tree a.file').length > 0`)
	if got := eval[string](b, `document.querySelector('nav.crumbs').innerText`); !strings.Contains(got, `ap\u200bp`) || !eval[bool](b, noRaw) {
		t.Errorf("breadcrumbs: %q", got)
	}

	// Name search: results come from the page script.
	b.open("/search?name=*", `!!document.querySelector('#name-table')`)
	if got := eval[string](b, `document.querySelector('#name-table').innerText`); !strings.Contains(got, `odd/report\u202egol.exe`) || !eval[bool](b, noRaw) {
		t.Errorf("name search: %q", got)
	}
	if n := eval[int](b, `document.querySelectorAll('#name-table .lookalike').length`); n != 1 {
		t.Errorf("name search: %d names marked as mixing scripts, want 1", n)
	}

	// Bans: listed for the admin, lifted with the button.
	b.open("/connections", `!!document.querySelector('#bans button.unban')`)
	b.click(`#bans button.unban[data-addr="203.0.113.7"]`, `document.querySelector('#ban-status').textContent.includes('lifted')`)
	if _, banned := d.Banned("203.0.113.7"); banned {
		t.Error("the Lift button did not lift the ban")
	}
}
