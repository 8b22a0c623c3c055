package logfmt

import (
	"strings"
	"testing"
	"time"
)

// ref is the mtime the RFC 3164 samples are read against.
var ref = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

// samples are files of each format, written from the formats'
// specifications and the programs' documented defaults; every line is
// checked, continuation lines included.
var samples = []struct {
	name   string
	format Format
	lines  []string
	want   []string // per line: "RFC3339 level", or "-" for a line without a time
}{
	{"rfc3339 with zone", ISO, []string{
		"2026-12-03T10:02:00Z INFO started",
		"2026-12-03T10:02:01.5+02:00 ERROR failed to open /var/x: permission denied",
		"2026-12-03T10:02:02.123456789-05:30 warn slow request",
	}, []string{"2026-12-03T10:02:00Z info", "2026-12-03T08:02:01.5Z error", "2026-12-03T15:32:02.123456789Z warn"}},
	{"iso without zone is UTC", ISO, []string{
		"2026-12-03 10:02:00 some message",
		"2026-12-03 10:02:01.250 DEBUG x=1",
	}, []string{"2026-12-03T10:02:00Z ", "2026-12-03T10:02:01.25Z debug"}},
	{"python logging default", ISO, []string{
		"2026-12-03 10:02:00,123 - myapp.db - WARNING - retrying connection",
		"2026-12-03 10:02:01,001 - myapp - ERROR - request failed",
		"Traceback (most recent call last):",
		`  File "/srv/app.py", line 12, in handler`,
		"    raise ValueError(\"bad\")",
		"ValueError: bad",
		"2026-12-03 10:02:02,500 - myapp - CRITICAL - giving up",
	}, []string{"2026-12-03T10:02:00.123Z warn", "2026-12-03T10:02:01.001Z error", "-", "-", "-", "-", "2026-12-03T10:02:02.5Z crit"}},
	{"log4j and logback", ISO, []string{
		"2026-12-03 10:02:00,123 [main] INFO  com.example.App - Starting",
		"2026-12-03 10:02:00.456 [http-nio-8080-exec-1] ERROR o.a.c.c.C.[Tomcat] - Servlet threw exception",
		"java.lang.NullPointerException: null",
		"\tat com.example.Handler.handle(Handler.java:42)",
		"\tat java.base/java.lang.Thread.run(Thread.java:833)",
		"Caused by: java.io.IOException: connection reset",
		"\t... 12 more",
		"2026-12-03T10:02:01,000 TRACE [worker-2] c.e.Poll - tick",
	}, []string{"2026-12-03T10:02:00.123Z info", "2026-12-03T10:02:00.456Z error", "-", "-", "-", "-", "-", "2026-12-03T10:02:01Z trace"}},
	{"go log and nginx error log", ISO, []string{
		"2026/12/03 10:02:00 listening on :8080",
		"2026/12/03 10:02:01 [error] 1234#1234: *5 open() \"/srv/x\" failed (2: No such file or directory)",
		"2026/12/03 10:02:02 [warn] 1234#1234: an upstream response is buffered",
	}, []string{"2026-12-03T10:02:00Z ", "2026-12-03T10:02:01Z error", "2026-12-03T10:02:02Z warn"}},
	{"syslog rfc3164 as rsyslog writes files", Syslog3164, []string{
		"Dec  3 10:02:00 node17 sshd[811]: Accepted publickey for ops from 10.0.0.5 port 51234",
		"Dec  3 10:02:01 node17 kernel: [12345.678] ERROR: I/O error, dev sda, sector 0",
		"Dec 13 10:02:02 node17 app: starting",
	}, []string{"2026-12-03T10:02:00Z ", "2026-12-03T10:02:01Z error", "2025-12-13T10:02:02Z "}},
	{"syslog rfc3164 with PRI", Syslog3164, []string{
		"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
		"<13>Feb  5 17:32:18 10.0.0.99 myproc[10]: hello",
	}, []string{"2026-10-11T22:14:15Z crit", "2026-02-05T17:32:18Z notice"}},
	{"syslog rfc5424", Syslog5424, []string{
		"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - BOM'su root' failed for lonvick on /dev/pts/8",
		"<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
		"<11>1 2003-10-11T22:14:16Z host app - - [exampleSDID@32473 iut=\"3\"] disk full",
	}, []string{"2003-10-11T22:14:15.003Z crit", "2003-08-24T12:14:15.000003Z notice", "2003-10-11T22:14:16Z error"}},
	{"apache common", CLF, []string{
		`127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326`,
		`10.0.0.2 - - [10/Oct/2000:13:55:37 -0700] "GET /missing HTTP/1.1" 404 0`,
	}, []string{"2000-10-10T20:55:36Z info", "2000-10-10T20:55:37Z warn"}},
	{"nginx combined", CLF, []string{
		`192.0.2.7 - - [03/Dec/2026:10:02:00 +0000] "POST /api HTTP/1.1" 502 157 "-" "curl/8.5.0"`,
		`192.0.2.7 - alice [03/Dec/2026:10:02:01 +0100] "GET / HTTP/2.0" 200 612 "https://example.com/" "Mozilla/5.0 (X11; Linux x86_64)"`,
	}, []string{"2026-12-03T10:02:00Z error", "2026-12-03T09:02:01Z info"}},
	{"go slog text", KV, []string{
		`time=2026-12-03T10:02:00.000+00:00 level=INFO msg="server started" addr=:8080`,
		`time=2026-12-03T10:02:01.500Z level=ERROR msg="upload failed" err="disk full"`,
		`time=2026-12-03T11:02:02.000+01:00 level=WARN+2 msg=x`,
	}, []string{"2026-12-03T10:02:00Z info", "2026-12-03T10:02:01.5Z error", "2026-12-03T10:02:02Z "}},
	{"logfmt", KV, []string{
		`ts=2026-12-03T10:02:00Z caller=main.go:12 level=debug msg="loaded config"`,
		`level=warn ts=2026-12-03T10:02:01.25Z msg="queue high"`,
		`t=2026-12-03T10:02:02+0000 lvl=eror msg="db down"`,
	}, []string{"2026-12-03T10:02:00Z debug", "2026-12-03T10:02:01.25Z warn", "2026-12-03T10:02:02Z error"}},
	{"json lines", JSON, []string{
		`{"time":"2026-12-03T10:02:00Z","level":"INFO","msg":"ok"}`,
		`{"level":"error","ts":1796292121.5,"caller":"x.go:1","msg":"zap says no"}`,
		`{"msg":"nested {\"time\":\"1999-01-01T00:00:00Z\"}","attrs":{"time":"1999"},"@timestamp":"2026-12-03T10:02:02.000Z","log.level":"warn"}`,
		`{"level":50,"time":1796292123000,"msg":"pino error"}`,
		`{"msg":"no time here"}`,
	}, []string{"2026-12-03T10:02:00Z info", "2026-12-03T10:02:01.5Z error", "2026-12-03T10:02:02Z warn", "2026-12-03T10:02:03Z error", "-"}},
}

