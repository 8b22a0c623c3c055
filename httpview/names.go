package httpview

import (
	"fmt"
	"html/template"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Names that deceive. Archived names are the nodes' names byte for byte
// (internal/archive.ValidName allows any byte but '/' and NUL), so a
// node's user can name a log so that it looks like another one:
//   - with characters that show nothing or change the order of what
//     follows: bidi controls (U+202A–202E, U+2066–2069: "gol.exe" with
//     U+202E shows as "exe.log" reversed), zero-width characters
//     (U+200B–200F, U+2060, U+FEFF), other controls and format
//     characters, default-ignorable code points (Hangul fillers,
//     variation selectors), spaces other than U+0020, private-use
//     characters. The pages show each of these as a visible escape
//     (\u202e) in a marked span whose title says what it is;
//   - with letters of another script that look the same (Cyrillic "а"
//     in "pаyments.log"). The rule is UTS #39's "highly restrictive"
//     level, per word (a run of letters, digits and marks): a word may
//     use one script, or Latin with Han and Japanese kana, Latin with
//     Han and Bopomofo, or Latin with Han and Hangul. A word that mixes
//     others is marked with a ⚠ whose title names the scripts. Names in
//     one foreign script ("аррӏе.log", all Cyrillic) are not marked: that
//     needs the confusables table of UTS #39, which neither the standard
//     library nor golang.org/x/text ships (x/text/secure/precis checks
//     the bidi rule and disallowed classes, not scripts).
//
// The JSON API keeps names exact (scripts need them) and adds name_flags
// ("hidden_chars", "mixed_script") to entries whose path has either; the
// page scripts (app.js) escape and mark with the same rules.

// Flags of a name in the JSON API.
const (
	flagHidden = "hidden_chars"
	flagMixed  = "mixed_script"
)

// hiddenRune reports whether r shows as nothing (or as something it is
// not) and must be escaped to be seen.
func hiddenRune(r rune) bool {
	switch {
	case r == ' ':
		return false
	case r < 0x20 || r == 0x7f:
		return true
	case r < 0x80:
		return false
	}
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp, unicode.Zs, unicode.Co,
		unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector)
}

// runeEscape is r as a Go-style escape: \u202e, \U000e0001.
func runeEscape(r rune) string {
	if r > 0xffff {
		return fmt.Sprintf(`\U%08x`, r)
	}
	return fmt.Sprintf(`\u%04x`, r)
}

// runeKind says in a word or two what a hidden rune is.
func runeKind(r rune) string {
	switch {
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f, r == 0x061c:
		return "a direction control: it reorders the text that follows"
	case r >= 0x200b && r <= 0x200d, r == 0x2060, r == 0xfeff:
		return "a zero-width character"
	case unicode.Is(unicode.Cc, r):
		return "a control character"
	case unicode.Is(unicode.Zs, r):
		return "a space that is not U+0020"
	case unicode.Is(unicode.Co, r):
		return "a private-use character"
	}
	return "an invisible character"
}

// escapeName is s (invalid UTF-8 as U+FFFD) with every hidden rune as its
// escape: for plain text (a page title, a download's file name).
func escapeName(s string) string {
	s = display(s)
	if !hasHidden(s) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if hiddenRune(r) {
			b.WriteString(runeEscape(r))
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func hasHidden(s string) bool {
	for _, r := range s {
		if hiddenRune(r) {
			return true
		}
	}
	return false
}

// markName is s as HTML for a page: escaped text, each hidden rune as a
// marked escape (span.esc, its title saying what it is), and a ⚠
// (span.lookalike) after a name with a word that mixes scripts.
func markName(s string) template.HTML {
	s = display(s)
	var b strings.Builder
	for _, r := range s {
		if hiddenRune(r) {
			fmt.Fprintf(&b, `<span class="esc" title="U&#43;%04X, %s; shown escaped">%s</span>`, r, template.HTMLEscapeString(runeKind(r)), runeEscape(r))
			continue
		}
		b.WriteString(template.HTMLEscapeString(string(r)))
	}
	if scripts := mixedScripts(s); scripts != nil {
		fmt.Fprintf(&b, `<span class="lookalike" title="mixes %s letters in one word: it may imitate another name">⚠</span>`, template.HTMLEscapeString(strings.Join(scripts, " and ")))
	}
	return template.HTML(b.String())
}

// nameFlags are the JSON API's flags of an archive path (any element).
func nameFlags(p string) []string {
	var out []string
	if !utf8.ValidString(p) {
		p = display(p)
	}
	if hasHidden(p) {
		out = append(out, flagHidden)
	}
	if mixedScripts(p) != nil {
		out = append(out, flagMixed)
	}
	return out
}

// mixedScripts returns the scripts of the first word of s that mixes
// scripts beyond what UTS #39's highly restrictive level allows, or nil.
func mixedScripts(s string) []string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return nil // one script at most: Latin
	}
	var word []string // the scripts of the current word
	for _, r := range s + " " {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.IsMark(r) {
			if len(word) > 1 && !allowedMix(word) {
				slices.Sort(word)
				return word
			}
			word = word[:0]
			continue
		}
		sc := scriptOf(r)
		if sc != "" && !slices.Contains(word, sc) {
			word = append(word, sc)
		}
	}
	return nil
}

// allowedMixes are the combinations of scripts one word may use (UTS #39
// highly restrictive: Chinese, Japanese and Korean writing with Latin).
var allowedMixes = [][]string{
	{"Latin", "Han", "Hiragana", "Katakana"},
	{"Latin", "Han", "Bopomofo"},
	{"Latin", "Han", "Hangul"},
}

func allowedMix(scripts []string) bool {
	for _, set := range allowedMixes {
		if !slices.ContainsFunc(scripts, func(s string) bool { return !slices.Contains(set, s) }) {
			return true
		}
	}
	return false
}

// scriptNames lists unicode.Scripts, the usual scripts of names first so
// that most lookups end early.
var scriptNames = func() []string {
	first := []string{"Latin", "Cyrillic", "Greek", "Han", "Hiragana", "Katakana", "Hangul", "Arabic", "Hebrew", "Armenian", "Georgian", "Thai", "Devanagari"}
	out := slices.Clone(first)
	var rest []string
	for name := range unicode.Scripts {
		if !slices.Contains(first, name) && name != "Common" && name != "Inherited" {
			rest = append(rest, name)
		}
	}
	slices.Sort(rest)
	return append(out, rest...)
}()

// scriptOf is the script of r, "" for Common and Inherited (digits,
// punctuation, combining marks: they go with any script).
func scriptOf(r rune) string {
	if r < 0x80 {
		if unicode.IsLetter(r) {
			return "Latin"
		}
		return ""
	}
	for _, name := range scriptNames {
		if unicode.Is(unicode.Scripts[name], r) {
			return name
		}
	}
	return ""
}
