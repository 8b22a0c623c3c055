package syncer

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/syncer-dev/syncer/internal/pathglob"
)

// DefaultInclude is the pattern used when no --include is given.
const DefaultInclude = "**/*.log"

// MaxPatternLen is the longest include or exclude pattern, in bytes (see
// pathglob.MaxLen).
const MaxPatternLen = pathglob.MaxLen

// ErrBadPattern is returned (wrapped, naming the pattern) for a glob that
// does not compile or is refused (too long, or holding U+FFFD). The command
// line maps it to a usage error.
var ErrBadPattern = errors.New("bad glob pattern")

// Matcher selects files by their path relative to the log directory, with
// '/' as separator. A path is selected when it matches at least one include
// pattern and no exclude pattern.
//
// Patterns are gobwas/glob patterns in globstar mode (see pathglob): `*`
// and `?` stay within one path segment, `**` crosses segments, `**/` also
// matches no directory at all (`**/*.log` matches `a.log` as well as
// `x/y/a.log`, as in .gitignore and bash's globstar), `{a,b}` are
// alternatives and `[a-z]` a class. They are matched in time linear in the
// path: the agent matches every file of the tree on every scan, and the glob
// library's own engine takes exponential time on some short patterns, so
// one such --include would hang it. A Matcher is safe for concurrent use.
type Matcher struct {
	include, exclude []*pathglob.Pattern
	// names are the include patterns as given; hit[i] says include[i]
	// selected a file (see Unmatched).
	names []string
	hit   []atomic.Bool
}

// GlobCase says whether include and exclude patterns match letter case.
type GlobCase int

const (
	// GlobCasePlatform follows the platform's file names: without regard
	// to case on Windows (NTFS compares names so), exactly elsewhere.
	GlobCasePlatform GlobCase = iota
	// GlobCaseSensitive matches letters exactly.
	GlobCaseSensitive
	// GlobCaseInsensitive matches letters without regard to case.
	GlobCaseInsensitive
)

// DefaultIgnoreCase is the platform's case rule as a flag's default: true
// on Windows.
const DefaultIgnoreCase = windowsNames

// GlobCaseOf returns the explicit rule for an --ignore-case value.
func GlobCaseOf(ignoreCase bool) GlobCase {
	if ignoreCase {
		return GlobCaseInsensitive
	}
	return GlobCaseSensitive
}

// foldCase reports whether c matches without regard to case here.
func (c GlobCase) foldCase() bool {
	return c == GlobCaseInsensitive || (c == GlobCasePlatform && windowsNames)
}

// NewMatcher compiles include (DefaultInclude when empty) and exclude with
// the platform's case rule (GlobCasePlatform). A pattern the glob library
// refuses, an empty one, one longer than MaxPatternLen and one holding
// U+FFFD are refused with ErrBadPattern.
func NewMatcher(include, exclude []string) (*Matcher, error) {
	return NewMatcherCase(include, exclude, GlobCasePlatform)
}

// NewMatcherCase is NewMatcher with the case rule c. On Windows a `\` in
// a pattern is a path separator, as a Windows user writes it
// (`Logs\X\*.log`), not an escape.
func NewMatcherCase(include, exclude []string, c GlobCase) (*Matcher, error) {
	if len(include) == 0 {
		include = []string{DefaultInclude}
	}
	opts := pathglob.Options{BackslashSeparator: windowsNames, FoldCase: c.foldCase()}
	m := &Matcher{names: include, hit: make([]atomic.Bool, len(include))}
	var err error
	if m.include, err = compileAll(include, opts); err != nil {
		return nil, err
	}
	if m.exclude, err = compileAll(exclude, opts); err != nil {
		return nil, err
	}
	return m, nil
}

func compileAll(patterns []string, opts pathglob.Options) ([]*pathglob.Pattern, error) {
	out := make([]*pathglob.Pattern, 0, len(patterns))
	for _, p := range patterns {
		c, err := pathglob.CompileWith(p, opts)
		if err != nil {
			return nil, fmt.Errorf("pattern %q: %w: %v", p, ErrBadPattern, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// Match reports whether rel (slash-separated, relative to the log
// directory) is selected.
func (m *Matcher) Match(rel string) bool {
	for _, g := range m.exclude {
		if g.Match(rel) {
			return false
		}
	}
	for i, g := range m.include {
		if g.Match(rel) {
			m.hit[i].Store(true)
			// The later patterns that have not selected anything yet are
			// tried too, so that Unmatched names only patterns that
			// select nothing (a pattern shadowed by an earlier one
			// still counts): each costs a match until its first hit.
			for j := i + 1; j < len(m.include); j++ {
				if !m.hit[j].Load() && m.include[j].Match(rel) {
					m.hit[j].Store(true)
				}
			}
			return true
		}
	}
	return false
}

// Unmatched returns the include patterns that have selected no file yet
// (a file an exclude pattern removed does not count).
func (m *Matcher) Unmatched() []string {
	var out []string
	for i, name := range m.names {
		if !m.hit[i].Load() {
			out = append(out, name)
		}
	}
	return out
}

// Excluded reports whether a directory rel is excluded as a whole: an
// exclude pattern matches rel itself or everything below it ("rel/**"
// style), so the walk need not descend.
func (m *Matcher) Excluded(rel string) bool {
	for _, g := range m.exclude {
		if g.Match(rel) || g.Match(rel+"/") {
			return true
		}
	}
	return false
}
