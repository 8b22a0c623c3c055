package pathglob

import (
	"strings"
	"testing"
)

func TestCompile(t *testing.T) {
	cases := []struct {
		pattern string
		match   []string
		miss    []string
	}{
		{"**/*.log", []string{"a.log", "x/y/a.log"}, []string{"a.logx", "a/log"}},
		{"app/*.log", []string{"app/a.log"}, []string{"app/x/a.log", "a.log"}},
		{"app/**/*.log", []string{"app/a.log", "app/x/y/a.log"}, []string{"b/a.log"}},
		{"{a,b}/?.[0-9]", []string{"a/x.1", "b/y.9"}, []string{"c/x.1", "a/xy.1", "a/x.a"}},
		{"[!a-c]*", []string{"d", "zz"}, []string{"a", "bz", "d/x"}},
		{`\*.log`, []string{"*.log"}, []string{"a.log"}},
		// Linear time: these never answer with the glob library's engine.
		{"*a*a*a*a*c*.log", []string{strings.Repeat("a", 100) + "c.log"}, []string{strings.Repeat("a", 4000) + ".log"}},
		{strings.Repeat("{a*,a}", 10) + "c*.log", []string{strings.Repeat("a", 30) + "c.log"}, []string{strings.Repeat("a", 4000) + ".log"}},
	}
	for _, c := range cases {
		p, err := Compile(c.pattern)
		if err != nil {
			t.Fatalf("Compile(%q): %v", c.pattern, err)
		}
		for _, s := range c.match {
			if !p.Match(s) {
				t.Errorf("%q (%s) does not match %.40q", c.pattern, p, s)
			}
		}
		for _, s := range c.miss {
			if p.Match(s) {
				t.Errorf("%q (%s) matches %.40q", c.pattern, p, s)
			}
		}
	}
}

func TestCompileRefuses(t *testing.T) {
	for _, p := range []string{"", strings.Repeat("a", MaxLen+1), "[a-", "{a,b", "\xff.log", "\uFFFD.log"} {
		if _, err := Compile(p); err == nil {
			t.Errorf("Compile(%.20q) accepted", p)
		}
	}
	if _, err := Compile(strings.Repeat("a", MaxLen)); err != nil {
		t.Errorf("a pattern of MaxLen bytes refused: %v", err)
	}
}

// TestCompileWith: Windows-style patterns. With BackslashSeparator a `\`
// is a separator (Logs\X\*.log matched nothing before); with FoldCase the
// names match as NTFS compares them. Without the options both read as
// before.
func TestCompileWith(t *testing.T) {
	win := Options{BackslashSeparator: true, FoldCase: true}
	cases := []struct {
		pattern string
		opts    Options
		match   []string
		miss    []string
	}{
		{`Logs\X\*.log`, Options{BackslashSeparator: true}, []string{"Logs/X/a.log"}, []string{`Logs\X\a.log`, "logs/x/a.log", "Logs/X/y/a.log"}},
		{`Logs\X\*.log`, Options{}, []string{`LogsX*.log`}, []string{"Logs/X/a.log"}},
		{`Logs\**\*.log`, win, []string{"Logs/a.log", "logs/x/y/A.LOG", "LOGS/20240723/a.Log"}, []string{"Other/a.log", "Logs/a.txt"}},
		{`**/*.LOG`, win, []string{"a.log", "x/Y/b.Log", "c.LOG"}, []string{"a.logx", "a.txt"}},
		{`**/*.log`, Options{FoldCase: true}, []string{"A.LOG", "x/a.Log"}, []string{"a.lo"}},
		{`**/*.log`, Options{}, []string{"a.log"}, []string{"A.LOG"}},
		{`**/*.ÄRG`, win, []string{"x/ä.ärg", "Ä.ÄRG"}, []string{"a.arg"}},
		{`app/[a-c]*.txt`, win, []string{"APP/B1.TXT", "app/a.txt"}, []string{"app/d.txt"}},
		{`{Sys,App}\*.evtx`, win, []string{"sys/x.EVTX", "APP/y.evtx"}, []string{"web/x.evtx"}},
		{`[[]x].log`, win, []string{"[x].log", "[X].LOG"}, []string{"x.log"}},
	}
	for _, c := range cases {
		p, err := CompileWith(c.pattern, c.opts)
		if err != nil {
			t.Fatalf("CompileWith(%q, %+v): %v", c.pattern, c.opts, err)
		}
		for _, s := range c.match {
			if !p.Match(s) {
				t.Errorf("%q %+v (%s) does not match %q", c.pattern, c.opts, p, s)
			}
		}
		for _, s := range c.miss {
			if p.Match(s) {
				t.Errorf("%q %+v (%s) matches %q", c.pattern, c.opts, p, s)
			}
		}
	}
}
