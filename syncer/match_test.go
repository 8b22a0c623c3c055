package syncer

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gobwas/glob"
)

func TestMatcher(t *testing.T) {
	cases := []struct {
		include, exclude []string
		path             string
		want             bool
	}{
		{nil, nil, "a.log", true},
		{nil, nil, "x/y/a.log", true},
		{nil, nil, "a.txt", false},
		{nil, nil, "caf\xe9/\xff.log", true},
		{[]string{"app/**/*.log"}, nil, "app/a.log", true},
		{[]string{"app/**/*.log"}, nil, "app/2026/11/a.log", true},
		{[]string{"app/**/*.log"}, nil, "other/a.log", false},
		{[]string{"*.log"}, nil, "x/a.log", false},
		{[]string{"**/*.{log,txt}"}, nil, "d/a.txt", true},
		{[]string{"**/*.{log,txt}"}, nil, "d/a.gz", false},
		{nil, []string{"**/debug-*.log"}, "x/debug-1.log", false},
		{nil, []string{"tmp/**"}, "tmp/a.log", false},
		{nil, []string{"tmp/**"}, "tmpx/a.log", true},
		{[]string{"**/*.log*"}, []string{"**/*.gz"}, "a.log.1", true},
		{[]string{"**/*.log*"}, []string{"**/*.gz"}, "a.log.2.gz", false},
		// The suffix fast path must agree with the glob.
		{[]string{"**/*.log"}, nil, ".log", true},
		{[]string{"**/*.log"}, nil, "a.log/b.txt", false},
		{[]string{"**/*-error.log"}, nil, "x/y/app-error.log", true},
		{[]string{"**/*-error.log"}, nil, "x/app-info.log", false},
		{[]string{"**/*.log"}, []string{"**/*.log"}, "a.log", false},
	}
	for _, c := range cases {
		m, err := NewMatcher(c.include, c.exclude)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Match(c.path); got != c.want {
			t.Errorf("include %q exclude %q: Match(%q) = %v, want %v", c.include, c.exclude, c.path, got, c.want)
		}
	}
}

func TestMatcherBadPattern(t *testing.T) {
	for _, p := range []string{"[", "{a,b", ""} {
		_, err := NewMatcher([]string{p}, nil)
		if !errors.Is(err, ErrBadPattern) {
			t.Fatalf("pattern %q: err = %v, want ErrBadPattern", p, err)
		}
		if !strings.Contains(err.Error(), `"`+p+`"`) {
			t.Errorf("error %q does not name the pattern %q", err, p)
		}
		if _, err := NewMatcher(nil, []string{p}); !errors.Is(err, ErrBadPattern) {
			t.Fatalf("exclude %q: err = %v, want ErrBadPattern", p, err)
		}
	}
}

// FuzzSuffixFastPath: the `**/*X` shortcut answers as the glob does.
func FuzzSuffixFastPath(f *testing.F) {
	for _, s := range []string{"a.log", ".log", "x/y.log", "a.log/b", "\xff.log", "log"} {
		f.Add(s)
	}
	g, err := glob.Compiler{Separators: []rune{'/'}, Globstar: true}.Compile("**/*.log")
	if err != nil {
		f.Fatal(err)
	}
	m, err := NewMatcher([]string{"**/*.log"}, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, rel string) {
		if len(rel) > fuzzMaxPath {
			return // see fuzzMaxPath: longer paths only stall the fuzzer
		}
		if !utf8.ValidString(rel) {
			return // the glob matches runes; the scan's names are compared as bytes
		}
		if got, want := m.Match(rel), g.Match(rel); got != want {
			t.Fatalf("Match(%q) = %v, glob says %v", rel, got, want)
		}
	})
}

