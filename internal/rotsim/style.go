// Package rotsim runs real rotating writers for tests and benchmarks: a
// log appended to and rotated by Debian's logrotate with its real
// configurations, Python's logging.handlers.RotatingFileHandler and
// TimedRotatingFileHandler rotating inside a python3 process, and nginx's
// access log rotated by logrotate and reopened on SIGUSR1. Every line
// written is numbered and unique, so that Tally can tell, line by line,
// whether an archive holds each exactly once.
//
// A Workload keeps its own files (logrotate's configuration and state,
// nginx's prefix, pid file and error log) in a private directory outside
// the log directory, so an agent archiving the log directory sees only the
// logs. The programs are the system's (Logrotate, Python3, Nginx); Style's
// Check says which one is missing.
package rotsim

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// The programs a Workload runs. Python3 is Debian's, not the first python3
// on PATH (a pyenv one may come first there).
var (
	Logrotate = "/usr/sbin/logrotate"
	Python3   = "/usr/bin/python3"
	Nginx     = "/usr/sbin/nginx"
)

// Writer is the program that writes a style's log.
type Writer int

const (
	// Appender: the Workload appends lines itself (open, append, close),
	// as a program that opens its log per write does; logrotate rotates.
	Appender Writer = iota
	// PythonSize: logging.handlers.RotatingFileHandler in a python3 child.
	PythonSize
	// PythonTimed: logging.handlers.TimedRotatingFileHandler (when='S')
	// in a python3 child.
	PythonTimed
	// NginxAccess: nginx's access log, one line per HTTP request the
	// Workload makes; logrotate rotates it (with create, its postrotate
	// sends nginx SIGUSR1 to reopen the log).
	NginxAccess
)

// Style is one way real software writes and rotates a log.
type Style struct {
	// Name is short and fit for a test name: "create", "python-size".
	Name string
	// Writer is the program that writes the log.
	Writer Writer
	// Includes are the --include patterns, relative to the agent's --dir,
	// that match the rotated names (the live log is matched by the
	// default '**/*.log').
	Includes []string
	// OldDir, when not empty, is the directory (relative to the log's
	// directory) that rotated logs move to: the agent needs --olddir.
	OldDir string
	// Compressed: rotated generations end up gzipped (*.gz).
	Compressed bool
	// Keep is how many rotated generations exist before the oldest is
	// deleted: a caller that wants every line archived pushes at least
	// once every Keep rotations.
	Keep int
	// Directives are the logrotate directives of the style's stanza, one
	// a line (Appender and NginxAccess; empty for the Python handlers);
	// "rotate Keep" and "missingok" are added.
	Directives string

	// maxSize > 0: logrotate runs unforced, after the log has grown past
	// maxSize bytes (its "maxsize" directive decides).
	maxSize int64
	// perSecond: rotated names carry the time to the second, so two
	// rotations must fall in different seconds.
	perSecond bool
}

var (
	numbered   = []string{"**/*.log.[0-9]", "**/*.log.[0-9][0-9]"}
	compressed = append(numbered[:2:2], "**/*.gz")
)

// Styles lists every style: logrotate's create (rotate 5), copytruncate,
// compress with and without delaycompress, dateext, olddir and maxsize;
// Python's RotatingFileHandler (backupCount 5) and
// TimedRotatingFileHandler; nginx's access log rotated by logrotate with
// create and SIGUSR1, and with copytruncate (which loses the lines nginx
// writes between logrotate's copy and its truncate: under concurrent
// requests, compare an archive with the node's disk, not with Lines).
func Styles() []Style {
	return []Style{
		{Name: "create", Writer: Appender, Includes: numbered, Keep: 5, Directives: "create"},
		{Name: "copytruncate", Writer: Appender, Includes: numbered, Keep: 5, Directives: "copytruncate"},
		{Name: "delaycompress", Writer: Appender, Includes: compressed, Compressed: true, Keep: 12,
			Directives: "create\ncompress\ndelaycompress"},
		{Name: "compress", Writer: Appender, Includes: compressed, Compressed: true, Keep: 12,
			Directives: "create\ncompress"},
		{Name: "dateext", Writer: Appender, Includes: []string{"**/*.log-[0-9]*"}, Keep: 10, perSecond: true,
			Directives: "create\ndateext\ndateformat -%Y%m%d-%s"},
		{Name: "olddir", Writer: Appender, Includes: numbered, OldDir: "old", Keep: 30,
			Directives: "create\nolddir old"},
		{Name: "maxsize", Writer: Appender, Includes: numbered, Keep: 30, maxSize: 2048,
			Directives: "daily\nmaxsize 2k\ncreate"},
		{Name: "python-size", Writer: PythonSize, Includes: []string{"**/*.log.[0-9]"}, Keep: 5},
		{Name: "python-timed", Writer: PythonTimed, Includes: []string{"**/*.log.[0-9][0-9][0-9][0-9]-*"}, Keep: 5,
			perSecond: true},
		{Name: "nginx", Writer: NginxAccess, Includes: numbered, Keep: 100, Directives: "create"},
		{Name: "nginx-copytruncate", Writer: NginxAccess, Includes: numbered, Keep: 100, Directives: "copytruncate"},
	}
}

// Lookup returns the style named name.
func Lookup(name string) (Style, bool) {
	for _, s := range Styles() {
		if s.Name == name {
			return s, true
		}
	}
	return Style{}, false
}

// Check returns an error naming the program the style needs that is not
// installed here, or nil.
func (s Style) Check() error {
	var need []string
	switch s.Writer {
	case Appender:
		need = []string{Logrotate}
	case PythonSize, PythonTimed:
		need = []string{Python3}
	case NginxAccess:
		need = []string{Logrotate, Nginx}
	}
	if s.Compressed {
		need = append(need, "gzip")
	}
	for _, p := range need {
		if _, err := exec.LookPath(p); err != nil {
			return fmt.Errorf("rotsim: style %s needs %s: %w", s.Name, p, err)
		}
	}
	return nil
}

// logrotateConfig is the stanza for the log at path.
func (s Style) logrotateConfig(path, postrotate string) string {
	c := fmt.Sprintf("%q {\n    rotate %d\n    missingok\n", path, s.Keep)
	for _, l := range strings.Split(s.Directives, "\n") {
		c += "    " + l + "\n"
	}
	if postrotate != "" {
		c += "    postrotate\n        " + postrotate + "\n    endscript\n"
	}
	return c + "}\n"
}

// writeFile writes a private file of the Workload.
func writeFile(path, content string) error {
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		return fmt.Errorf("rotsim: %w", err)
	}
	return nil
}
