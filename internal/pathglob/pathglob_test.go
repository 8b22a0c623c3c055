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
