package syncer

import (
	"unicode/utf8"

	"errors"
	"github.com/gobwas/glob"
	"strings"
	"testing"
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
		if !utf8.ValidString(rel) {
			return // the glob matches runes; the scan's names are compared as bytes
		}
		if got, want := m.Match(rel), g.Match(rel); got != want {
			t.Fatalf("Match(%q) = %v, glob says %v", rel, got, want)
		}
	})
}
