package rotsim

import (
	"bufio"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// pyWriter logs lines through a rotating handler of Python's logging, so
// rotation happens inside Python as in a real service. It reads commands
// on stdin and answers each with "ok LINES ROLLOVERS":
//
//	W START N   log lines START..START+N-1
//	R START     log lines from START until the handler rolls over (size);
//	            wait for the rollover time, then log one line (timed)
//
// The handler's own error handling would print a traceback and go on; here
// an error ends the process, so that the Go side sees it.
const pyWriter = `
import logging, logging.handlers, sys, time
kind, path, prefix, arg, backups = sys.argv[1:6]
if kind == 'size':
    h = logging.handlers.RotatingFileHandler(path, maxBytes=int(arg), backupCount=int(backups))
else:
    h = logging.handlers.TimedRotatingFileHandler(path, when='S', interval=int(arg), backupCount=int(backups))
rolls = 0
roll = h.doRollover
def counted():
    global rolls
    rolls += 1
    roll()
h.doRollover = counted
def fail(record):
    raise
h.handleError = fail
h.setFormatter(logging.Formatter('%(message)s'))
log = logging.getLogger('rotsim')
log.propagate = False
log.setLevel(logging.INFO)
log.addHandler(h)
def line(i):
    return '%s %06d the quick brown fox jumps over the lazy dog' % (prefix, i)
for cmd in sys.stdin:
    f = cmd.split()
    before, n = rolls, 0
    if f[0] == 'W':
        for i in range(int(f[1]), int(f[1]) + int(f[2])):
            log.info(line(i))
            n += 1
    elif f[0] == 'R':
        i = int(f[1])
        if kind == 'timed':
            d = h.rolloverAt - time.time()
            if d > 0:
                time.sleep(d)
        while rolls == before:
            log.info(line(i))
            i += 1
            n += 1
    print('ok', n, rolls - before, flush=True)
h.close()
`

// pyMaxBytes is RotatingFileHandler's maxBytes: 4 KiB, some 60 lines.
const pyMaxBytes = 4096

// python is a running pyWriter.
type python struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
	stderr *strings.Builder
	mu     sync.Mutex
}

func startPython(s Style, path, prefix, work string) (*python, error) {
	kind, arg := "size", strconv.Itoa(pyMaxBytes)
	if s.Writer == PythonTimed {
		kind, arg = "timed", "1"
	}
	cmd := exec.Command(Python3, "-u", "-c", pyWriter, kind, path, prefix, arg, strconv.Itoa(s.Keep))
	cmd.Dir = work
	p := &python{cmd: cmd, stderr: &strings.Builder{}}
	cmd.Stderr = &lockedWriter{w: p.stderr, mu: &p.mu}
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("rotsim: python3: %w", err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("rotsim: python3: %w", err)
	}
	p.stdout = bufio.NewReader(out)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("rotsim: start %s: %w", Python3, err)
	}
	return p, nil
}

// run sends one command and returns the lines logged and the rollovers.
func (p *python) run(cmd string) (lines, rollovers int, err error) {
	if _, err := io.WriteString(p.stdin, cmd+"\n"); err != nil {
		return 0, 0, fmt.Errorf("rotsim: python writer: %w%s", err, p.errors())
	}
	answer, err := p.stdout.ReadString('\n')
	if err != nil {
		return 0, 0, fmt.Errorf("rotsim: python writer: %q: %w%s", answer, err, p.errors())
	}
	if _, err := fmt.Sscanf(answer, "ok %d %d\n", &lines, &rollovers); err != nil {
		return 0, 0, fmt.Errorf("rotsim: python writer answered %q: %w%s", answer, err, p.errors())
	}
	return lines, rollovers, nil
}

// errors is what the writer printed on stderr, if anything, after a
// newline.
func (p *python) errors() string {
	time.Sleep(100 * time.Millisecond) // let a traceback arrive
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stderr.Len() == 0 {
		return ""
	}
	return "\n" + p.stderr.String()
}

// close ends the writer: EOF on stdin, at most 10 s to exit.
func (p *python) close() error {
	_ = p.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("rotsim: python writer: %w%s", err, p.errors())
		}
		return nil
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
		return fmt.Errorf("rotsim: python writer did not exit within 10s")
	}
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
