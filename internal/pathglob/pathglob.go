// Package pathglob compiles the glob patterns of syncer (the agent's
// --include/--exclude, the web viewer's name and path filters) into
// matchers that run in time linear in the path.
//
// The syntax is gobwas/glob's with '/' as separator in globstar mode: `*`
// and `?` stay within a path segment, `**` spans segments, `**/` also
// matches no directory at all, `{a,b}` are alternatives, `[a-z]` and
// `[!a-z]` classes, `\` escapes. The glob library validates a pattern and
// defines what it means, but does not match it: its engine backtracks, and a
// short pattern can take exponential time (`{a*,a}{a*,a}...` on a 30-byte
// name: seconds, each group doubling it) or a high power of the path length
// (`*a*a*a*a*c*b`: 12 s on a 200-byte name). Each pattern is translated
// instead into an equivalent regular expression, which Go's regexp matches
// in time linear in the path length (RE2), so Match costs at most about
// len(pattern) * len(path) steps. The common `**/*SUFFIX` form is a plain
// suffix test. Both are fuzzed against the glob library (syncer's FuzzGlob).
//
// Options read a pattern as Windows users write it: `\` as a separator
// (escaping is then off) and letters matched without regard to case.
//
// Paths that are not UTF-8 are matched byte for byte where the pattern is
// literal; `?`, `*` and the classes take an invalid byte for one U+FFFD, as
// the glob library does.
package pathglob

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/gobwas/glob"
	"github.com/gobwas/glob/syntax"
)

// MaxLen is the longest pattern Compile accepts, in bytes. Matching costs at
// most the pattern length times the path length; the bound keeps that
// product small for the longest paths (PATH_MAX, 4096).
const MaxLen = 1024

// Pattern is a compiled glob. It is safe for concurrent use.
type Pattern struct {
	re     *regexp.Regexp
	suffix string
	fold   bool // the suffix is ASCII, compared without case
}

// Options change how Compile reads a pattern. The zero value is the syntax
// described in the package comment.
type Options struct {
	// BackslashSeparator reads `\` as a path separator, like '/', instead
	// of an escape: `Logs\X\*.log` is `Logs/X/*.log`, as a Windows user
	// writes it (and as path/filepath.Match reads patterns on Windows). A
	// meta character is then matched literally with a class: `[[]`.
	BackslashSeparator bool
	// FoldCase matches without regard to letter case (Unicode simple case
	// folding), as NTFS and the Windows API compare names: `*.LOG` matches
	// `app.log`.
	FoldCase bool
}

// Match reports whether the slash-separated path s matches the whole pattern.
func (p *Pattern) Match(s string) bool {
	if p.re == nil {
		if p.fold {
			return len(s) >= len(p.suffix) && strings.EqualFold(s[len(s)-len(p.suffix):], p.suffix)
		}
		return strings.HasSuffix(s, p.suffix)
	}
	return p.re.MatchString(s)
}

// String describes how the pattern is matched: its regular expression, or
// the suffix of the fast path.
func (p *Pattern) String() string {
	if p.re == nil {
		return "suffix " + p.suffix
	}
	return p.re.String()
}

// reference is the glob library's configuration that defines the syntax.
var reference = glob.Compiler{Separators: []rune{'/'}, Globstar: true}

// Compile compiles p. It refuses, with an error saying why, an empty
// pattern, one longer than MaxLen, one the glob library refuses (with its
// message; it also refuses a pattern that is not UTF-8) and one holding
// U+FFFD.
func Compile(p string) (*Pattern, error) { return CompileWith(p, Options{}) }

