package httpview

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/iotest"
)

// grepRef is the plain definition of a content search: every line alone
// (its first MaxGrepLine bytes, without the "\r" and "\n" at its end)
// against the pattern. A NUL in the first 8 KiB makes the input binary.
func grepRef(t *testing.T, pattern string, data []byte) []string {
	t.Helper()
	re := regexp.MustCompile(pattern)
	if bytes.IndexByte(data[:min(len(data), 8192)], 0) >= 0 {
		return nil
	}
	var out []string
	var n int64
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line = data[:i+1]
		}
		data = data[len(line):]
		n++
		text := bytes.TrimRight(line[:min(len(line), MaxGrepLine)], "\r\n")
		if re.Match(text) {
			out = append(out, fmt.Sprintf("%d:%s", n, text))
		}
	}
	return out
}

// grepBlocks is the search under test over data read through r.
func grepBlocks(t *testing.T, pattern string, r io.Reader) []string {
	t.Helper()
	m, err := newLineMatcher(pattern)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	err = m.searchReader(context.Background(), r, func(line int64, text []byte) error {
		out = append(out, fmt.Sprintf("%d:%s", line, text))
		return nil
	})
	if err != nil {
		t.Fatalf("%q: %v", pattern, err)
	}
	return out
}

func TestBlockSearchEqualsLineByLine(t *testing.T) {
	patterns := []string{
		// literals (bytes.Index path), prefixes, plain regular expressions
		"ERROR", "order=1", "a", " ", "\r", "\n", "b\nc", "", "x\r",
		// literals whose rarest byte (grep_rare.go) is last, in the middle, repeated
		"xyz", "abc xyz", "c xyz", "code=501", "ab", "bxa", "\t\n",
		`ERROR api`, `ERROR .*code=50[12]`, `order=\d+ code`,
		// anchors: line starts and ends, \A and \z, (?m) and (?-m)
		`^`, `$`, `^$`, `^\s*$`, `^a`, `c$`, `^abc$`, `\Ac`, `c\z`, `(?m)^c`, `(?-m)c$`, `(?m:^)x|y$`,
		`\bc\b`, `\Bb`, `c$\b`, `$\r`, `\r$`, `(?s).$`, `(?s)c.b`,
		// classes that match '\n' or '\r': a block match may run over lines
		`[^a]+`, `[^a]`, `\s+`, `\s$`, `[\s\S]*`, `\D+`, `[^x]*c`, `b[^q]*a`, `(?s)b.*a`, `\S+$`,
		// case folding, alternations, empty matches
		`(?i)error`, `(?i)Abc$`, `(?i)^X`, `x*`, `a|`, `()`, `(?:)$`, `\b`, `c?$`,
		// invalid UTF-8 and non-ASCII
		`\xff`, `é`, `.\xff`, `[^\x00-\x7f]`, `\x{FFFD}`,
	}
	inputs := map[string]string{
		"plain":     "abc\nxyz\nabc xyz\n",
		"crlf":      "abc\r\nxyz\r\n\r\nc\r\nabc\r\r\nb a\r\n",
		"no-eol":    "first\nlast line without newline abc",
		"empty":     "",
		"blank":     "\n\n\n",
		"only-cr":   "\r\r\n\r\nx\r",
		"mixed":     "a\nb\n\nc\r\n \n\t\nbxa\nab c\nERROR api code=501\nc",
		"unicode":   "é\xff\n\xffé\nplain\n\xc3\n",
		"log":       string(demoLog(3, 300)),
		"spaces":    "a  \n  b\n\t\n c \r\n",
		"nl-only":   "\n",
		"one-char":  "c",
		"x-and-y":   "x\ny\nxy\nyx\n",
		"trailing":  "abc\n\n",
		"word-ends": "c\nc!\n!c\nabc \n",
	}
	for name, in := range inputs {
		for _, p := range patterns {
			want := grepRef(t, p, []byte(in))
			for _, r := range []struct {
				name string
				r    io.Reader
			}{
				{"whole", strings.NewReader(in)},
				{"bytes", iotest.OneByteReader(strings.NewReader(in))},
				{"halves", iotest.HalfReader(strings.NewReader(in))},
			} {
				got := grepBlocks(t, p, r.r)
				if strings.Join(got, "\x00") != strings.Join(want, "\x00") {
					t.Errorf("input %s (%s), pattern %q:\n got  %q\n want %q", name, r.name, p, got, want)
				}
			}
		}
	}
}

