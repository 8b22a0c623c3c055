package httpview

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestMixedScripts(t *testing.T) {
	tests := []struct {
		name string
		want []string
	}{
		{"payments.log", nil},
		{"p\u0430yments.log", []string{"Cyrillic", "Latin"}}, // Cyrillic а
		{"\u0440\u0430\u0443ments.log", []string{"Cyrillic", "Latin"}},
		{"файл-log.txt", nil},     // one script per word
		{"Ελληνικά_app.log", nil}, // ditto
		{"αβγabc.log", []string{"Greek", "Latin"}},
		{"日本語ファイルlog.txt", nil}, // Han, Katakana and Latin: Japanese
		{"한국어漢字log", nil},       // Hangul, Han and Latin: Korean
		{"한국어ファイル", []string{"Hangul", "Katakana"}},
		{"naïve-e\u0301.log", nil}, // a combining mark goes with any script
		{"app2026.log", nil},
		{"\u0430\u0440\u0440\u04cf\u0435.log", nil}, // all Cyrillic: not caught (needs UTS #39's confusables)
	}
	for _, tt := range tests {
		if got := mixedScripts(tt.name); !slices.Equal(got, tt.want) {
			t.Errorf("mixedScripts(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestEscapeName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain name.log", "plain name.log"},
		{"report\u202egol.exe", `report\u202egol.exe`},
		{"a\u200bb\u200c\u200d\u200e\u200f\ufeff\u2060.log", `a\u200bb\u200c\u200d\u200e\u200f\ufeff\u2060.log`},
		{"\u2066x\u2069\u202a\u202b\u202c\u202d", `\u2066x\u2069\u202a\u202b\u202c\u202d`},
		{"esc\x1b[31mred\x7f", `esc\u001b[31mred\u007f`},
		{"nbsp\u00a0x\u3000\u3164\U000e0001", `nbsp\u00a0x\u3000\u3164\U000e0001`},
		{"bad\xffutf8", "bad\uFFFDutf8"},
		{"üñí日本", "üñí日本"},
	}
	for _, tt := range tests {
		if got := escapeName(tt.in); got != tt.want {
			t.Errorf("escapeName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestHiddenCharactersShownEscapedInPages: names with bidi controls,
// zero-width and control characters show as marked escapes in listings,
// breadcrumbs, headings and titles, never raw; a name mixing scripts
// is marked; the JSON API keeps every name exact and flags it; a
// download's file name carries no direction control.
func TestHiddenCharactersShownEscapedInPages(t *testing.T) {
	h := newHist(t, false)
	const (
		bidi  = "report\u202egol.exe" // shows as "reportexe.log"
		zw    = "ap\u200bp"           // a directory that looks like "app"
		ctrl  = "esc\x1b[2Jclear.log" // a terminal escape
		mixed = "p\u0430yments.log"   // Cyrillic а
		bom   = "\ufeffinvoice\u2066x\u2069.log"
	)
	for _, rel := range []string{bidi, zw + "/inner.log", ctrl, mixed, bom, "plain.log"} {
		writeFile(t, filepath.Join(h.root, "n1", "odd", rel), []byte("line one\nline two\n"))
	}
	h.reconcile()
	raw := []string{"\u202e", "\u200b", "\x1b", "\ufeff", "\u2066", "\u2069"}
	noRaw := func(what, body string) {
		t.Helper()
		for _, r := range raw {
			if strings.Contains(body, r) {
				t.Errorf("%s shows %q raw", what, r)
			}
		}
	}

	resp, b := h.get("", "/agent/n1/odd")
	body := string(b)
	noRaw("the listing", body)
	for _, want := range []string{
		`report<span class="esc" title="U&#43;202E, a direction control: it reorders the text that follows; shown escaped">\u202e</span>gol.exe`,
		`ap<span class="esc" title="U&#43;200B, a zero-width character; shown escaped">\u200b</span>p/`,
		`esc<span class="esc" title="U&#43;001B, a control character; shown escaped">\u001b</span>[2Jclear.log`,
		`p` + "\u0430" + `yments.log<span class="lookalike" title="mixes Cyrillic and Latin letters in one word`,
		`>plain.log</a>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the listing (%d) has no %q", resp.StatusCode, want)
		}
	}
	if strings.Count(body, `class="lookalike"`) != 1 {
		t.Errorf("%d names marked as mixing scripts, want 1", strings.Count(body, `class="lookalike"`))
	}

	_, b = h.get("", "/view/n1/odd/"+escapePath(bidi, ""))
	body = string(b)
	noRaw("the file view", body)
	if !strings.Contains(body, `<title>report\u202egol.exe · syncer</title>`) ||
		!strings.Contains(body, `<h1 class="fname">report<span class="esc"`) {
		t.Errorf("the file view's title and heading do not show the escape:\n%.1500s", body)
	}
	_, b = h.get("", "/agent/n1/odd/"+escapePath(zw, ""))
	body = string(b)
	noRaw("the directory page", body)
	if !strings.Contains(body, `<a href="/agent/n1/odd/ap%E2%80%8Bp">ap<span class="esc"`) {
		t.Errorf("the breadcrumbs do not show the escape:\n%.1500s", body)
	}

	// The API: exact names, with flags.
	var l ListingJSON
	h.getJSON("", "/api/v1/files/n1/odd", &l)
	flags := map[string][]string{}
	for _, e := range l.Entries {
		flags[e.Name] = e.NameFlags
	}
	wantFlags := map[string][]string{bidi: {flagHidden}, zw: {flagHidden}, ctrl: {flagHidden}, mixed: {flagMixed}, bom: {flagHidden}, "plain.log": nil}
	for name, want := range wantFlags {
		got, ok := flags[name]
		if !ok || !slices.Equal(got, want) {
			t.Errorf("API entry %q: present %v, flags %v, want %v (entries %v)", name, ok, got, want, flags)
		}
	}
	resp, b = h.get("", "/api/v1/grep?q=line+one&path=odd/"+strings.ReplaceAll(bidi, "\u202e", "*"))
	var m GrepMatch
	if line, _, _ := strings.Cut(string(b), "\n"); json.Unmarshal([]byte(line), &m) != nil || m.Path != "odd/"+bidi || !slices.Equal(m.NameFlags, []string{flagHidden}) {
		t.Errorf("grep match (%d): %+v from %s", resp.StatusCode, m, b)
	}

	// A download's file name: escaped.
	resp, _ = h.get("", "/raw/n1/odd/"+escapePath(bidi, "")+"?download=1")
	if cd := resp.Header.Get("Content-Disposition"); strings.Contains(cd, "%E2%80%AE") || strings.Contains(cd, "\u202e") || !strings.Contains(cd, `u202egol.exe`) {
		t.Errorf("Content-Disposition %q", cd)
	}
}
