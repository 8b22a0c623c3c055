package rotsim

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Options adjust a Workload.
type Options struct {
	// Name is the live log's file name in the log directory; default
	// "app.log". It must end in ".log".
	Name string
	// Prefix starts every line; default the style's name. Workloads whose
	// lines meet in one archive need different prefixes.
	Prefix string
}

// Workload is one log in a directory, written by its style's writer and
// rotated on demand. Its methods are safe for concurrent use; Write and
// Rotate are serialised, except with NginxAccess, where requests go on
// while logrotate renames the log (as with a real server under load).
type Workload struct {
	style  Style
	dir    string
	path   string // the live log
	work   string // private: logrotate config and state, nginx prefix
	prefix string

	op sync.Mutex // serialises Write and Rotate (not for NginxAccess)

	mu         sync.Mutex // guards the fields below
	lines      []string
	bytes      int64
	rotations  int
	lastRotate time.Time
	closed     bool

	py *python
	ng *nginx
}

// New prepares a Workload writing dir/Options.Name in style s and starts
// its writer (python3, nginx); nothing is written yet. dir must exist.
// Close stops the writer and removes the Workload's private files.
func New(dir string, s Style, o Options) (*Workload, error) {
	if err := s.Check(); err != nil {
		return nil, err
	}
	if o.Name == "" {
		o.Name = "app.log"
	}
	if o.Prefix == "" {
		o.Prefix = s.Name
	}
	if !strings.HasSuffix(o.Name, ".log") || strings.ContainsAny(o.Name, "/\\") {
		return nil, fmt.Errorf("rotsim: log name %q: want a file name ending in .log", o.Name)
	}
	if strings.ContainsAny(o.Prefix, " \n\r\t/?#%") {
		return nil, fmt.Errorf("rotsim: prefix %q: no spaces, slashes or URL syntax", o.Prefix)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("rotsim: %w", err)
	}
	work, err := os.MkdirTemp("", "rotsim-"+s.Name+"-")
	if err != nil {
		return nil, fmt.Errorf("rotsim: %w", err)
	}
	w := &Workload{style: s, dir: dir, path: filepath.Join(dir, o.Name), work: work, prefix: o.Prefix}
	if err := w.start(); err != nil {
		_ = w.Close()
		return nil, err
	}
	return w, nil
}

func (w *Workload) start() error {
	if w.style.OldDir != "" {
		if err := os.MkdirAll(filepath.Join(w.dir, w.style.OldDir), 0o755); err != nil {
			return fmt.Errorf("rotsim: %w", err)
		}
	}
	switch w.style.Writer {
	case Appender:
		if err := writeFile(w.config(), w.style.logrotateConfig(w.path, "")); err != nil {
			return err
		}
		if w.style.maxSize > 0 {
			// An unforced run records the log in the state file; from
			// then on logrotate rotates it when it outgrows maxsize.
			return w.logrotate(false)
		}
	case PythonSize, PythonTimed:
		py, err := startPython(w.style, w.path, w.prefix, w.work)
		if err != nil {
			return err
		}
		w.py = py
	case NginxAccess:
		ng, err := startNginx(w.path, w.prefix, w.work)
		if err != nil {
			return err
		}
		w.ng = ng
		post := ""
		if !strings.Contains(w.style.Directives, "copytruncate") {
			post = fmt.Sprintf("kill -USR1 $(cat %q)", ng.pidFile)
		}
		if err := writeFile(w.config(), w.style.logrotateConfig(w.path, post)); err != nil {
			return err
		}
	}
	return nil
}

// Style is the Workload's style.
func (w *Workload) Style() Style { return w.style }

// Path is the live log's path.
func (w *Workload) Path() string { return w.path }

// Write appends n new lines to the live log through the style's writer and
// returns when they are in the file (a Python handler may roll over on the
// way, as it would in real life; Rotations counts it).
func (w *Workload) Write(n int) error {
	if w.style.Writer != NginxAccess {
		w.op.Lock()
		defer w.op.Unlock()
	}
	if err := w.usable(); err != nil {
		return err
	}
	switch w.style.Writer {
	case PythonSize, PythonTimed:
		return w.pyRun(fmt.Sprintf("W %d %d", w.next(), n))
	case NginxAccess:
		return w.ng.request(n, w.record)
	}
	return w.appendLines(n)
}

// appendLines is Write for Appender: open, append, close.
func (w *Workload) appendLines(n int) error {
	lines := make([]string, n)
	var b strings.Builder
	start := w.next()
	for i := range lines {
		lines[i] = lineText(w.prefix, start+i)
		b.WriteString(lines[i] + "\n")
	}
	f, err := os.OpenFile(w.path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("rotsim: write: %w", err)
	}
	_, err = f.WriteString(b.String())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("rotsim: write %s: %w", w.path, err)
	}
	w.record(lines...)
	return nil
}