// TestBlockSearchAtBlockBoundaries puts matches and line ends on and
// around the edges of the read blocks, and lines longer than MaxGrepLine
// with a match before and after the part that counts.
func TestBlockSearchAtBlockBoundaries(t *testing.T) {
	var b bytes.Buffer
	line := func(s string) { b.WriteString(s); b.WriteByte('\n') }
	for b.Len() < grepBlock-40 {
		fmt.Fprintf(&b, "filler line %d\n", b.Len())
	}
	// Lines straddling the first block's end, one ending on it exactly.
	line(strings.Repeat("y", grepBlock-b.Len()-1))
	line("abc at the start of the second block")
	line("a line across" + strings.Repeat(" ", 20) + "abc")
	// A long line: its counted part ends in "ab" and "c" comes after.
	line("abc" + strings.Repeat("z", MaxGrepLine-5) + "ab" + "c" + strings.Repeat("z", 100) + "abc")
	line("after the long line abc")
	b.WriteString(strings.Repeat("q", MaxGrepLine+10) + "\r\n")
	line("\r")
	// A long line at the end without a newline, in CRLF style.
	b.WriteString("x\r\n" + strings.Repeat("w", MaxGrepLine) + "abc")
	data := b.Bytes()
	for _, p := range []string{"abc", "^abc", "abc$", "ab$", "c$", `z+ab$`, `^y+$`, `y$`, `[^a]+`, `(?i)ABC`, `^a`, `^$`, `q$`, `w$`, `\s+$`, `x$`, `line \d+$`} {
		want := grepRef(t, p, data)
		for _, r := range []io.Reader{bytes.NewReader(data), iotest.HalfReader(bytes.NewReader(data))} {
			got := grepBlocks(t, p, r)
			if strings.Join(got, "\x00") != strings.Join(want, "\x00") {
				t.Errorf("pattern %q: %d lines, want %d; first difference %s", p, len(got), len(want), firstDiff(got, want))
			}
		}
	}
	if n := len(grepRef(t, "abc", data)); n != 4 {
		t.Fatalf("the test data has %d lines with abc: it does not test the boundaries", n)
	}
}

func firstDiff(got, want []string) string {
	for i := range max(len(got), len(want)) {
		g, w := "(none)", "(none)"
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			return fmt.Sprintf("at %d: got %.80q, want %.80q", i, g, w)
		}
	}
	return "none"
}

func TestBlockSearchSkipsBinary(t *testing.T) {
	data := "abc\n\x00abc\n"
	if got := grepBlocks(t, "abc", strings.NewReader(data)); len(got) != 0 {
		t.Errorf("binary input searched: %q", got)
	}
	data = strings.Repeat("x\n", 5000) + "\x00abc\n"
	if got := grepBlocks(t, "abc", strings.NewReader(data)); len(got) != 1 || got[0] != "5001:\x00abc" {
		t.Errorf("a NUL after the first 8 KiB: %q", got)
	}
}

// TestGrepNonUTF8Path: a hit in a file whose name is not UTF-8 carries
// the name's bytes, and they open the file.
func TestGrepNonUTF8Path(t *testing.T) {
	h := newHist(t, false)
	name := "caf\xe9-\xff.log"
	writeFile(t, filepath.Join(h.root, "n1", "app", name), []byte("one\nneedle here\n"))
	writeFile(t, filepath.Join(h.root, "n1", "app", "plain.log"), []byte("needle too\n"))
	h.reconcile()
	resp, body := h.get("", "/api/v1/grep?q=needle")
	lines := ndjson(t, body)
	if resp.StatusCode != 200 || len(lines) != 3 {
		t.Fatalf("grep: %d %s", resp.StatusCode, body)
	}
	var sawRaw, sawPlain bool
	for _, l := range lines[:2] {
		b64, _ := l["path_b64"].(string)
		switch l["path"] {
		case "app/plain.log":
			sawPlain = true
			if b64 != "" {
				t.Errorf("UTF-8 path has path_b64 %q", b64)
			}
		default:
			sawRaw = true
			raw, err := base64.StdEncoding.DecodeString(b64)
			if err != nil || string(raw) != "app/"+name {
				t.Fatalf("path_b64 %q decodes to %q (%v), want %q", b64, raw, err, "app/"+name)
			}
			if l["line"] != float64(2) || l["text"] != "needle here" {
				t.Errorf("hit = %v", l)
			}
			// The web UI percent-encodes those bytes (encPath in app.js).
			code, got := h.rawGet("/raw/n1/" + pctEncode(raw))
			if code != 200 || got != "one\nneedle here\n" {
				t.Errorf("GET /raw of the hit: %d %q", code, got)
			}
		}
	}
	if !sawRaw || !sawPlain {
		t.Errorf("hits %v", lines)
	}
}