// CompileWith compiles p as Compile does, read as opts say.
func CompileWith(p string, opts Options) (*Pattern, error) {
	if opts.BackslashSeparator {
		p = strings.ReplaceAll(p, `\`, "/")
	}
	switch {
	case p == "":
		return nil, errors.New("empty")
	case len(p) > MaxLen:
		// Bounds the matching cost and the compiled size.
		return nil, fmt.Errorf("%d bytes, at most %d", len(p), MaxLen)
	}
	if _, err := reference.Compile(p); err != nil {
		return nil, err
	}
	if strings.ContainsRune(p, utf8.RuneError) {
		// A literal U+FFFD matches only those three bytes for the glob
		// library, while a regular expression also takes an invalid byte
		// of a name for it: refused rather than matched differently.
		return nil, errors.New("holds U+FFFD, the replacement character")
	}
	// `**/*X` with a literal X (no '/', no meta character) matches exactly
	// the paths ending in X: `**/` spans any directories (none included)
	// and `*` any part of the last name.
	if rest, ok := strings.CutPrefix(p, "**/*"); ok && rest != "" && !strings.ContainsAny(rest, "/*?[]{}\\!") {
		if !opts.FoldCase {
			return &Pattern{suffix: rest}, nil
		}
		if isASCII(rest) {
			return &Pattern{suffix: rest, fold: true}, nil
		}
	}
	expr, err := globRegexp(p)
	if err != nil {
		return nil, err
	}
	if opts.FoldCase {
		expr = "(?i)" + expr
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, err
	}
	return &Pattern{re: re}, nil
}

// The translation of a glob into a regular expression follows the glob
// library's own compiler step by step (gobwas/glob v1.1.0 parse.go: the
// parser, simplify, normalizeSequence and the globstar rewrite), on the
// tokens of its exported lexer, so that both read a pattern alike; the
// library's later steps only speed its engine up. syncer's FuzzGlob and
// TestGlobRegexpAgrees check the result against the library.

type gkind uint8

const (
	gText   gkind = iota // a literal
	gSingle              // `?`
	gStar                // `*`, within a segment
	gSuper               // `**`, across segments
	gClass               // `[...]`, re is its regexp class
	gSeq                 // kids one after another
	gAlt                 // one of kids
	gVoid                // the empty string
)

type gnode struct {
	kind gkind
	text string // gText: the literal; gClass: the regexp class
	kids []*gnode
}

// globRegexp returns the regular expression, anchored at both ends, that
// matches what the glob p matches with '/' as separator in globstar mode.
// p must be a pattern the glob library compiles.
func globRegexp(p string) (string, error) {
	type operator struct {
		terms bool // the group, else its current alternative
		index int
	}
	var (
		stack []*gnode
		ops   []operator
	)
	lex := syntax.NewLexer(p)
parsing:
	for {
		tok := lex.Next()
		switch tok.Type {
		case syntax.EOF:
			break parsing
		case syntax.Error:
			return "", errors.New(tok.Data)
		case syntax.Single:
			stack = append(stack, &gnode{kind: gSingle})
		case syntax.Text:
			stack = append(stack, &gnode{kind: gText, text: tok.Data})
		case syntax.RangeOpen:
			class, err := parseClass(lex)
			if err != nil {
				return "", err
			}
			stack = append(stack, &gnode{kind: gClass, text: class})
		case syntax.Any:
			stack = append(stack, &gnode{kind: gStar})
		case syntax.Super:
			stack = append(stack, &gnode{kind: gSuper})
		case syntax.TermsOpen:
			ops = append(ops, operator{terms: true, index: len(stack)}, operator{index: len(stack)})
		case syntax.TermSeparator:
			k := len(ops) - 1
			if k < 0 {
				return "", errors.New("unexpected `,`")
			}
			x := ops[k]
			if !x.terms {
				ops = ops[:k]
			}
			if i := x.index; i == len(stack) {
				stack = append(stack, &gnode{kind: gVoid})
			} else {
				stack[i] = &gnode{kind: gSeq, kids: slices.Clone(stack[i:])}
				stack = stack[:i+1]
			}
			ops = append(ops, operator{index: len(stack)})
		case syntax.TermsClose:
			for {
				k := len(ops) - 1
				if k < 0 {
					return "", errors.New("unexpected `}`")
				}
				x := ops[k]
				ops = ops[:k]
				i := x.index
				n := &gnode{kind: gSeq, kids: slices.Clone(stack[i:])}
				if x.terms {
					n.kind = gAlt
				}
				if i == len(stack) {
					stack = append(stack, n)
				} else {
					stack = stack[:i+1]
					stack[i] = n
				}
				if x.terms {
					break
				}
			}
		default:
			return "", fmt.Errorf("unexpected token %s", tok)
		}
	}
	if len(ops) != 0 {
		return "", errors.New("unclosed `{`")
	}
	root := simplifyGlob(&gnode{kind: gSeq, kids: stack})
	root, _ = globstarGlob(root, true)
	var sb strings.Builder
	sb.WriteString(`\A(?s:`)
	writeRegexp(&sb, root)
	sb.WriteString(`)\z`)
	return sb.String(), nil
}

// parseClass reads a character class after its `[` and returns it as a
// regexp class of code points.
func parseClass(lex *syntax.Lexer) (string, error) {
	var (
		not    bool
		lo, hi rune = -1, -1
		chars  []rune
		set    bool
	)
	for {
		tok := lex.Next()
		switch tok.Type {
		case syntax.EOF:
			return "", errors.New("unclosed `[`")
		case syntax.Error:
			return "", errors.New(tok.Data)
		case syntax.Not:
			not = true
		case syntax.RangeLo, syntax.RangeHi:
			r, w := utf8.DecodeRuneInString(tok.Data)
			if len(tok.Data) != w {
				return "", errors.New("bad range character")
			}
			if tok.Type == syntax.RangeLo {
				lo = r
			} else {
				hi = r
			}
		case syntax.RangeBetween:
		case syntax.Text:
			chars, set = []rune(tok.Data), true
		case syntax.RangeClose:
			isRange := lo >= 0 && hi >= lo
			if set == isRange {
				return "", errors.New("could not parse range")
			}
			var sb strings.Builder
			sb.WriteByte('[')
			if not {
				sb.WriteByte('^')
			}
			if isRange {
				fmt.Fprintf(&sb, `\x{%x}-\x{%x}`, lo, hi)
			}
			for _, r := range chars {
				fmt.Fprintf(&sb, `\x{%x}`, r)
			}
			sb.WriteByte(']')
			return sb.String(), nil
		}
	}
}

// simplifyGlob is the library's simplify: sequences flattened, voids
// dropped, adjacent literals merged, adjacent stars coalesced (into `**` if
// either is one), single-child groups and sequences replaced by the child.
func simplifyGlob(n *gnode) *gnode {
	if n.kind != gSeq && n.kind != gAlt {
		return n
	}
	kids := make([]*gnode, len(n.kids))
	for i, k := range n.kids {
		kids[i] = simplifyGlob(k)
	}
	if n.kind == gSeq {
		var out []*gnode
		var push func(k *gnode)
		push = func(k *gnode) {
			var prev *gnode
			if len(out) > 0 {
				prev = out[len(out)-1]
			}
			switch k.kind {
			case gSeq:
				for _, c := range k.kids {
					push(c)
				}
				return
			case gVoid:
				return
			case gText:
				if prev != nil && prev.kind == gText {
					out[len(out)-1] = &gnode{kind: gText, text: prev.text + k.text}
					return
				}
			case gStar, gSuper:
				if prev != nil && (prev.kind == gStar || prev.kind == gSuper) {
					if k.kind == gSuper {
						out[len(out)-1] = k
					}
					return
				}
			}
			out = append(out, k)
		}
		for _, k := range kids {
			push(k)
		}
		kids = out
	}
	switch len(kids) {
	case 0:
		return &gnode{kind: gVoid}
	case 1:
		return kids[0]
	}
	return &gnode{kind: n.kind, kids: kids}
}

// globstarGlob is the library's globstar rewrite: a `**` that begins a
// segment (start of the pattern, or after a '/') and is followed by a '/'
// becomes `{**/,}`. start tells whether n begins at a segment start; the
// result tells whether n ends at one.
func globstarGlob(n *gnode, start bool) (*gnode, bool) {
	switch n.kind {
	case gAlt:
		end := true
		kids := make([]*gnode, len(n.kids))
		for i, k := range n.kids {
			var e bool
			kids[i], e = globstarGlob(k, start)
			end = end && e
		}
		return &gnode{kind: gAlt, kids: kids}, end
	case gSeq:
		v := slices.Clone(n.kids)
		var out []*gnode
		prev := false // out ends with a `{**/,}`
		for i := 0; i < len(v); i++ {
			k := v[i]
			if start && i+1 < len(v) && k.kind == gSuper && v[i+1].kind == gText && strings.HasPrefix(v[i+1].text, "/") {
				if !prev {
					out = append(out, &gnode{kind: gAlt, kids: []*gnode{
						{kind: gSeq, kids: []*gnode{k, {kind: gText, text: "/"}}},
						{kind: gVoid},
					}})
					prev = true
				}
				// `{**/,}{**/,}` is `{**/,}`: the second is dropped.
				if rest := v[i+1].text[1:]; rest != "" {
					v[i+1] = &gnode{kind: gText, text: rest}
				} else {
					i++
				}
				continue
			}
			prev = false
			k, start = globstarGlob(k, start)
			out = append(out, k)
		}
		if len(out) == 1 {
			return out[0], start
		}
		return &gnode{kind: gSeq, kids: out}, start
	case gText:
		return n, strings.HasSuffix(n.text, "/")
	case gVoid:
		return n, start
	}
	return n, false // a star, `?` or a class never matches a separator
}

func writeRegexp(sb *strings.Builder, n *gnode) {
	switch n.kind {
	case gText:
		sb.WriteString(regexp.QuoteMeta(n.text))
	case gSingle:
		sb.WriteString(`[^/]`)
	case gStar:
		sb.WriteString(`[^/]*`)
	case gSuper:
		sb.WriteString(`.*`)
	case gClass:
		sb.WriteString(n.text)
	case gSeq:
		for _, k := range n.kids {
			writeRegexp(sb, k)
		}
	case gAlt:
		sb.WriteString(`(?:`)
		for i, k := range n.kids {
			if i > 0 {
				sb.WriteByte('|')
			}
			writeRegexp(sb, k)
		}
		sb.WriteByte(')')
	}
}

// isASCII reports whether s is all ASCII: strings.EqualFold on a suffix of
// the same byte length is then exact.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