func TestDetectAndParse(t *testing.T) {
	for _, s := range samples {
		t.Run(s.name, func(t *testing.T) {
			p := Detect([]byte(strings.Join(s.lines, "\n")+"\n"), Options{Ref: ref})
			if p.Format() != s.format {
				t.Fatalf("Detect = %v, want %v", p.Format(), s.format)
			}
			for i, line := range s.lines {
				tm, lvl, ok := p.Parse([]byte(line))
				got := "-"
				if ok {
					got = tm.UTC().Format(time.RFC3339Nano) + " " + lvl.String()
				}
				if got != s.want[i] {
					t.Errorf("line %d %q:\n got %s\nwant %s", i+1, line, got, s.want[i])
				}
			}
		})
	}
}

func TestZoneOption(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	p := NewParser(ISO, Options{Location: ny})
	tm, ok := p.Time([]byte("2026-12-03 10:00:00 x"))
	if !ok || !tm.Equal(utc("2026-12-03T15:00:00Z")) {
		t.Fatalf("zone-less time in New York = %v %v, want 15:00 UTC", tm, ok)
	}
	tm, ok = p.Time([]byte("2026-12-03T10:00:00Z x"))
	if !ok || !tm.Equal(utc("2026-12-03T10:00:00Z")) {
		t.Fatalf("a time with a zone keeps it: %v", tm)
	}
}

func TestNotTimes(t *testing.T) {
	p := NewParser(ISO, Options{})
	for _, l := range []string{"", "2026-13-01 10:00:00 x", "2026-02-30 10:00:00 x", "2026-12-03 25:00:00", "2026-12-03T10:00:00Zulu", "hello 2026-12-03 10:00:00", "2026-12-03"} {
		if tm, _, ok := p.Parse([]byte(l)); ok {
			t.Errorf("%q parsed as %v", l, tm)
		}
	}
	if f := Detect([]byte("just text\nmore text\n"), Options{}).Format(); f != Unknown {
		t.Errorf("text without times detected as %v", f)
	}
}

func TestLevels(t *testing.T) {
	for in, want := range map[string]Level{"ERROR": LevelError, "warning": LevelWarn, "Fatal": LevelCrit, "notice": LevelNotice, "x": LevelNone, "": LevelNone} {
		if got, _ := ParseLevel(in); got != want {
			t.Errorf("ParseLevel(%q) = %v, want %v", in, got, want)
		}
	}
	if !LevelError.AtLeast(LevelWarn) || LevelInfo.AtLeast(LevelWarn) || LevelNone.AtLeast(LevelTrace) {
		t.Error("AtLeast does not order levels by severity")
	}
	// A level word later in the message, in lower case, is not a level.
	p := NewParser(ISO, Options{})
	if _, lvl, _ := p.Parse([]byte("2026-12-03T10:00:00Z client got connection error")); lvl != LevelNone {
		t.Errorf("message word taken for a level: %v", lvl)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range samples {
		for _, l := range s.lines {
			f.Add([]byte(l))
		}
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		for fm := Unknown; fm <= JSON; fm++ {
			p := NewParser(fm, Options{Ref: ref})
			tm, lvl, ok := p.Parse(line)
			if !ok && (!tm.IsZero() || lvl != LevelNone) {
				t.Fatalf("%v: no time but %v %v", fm, tm, lvl)
			}
			if lvl > LevelTrace {
				t.Fatalf("%v: level %d out of range", fm, lvl)
			}
		}
		Detect(line, Options{})
	})
}

// BenchmarkParse is the cost the index pays per line of an appended log
// (store keeps each file's first and last time).
func BenchmarkParse(b *testing.B) {
	for _, s := range samples {
		p := NewParser(s.format, Options{Ref: ref})
		line := []byte(s.lines[0])
		b.Run(s.format.String()+"/"+s.name, func(b *testing.B) {
			b.SetBytes(int64(len(line) + 1))
			for b.Loop() {
				p.Parse(line)
			}
		})
	}
}
