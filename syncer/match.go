package syncer

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gobwas/glob"
)

// DefaultInclude is the pattern used when no --include is given.
const DefaultInclude = "**/*.log"

// ErrBadPattern is returned (wrapped, naming the pattern) for a glob that
// does not compile. The command line maps it to a usage error.
var ErrBadPattern = errors.New("bad glob pattern")

// Matcher selects files by their path relative to the log directory, with
// '/' as separator. A path is selected when it matches at least one include
// pattern and no exclude pattern.
//
// Patterns are gobwas/glob patterns in globstar mode: `*` and `?` stay
// within one path segment, `**` crosses segments, `**/` also matches no
// directory at all (`**/*.log` matches `a.log` as well as `x/y/a.log`, as in
// .gitignore and bash's globstar), `{a,b}` are alternatives and `[a-z]` a
// class. Paths that are not UTF-8 are matched byte for byte where the
// pattern is literal.
type Matcher struct {
	include, exclude []pattern
}

// pattern is a compiled glob, or for the common `**/*SUFFIX` form (the
// default `**/*.log`) just the suffix: the scan matches every file of the
// tree, and a suffix test costs a fraction of the general matcher.
type pattern struct {
	g      *glob.Pattern
	suffix string
}

func (p pattern) match(rel string) bool {
	if p.g == nil {
		return strings.HasSuffix(rel, p.suffix)
	}
	return p.g.Match(rel)
}

// NewMatcher compiles include (DefaultInclude when empty) and exclude.
func NewMatcher(include, exclude []string) (*Matcher, error) {
	if len(include) == 0 {
		include = []string{DefaultInclude}
	}
	m := &Matcher{}
	var err error
	if m.include, err = compileAll(include); err != nil {
		return nil, err
	}
	if m.exclude, err = compileAll(exclude); err != nil {
		return nil, err
	}
	return m, nil
}

func compileAll(patterns []string) ([]pattern, error) {
	c := glob.Compiler{Separators: []rune{'/'}, Globstar: true}
	out := make([]pattern, 0, len(patterns))
	for _, p := range patterns {
		if p == "" {
			return nil, fmt.Errorf("pattern %q: %w: empty", p, ErrBadPattern)
		}
		g, err := c.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("pattern %q: %w: %v", p, ErrBadPattern, err)
		}
		// `**/*X` with a literal X (no '/', no meta character) matches
		// exactly the paths ending in X: `**/` spans any directories
		// (none included) and `*` any part of the last name.
		if rest, ok := strings.CutPrefix(p, "**/*"); ok && rest != "" && !strings.ContainsAny(rest, "/*?[]{}\\!") {
			out = append(out, pattern{suffix: rest})
			continue
		}
		out = append(out, pattern{g: g})
	}
	return out, nil
}

// Match reports whether rel (slash-separated, relative to the log
// directory) is selected.
func (m *Matcher) Match(rel string) bool {
	for _, g := range m.exclude {
		if g.match(rel) {
			return false
		}
	}
	for _, g := range m.include {
		if g.match(rel) {
			return true
		}
	}
	return false
}

// Excluded reports whether a directory rel is excluded as a whole: an
// exclude pattern matches rel itself or everything below it ("rel/**"
// style), so the walk need not descend.
func (m *Matcher) Excluded(rel string) bool {
	for _, g := range m.exclude {
		if g.match(rel) || g.match(rel+"/") {
			return true
		}
	}
	return false
}