// Rotate makes the writer or logrotate rotate the log once, as it would
// on its own: logrotate -f with the private configuration and state file;
// for maxsize, lines appended until the log outgrows it and an unforced
// logrotate; for RotatingFileHandler, lines logged until it rolls over;
// for TimedRotatingFileHandler, a wait for the next second and one line.
// Lines written on the way are recorded like Write's. Styles whose rotated
// names carry the time wait until the second after the previous rotation.
func (w *Workload) Rotate() error {
	if w.style.Writer != NginxAccess {
		w.op.Lock()
		defer w.op.Unlock()
	}
	if err := w.usable(); err != nil {
		return err
	}
	if w.style.perSecond && w.style.Writer == Appender {
		w.mu.Lock()
		last := w.lastRotate
		w.mu.Unlock()
		// Polled: a sleep runs on the monotonic clock, the names on the
		// wall clock. logrotate reads time(2), a coarse clock that may lag
		// a tick (some ms) behind time.Now: hence the margin.
		for time.Now().Add(-50*time.Millisecond).Unix() <= last.Unix() {
			time.Sleep(10 * time.Millisecond)
		}
	}
	var err error
	switch w.style.Writer {
	case PythonSize, PythonTimed:
		err = w.pyRun(fmt.Sprintf("R %d", w.next()))
	case NginxAccess:
		err = w.rotateNginx()
	default:
		err = w.rotateAppender()
	}
	if err != nil {
		return err
	}
	w.mu.Lock()
	w.lastRotate = time.Now()
	if w.style.Writer == Appender || w.style.Writer == NginxAccess {
		w.rotations++
	}
	w.mu.Unlock()
	return nil
}

func (w *Workload) rotateAppender() error {
	if w.style.maxSize > 0 {
		for {
			fi, err := os.Stat(w.path)
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("rotsim: %w", err)
			}
			if err == nil && fi.Size() > w.style.maxSize {
				break
			}
			if err := w.appendLines(8); err != nil {
				return err
			}
		}
	}
	if err := w.logrotate(w.style.maxSize == 0); err != nil {
		return err
	}
	// Nothing writes while logrotate runs, so the live log is new or
	// truncated now; anything else means logrotate did not rotate it.
	if fi, err := os.Stat(w.path); err != nil || fi.Size() != 0 {
		return fmt.Errorf("rotsim: logrotate left %s unrotated (%v)", w.path, err)
	}
	return nil
}

func (w *Workload) rotateNginx() error {
	if err := w.logrotate(true); err != nil {
		return err
	}
	if strings.Contains(w.style.Directives, "copytruncate") {
		return nil // nginx writes on to the same file
	}
	// logrotate does not wait for nginx to reopen its log; Rotate does,
	// so that the lines of later requests go to the new file.
	if err := w.ng.waitReopened(w.path, 10*time.Second, w.record); err != nil {
		return err
	}
	return nil
}

// config is the private logrotate configuration file.
func (w *Workload) config() string { return filepath.Join(w.work, "logrotate.conf") }

// logrotate runs logrotate on the private configuration and state file.
func (w *Workload) logrotate(force bool) error {
	args := []string{"-s", filepath.Join(w.work, "logrotate.state"), w.config()}
	if force {
		args = append([]string{"-f"}, args...)
	}
	out, err := exec.Command(Logrotate, args...).CombinedOutput()
	if err != nil || len(out) > 0 {
		return fmt.Errorf("rotsim: logrotate %s: %v %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// pyRun sends one command to the Python writer and records what it logged.
func (w *Workload) pyRun(cmd string) error {
	start := w.next()
	n, rolls, err := w.py.run(cmd)
	if err != nil {
		return err
	}
	lines := make([]string, n)
	for i := range lines {
		lines[i] = lineText(w.prefix, start+i)
	}
	w.record(lines...)
	w.mu.Lock()
	w.rotations += rolls
	w.mu.Unlock()
	return nil
}

// next is the number of the next line.
func (w *Workload) next() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.lines)
}

// record notes lines as written.
func (w *Workload) record(lines ...string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lines = append(w.lines, lines...)
	for _, l := range lines {
		w.bytes += int64(len(l)) + 1
	}
}

func (w *Workload) usable() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return errors.New("rotsim: workload closed")
	}
	return nil
}

// Lines returns every line written so far, in order, without newlines.
// With nginx-copytruncate under concurrent requests, logrotate itself
// loses the lines nginx writes between its copy and its truncate; the
// node's disk (LinesOnDisk) is then the reference, not Lines.
func (w *Workload) Lines() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.lines...)
}

// BytesWritten is the size of every line written so far, newlines
// included: what an agent has to send to archive them all once.
func (w *Workload) BytesWritten() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.bytes
}

// Rotations counts the rotations so far, Rotate's and those the writer made
// by itself (a Python handler rolling over during Write).
func (w *Workload) Rotations() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.rotations
}

// Close stops the writer (python3 exits, nginx quits gracefully) and
// removes the private files; the logs stay. Lines, BytesWritten and
// Rotations keep working.
func (w *Workload) Close() error {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	var errs []error
	if w.py != nil {
		errs = append(errs, w.py.close())
	}
	if w.ng != nil {
		errs = append(errs, w.ng.close())
	}
	errs = append(errs, os.RemoveAll(w.work))
	return errors.Join(errs...)
}

// lineText is line number i of a workload. Python's writer makes the same
// text (see pyWriter).
func lineText(prefix string, i int) string {
	return fmt.Sprintf("%s %06d the quick brown fox jumps over the lazy dog", prefix, i)
}