// pctEncode encodes a path as app.js's encPath does: unreserved bytes as
// they are, '/' as the separator, every other byte as %XX.
func pctEncode(p []byte) string {
	var b strings.Builder
	for _, c := range p {
		if c == '/' || c < 128 && strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// BenchmarkLineMatcher compares the block search with line by line over
// 8 MiB of logs, one pattern of each kind.
//
//	go test -run '^$' -bench LineMatcher ./httpview/
func BenchmarkLineMatcher(b *testing.B) {
	var data []byte
	for len(data) < 8<<20 {
		data = append(data, demoLog(int64(len(data)), 20000)...)
	}
	for _, p := range []string{"code=E4711", "checkout failed", `ERROR .*code=503`, `(?i)checkout FAILED`, `code=50[23] upstream`, `\d{4}ms$`} {
		m, err := newLineMatcher(p)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("block/"+p, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for range b.N {
				_ = m.searchReader(context.Background(), bytes.NewReader(data), func(int64, []byte) error { return nil })
			}
		})
		b.Run("lines/"+p, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for range b.N {
				d := data
				for len(d) > 0 {
					i := bytes.IndexByte(d, '\n')
					m.line.Match(d[:i])
					d = d[i+1:]
				}
			}
		})
	}
}

// TestGrepOrderAndBounds: with two files searched at once, results come
// in the walk's file order and line order every time; max and timeout end
// the search with their reason.
func TestGrepOrderAndBounds(t *testing.T) {
	h := newHist(t, false)
	var want []string
	for i := range 40 {
		var b strings.Builder
		// Later files are shorter, so they finish first if not ordered.
		for j := range 2000 - 40*i {
			if j%97 == 0 {
				fmt.Fprintf(&b, "needle %d %d\n", i, j)
			} else {
				fmt.Fprintf(&b, "hay %d %d\n", i, j)
			}
		}
		writeFile(t, filepath.Join(h.root, "n1", fmt.Sprintf("f%02d.log", i)), []byte(b.String()))
		for j := range 2000 - 40*i {
			if j%97 == 0 {
				want = append(want, fmt.Sprintf("f%02d.log:%d:needle %d %d", i, j+1, i, j))
			}
		}
	}
	h.reconcile()
	hits := func(body []byte) ([]string, map[string]any) {
		lines := ndjson(t, body)
		var out []string
		for _, l := range lines[:len(lines)-1] {
			out = append(out, fmt.Sprintf("%s:%v:%s", l["path"], l["line"], l["text"]))
		}
		return out, lines[len(lines)-1]
	}
	for range 3 {
		_, body := h.get("", "/api/v1/grep?q=needle&max=10000")
		got, done := hits(body)
		if strings.Join(got, "\n") != strings.Join(want, "\n") || done["reason"] != nil || done["matches"] != float64(len(want)) || done["files"] != float64(40) {
			t.Fatalf("grep: %d hits, done %v; first difference %s", len(got), done, firstDiff(got, want))
		}
	}
	for _, max := range []int{1, 7, len(want) - 1} {
		_, body := h.get("", fmt.Sprintf("/api/v1/grep?q=needle+%%5Cd&max=%d", max))
		got, done := hits(body)
		if strings.Join(got, "\n") != strings.Join(want[:max], "\n") || done["reason"] != "limit" {
			t.Errorf("max=%d: %d hits, done %v", max, len(got), done)
		}
	}
	// Exactly max matches is complete, not "limit".
	_, body := h.get("", fmt.Sprintf("/api/v1/grep?q=needle&max=%d", len(want)))
	if got, done := hits(body); len(got) != len(want) || done["reason"] != nil {
		t.Errorf("max=%d: %d hits, done %v", len(want), len(got), done)
	}
	_, body = h.get("", "/api/v1/grep?q=needle&timeout=1ns")
	if _, done := hits(body); done["reason"] != "timeout" {
		t.Errorf("timeout=1ns: done %v", done)
	}
}