// TestMatcherPathological: patterns on which the glob library's
// backtracking engine takes a power of the path length or exponential
// time (the first two: 12 s on a 200-byte name, 22 s on a 27-byte one)
// answer right on the longest paths. Before the regexp engine this test
// hung until the test timeout.
func TestMatcherPathological(t *testing.T) {
	long := strings.Repeat("a", 4095)
	cases := []struct {
		pattern, path string
		want          bool
	}{
		{"*a*a*a*a*c*b", long + "b", false},
		{"*a*a*a*a*c*b", long[:4000] + "cb", true},
		{strings.Repeat("{a*,a}", 10) + "c*b", long + "b", false},
		{strings.Repeat("{a*,a}", 10) + "c*b", long[:4000] + "cb", true},
		{strings.Repeat("{a,a}", 40) + "c", long[:80] + "b", false},
		{strings.Repeat("*a/", 8) + "*c", strings.Repeat(long[:500]+"/", 8) + "b", false},
		{strings.Repeat("**a", 20) + "c", long + "b", false},
		{strings.Repeat("{*,", 200) + strings.Repeat("}", 200), long, true},
	}
	for _, c := range cases {
		m, err := NewMatcher([]string{c.pattern}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Match(c.path); got != c.want {
			t.Errorf("pattern %q: Match(%d-byte path) = %v, want %v", c.pattern, len(c.path), got, c.want)
		}
	}
}

// TestMatcherBounds: the refusals beyond the glob library's own.
func TestMatcherBounds(t *testing.T) {
	for _, c := range []struct {
		pattern string
		ok      bool
	}{
		{strings.Repeat("a", MaxPatternLen), true},
		{strings.Repeat("a", MaxPatternLen+1), false},
		{"**/" + strings.Repeat("{a,b}", (MaxPatternLen-3)/5), true},
		{"**/\uFFFD.log", false},
		{"[\uFFFD]", false},
		{"caf\u00e9/*.log", true},
	} {
		_, err := NewMatcher([]string{c.pattern}, nil)
		if c.ok && err != nil {
			t.Errorf("%d-byte pattern refused: %v", len(c.pattern), err)
		}
		if !c.ok && !errors.Is(err, ErrBadPattern) {
			t.Errorf("%d-byte pattern %.20q...: err = %v, want ErrBadPattern", len(c.pattern), c.pattern, err)
		}
	}
}

// TestGlobRegexpAgrees compares the regexp translation with the glob
// library on every path of up to 4 runes over a small alphabet, for
// random patterns over the glob syntax (nested groups, `**/` at segment
// starts and elsewhere, classes, escapes). The library is the reference
// here; the patterns are short enough for its engine.
func TestGlobRegexpAgrees(t *testing.T) {
	atoms := []string{"a", "b", "/", "*", "**", "?", "{", "}", ",", "[a-b]", "[!a]", `\*`, "**/", "/**", "é"}
	paths := []string{""}
	for l, frontier := 0, []string{""}; l < 4; l++ {
		var next []string
		for _, p := range frontier {
			for _, r := range []string{"a", "b", "/", "é", "*", "\xff"} {
				next = append(next, p+r)
			}
		}
		paths = append(paths, next...)
		frontier = next
	}
	rng := rand.New(rand.NewPCG(1, 2))
	compiled := 0
	for range 4000 {
		var sb strings.Builder
		for range 1 + rng.IntN(7) {
			sb.WriteString(atoms[rng.IntN(len(atoms))])
		}
		pat := sb.String()
		g, err := glob.Compiler{Separators: []rune{'/'}, Globstar: true}.Compile(pat)
		m, merr := NewMatcher([]string{pat}, nil)
		if (err == nil) != (merr == nil) {
			t.Fatalf("pattern %q: glob error %v, NewMatcher error %v", pat, err, merr)
		}
		if err != nil {
			continue
		}
		compiled++
		for _, p := range paths {
			if got, want := m.Match(p), g.Match(p); got != want {
				re := regexpOf(pat)
				t.Fatalf("pattern %q (regexp %q), path %q: Match %v, glob %v", pat, re, p, got, want)
			}
		}
	}
	if compiled < 1000 {
		t.Fatalf("only %d of the random patterns compiled", compiled)
	}
}

// TestMatcherCase: the case rule of --ignore-case, and the platform's
// default (Windows: without regard to case, `\` a separator).
func TestMatcherCase(t *testing.T) {
	for _, tc := range []struct {
		c       GlobCase
		include string
		path    string
		want    bool
	}{
		{GlobCaseSensitive, "**/*.log", "x/APP.LOG", false},
		{GlobCaseInsensitive, "**/*.log", "x/APP.LOG", true},
		{GlobCaseInsensitive, "Logs/X/*.log", "logs/x/a.Log", true},
		{GlobCaseSensitive, "Logs/X/*.log", "logs/x/a.log", false},
		{GlobCasePlatform, "**/*.log", "x/APP.LOG", windowsNames},
		{GlobCasePlatform, `Logs\X\*.log`, "Logs/X/a.log", windowsNames},
		{GlobCasePlatform, `Logs\X\*.log`, `LogsX*.log`, !windowsNames},
	} {
		m, err := NewMatcherCase([]string{tc.include}, nil, tc.c)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Match(tc.path); got != tc.want {
			t.Errorf("case rule %d, %q matches %q: %v, want %v", tc.c, tc.include, tc.path, got, tc.want)
		}
	}
	if GlobCaseOf(true) != GlobCaseInsensitive || GlobCaseOf(false) != GlobCaseSensitive {
		t.Error("GlobCaseOf")
	}
}
