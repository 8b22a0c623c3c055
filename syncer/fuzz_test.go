package syncer

import (
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gobwas/glob"
)

// FuzzGlob: any pattern either compiles or is refused with ErrBadPattern
// (never a panic); a compiled include selects exactly what the glob
// library matches (the suffix fast path included), and an exclude of the
// same pattern always wins.
func FuzzGlob(f *testing.F) {
	for _, s := range [][2]string{
		{"**/*.log", "a/b.log"}, {"**/*.log", "a.log"}, {"app/[a-", "app/x"}, {"{a,b}/**", "a/x/y"},
		{"**/*.log.[0-9]", "x.log.1"}, {"*", "a/b"}, {"**/*\\*", "a*"}, {"**/*", "\xff"},
	} {
		f.Add(s[0], s[1])
	}
	c := glob.Compiler{Separators: []rune{'/'}, Globstar: true}
	f.Fuzz(func(t *testing.T, pat, rel string) {
		// A pattern is operator input: compiling and matching it must be
		// bounded, not a way to hang the agent.
		type result struct {
			m   *Matcher
			err error
		}
		done := make(chan result, 1)
		go func() {
			m, err := NewMatcher([]string{pat}, nil)
			if err == nil {
				m.Match(rel)
			}
			done <- result{m, err}
		}()
		var res result
		select {
		case res = <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("pattern %q on %q: no answer within 5 s", pat, rel)
		}
		m, err := res.m, res.err
		if err != nil {
			return
		}
		g, gerr := c.Compile(pat)
		if gerr != nil {
			t.Fatalf("NewMatcher accepted %q, the glob library refuses it: %v", pat, gerr)
		}
		if utf8.ValidString(rel) {
			if got, want := m.Match(rel), g.Match(rel); got != want {
				t.Fatalf("pattern %q, path %q: Match %v, glob %v", pat, rel, got, want)
			}
		}
		both, err := NewMatcher([]string{pat}, []string{pat})
		if err != nil {
			t.Fatal(err)
		}
		if both.Match(rel) {
			t.Fatalf("pattern %q both included and excluded selects %q", pat, rel)
		}
	})
}
