package syncer

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gobwas/glob"

	"github.com/syncer-dev/syncer/internal/pathglob"
)

// Bounds of the FuzzGlob inputs. Matching is linear, so longer inputs find
// nothing new, while the fuzzer minimizes every input that reaches new
// coverage for up to -fuzzminimizetime (60 s by default) on a worker that
// does nothing else meanwhile: multi-kilobyte inputs had both workers
// minimizing at once and the fuzzer report 0 execs/sec for a minute.
const (
	fuzzMaxPattern = 256
	fuzzMaxPath    = 256
)

// FuzzGlob: any pattern either compiles or is refused with ErrBadPattern
// (never a panic), and is refused only when the glob library refuses it or
// for the documented bounds; a compiled include selects exactly what the
// glob library matches (the suffix fast path included), and an exclude of
// the same pattern always wins. Matcher has no time limit here: it is
// linear by construction, and a hang shows up as a stalled fuzzer and then
// the test timeout with the stack. (Running it in a goroutine with a
// timeout, as before, left the goroutine spinning after the failure, one
// more for each run of the minimizer.)
//
// testdata/fuzz/FuzzGlob holds patterns that took the glob library's
// engine seconds to hours (see TestMatcherPathological).
func FuzzGlob(f *testing.F) {
	for _, s := range [][2]string{
		{"**/*.log", "a/b.log"}, {"**/*.log", "a.log"}, {"app/[a-", "app/x"}, {"{a,b}/**", "a/x/y"},
		{"**/*.log.[0-9]", "x.log.1"}, {"*", "a/b"}, {"**/*\\*", "a*"}, {"**/*", "\xff"},
		{"{**/x,y}/**/*.log", "x/y/z.log"}, {"a/{b/,}**/c", "a/c"}, {"[!a-c]?{d*,e}", "zzdq"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pat, rel string) {
		if len(pat) > fuzzMaxPattern || len(rel) > fuzzMaxPath {
			return
		}
		m, err := NewMatcher([]string{pat}, nil)
		g, gerr := globReference.Compile(pat)
		if err != nil {
			if !errors.Is(err, ErrBadPattern) {
				t.Fatalf("pattern %q: error %v is not ErrBadPattern", pat, err)
			}
			if gerr == nil && pat != "" && !strings.ContainsRune(pat, utf8.RuneError) {
				t.Fatalf("NewMatcher refused %q, which the glob library compiles: %v", pat, err)
			}
			return
		}
		if gerr != nil {
			t.Fatalf("NewMatcher accepted %q, the glob library refuses it: %v", pat, gerr)
		}
		got := m.Match(rel)
		if globAffordable(pat, rel) {
			if want := g.Match(rel); got != want {
				re := regexpOf(pat)
				t.Fatalf("pattern %q (regexp %q), path %q: Match %v, glob %v", pat, re, rel, got, want)
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

// globReference is the glob library configured as the agent reads patterns.
var globReference = glob.Compiler{Separators: []rune{'/'}, Globstar: true}

// regexpOf describes how pat is matched, for failure messages.
func regexpOf(pat string) string {
	p, err := pathglob.Compile(pat)
	if err != nil {
		return err.Error()
	}
	return p.String()
}

// globAffordable reports whether the glob library's backtracking matcher
// is sure to answer quickly, so that it can serve as the reference: each
// star and each alternative is a choice among at most len(rel)+1, and the
// number of their combinations is kept under a million.
func globAffordable(pat, rel string) bool {
	k := strings.Count(pat, "*") + strings.Count(pat, "{") + strings.Count(pat, ",")
	n := 1
	for range k {
		if n *= len(rel) + 1; n > 1_000_000 {
			return false
		}
	}
	return true
}
