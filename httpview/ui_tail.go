package httpview

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/syncer-dev/syncer/internal/logfmt"
)

// Live tail pacing and bounds.
const (
	tailPoll = 250 * time.Millisecond
	tailPing = 15 * time.Second
	// tailMaxChunk bounds one event; tailMaxBehind is how far the stream
	// may fall behind before it skips ahead (a tail shows the end of a
	// log, not a replay of a gigabyte pushed at once).
	tailMaxChunk  = 256 << 10
	tailMaxBehind = 4 << 20
	// tailLifetime ends a stream now and then; EventSource reconnects by
	// itself, from the last event's id (the offset).
	tailLifetime = 10 * time.Minute
)

// TailLines is the data of a "lines" event of /api/v1/tail.
type TailLines struct {
	Start int64    `json:"start"`
	End   int64    `json:"end"`
	Lines []string `json:"lines"`
	// Offsets holds where each line starts.
	Offsets []int64 `json:"offsets"`
	// Levels as in LinesJSON.
	Levels []string `json:"levels,omitempty"`
	// Size and Mtime are the file's when the lines were read, for the
	// page's header.
	Size  int64     `json:"size"`
	Mtime time.Time `json:"mtime"`
}

// apiTail answers GET /api/v1/tail/{agent}/{path}?offset=O with
// server-sent events following the file as it grows: "lines" events
// (TailLines, whole lines from O on; the event id is the offset after
// them, so a reconnecting EventSource resumes where it was), "skip"
// ({"offset": N}) when it fell too far behind, and "reset" ({"size": N})
// when the file became shorter than the offset (rewritten: the old bytes
// are a version now). The file is read from the disk, so appends show as
// the FTP server writes them, before the index has seen them.
func (s *Server) apiTail(c *gin.Context) {
	t := &tailStream{s: s, c: c}
	if !t.open() || !t.start() {
		return
	}
	t.follow()
}

// tailStream is one GET /api/v1/tail: the file it follows, how far it has
// sent it, and the event stream it writes.
type tailStream struct {
	s    *Server
	c    *gin.Context
	name string // agent/rel, through s.root
	off  int64  // the offset sent up to
	// lastWrite is when the stream was last written to, for the pings.
	lastWrite time.Time
	buf       []byte
	parser    *logfmt.Parser // the file's format, detected from its head
}

// open reads the file and the offset of the request; when the file
// cannot be tailed it answers with an error and returns false.
func (t *tailStream) open() bool {
	c := t.c
	agent, rel, ok := archivePath(c)
	if !ok {
		return false
	}
	if agent == "" || rel == "" || hidden(rel) || !t.s.viewerOf(c).can(fullPath(agent, rel), 'r') {
		apiError(c, http.StatusNotFound, "not found")
		return false
	}
	if isGz(rel) {
		apiError(c, http.StatusBadRequest, "a compressed file is not tailed")
		return false
	}
	if t.off, _, ok = int64Param(c, "offset"); !ok {
		return false
	}
	if id := c.GetHeader("Last-Event-ID"); id != "" {
		if n, err := strconv.ParseInt(id, 10, 64); err == nil && n >= 0 {
			t.off = n
		}
	}
	t.name = agent + "/" + rel
	if _, err := t.s.root.Stat(t.name); err != nil {
		apiError(c, http.StatusNotFound, "not found")
		return false
	}
	return true
}

// start begins the event stream; it returns false if the client is gone.
func (t *tailStream) start() bool {
	h := t.c.Writer.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	t.c.Status(http.StatusOK)
	// "retry" sets how soon the browser reconnects after the stream ends.
	if _, err := t.c.Writer.Write([]byte("retry: 1000\n: tail " + strconv.FormatInt(t.off, 10) + "\n\n")); err != nil {
		return false
	}
	t.c.Writer.Flush()
	return true
}

// follow polls the file until the client goes away, the server closes,
// or the stream's lifetime ends.
func (t *tailStream) follow() {
	ctx := t.c.Request.Context()
	poll := time.NewTicker(tailPoll)
	defer poll.Stop()
	t.lastWrite = time.Now()
	end := time.NewTimer(tailLifetime)
	defer end.Stop()
	t.buf = make([]byte, tailMaxChunk)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.s.ui.closing:
			return
		case <-end.C:
			return
		case <-poll.C:
		}
		if !t.poll() {
			return
		}
	}
}

// poll sends what changed in the file since the last poll: a reset, a
// skip, new lines, or a ping when nothing was sent for a while. It
// returns false when the client is gone.
func (t *tailStream) poll() bool {
	fi, err := t.s.root.Stat(t.name)
	if err != nil {
		return true // gone for a moment (being replaced): keep waiting
	}
	size := fi.Size()
	switch {
	case size < t.off:
		if !t.send("reset", -1, map[string]int64{"size": size}) {
			return false
		}
		t.off = 0
		t.lastWrite = time.Now()
		return true
	case size-t.off > tailMaxBehind:
		next, err := t.s.lineAfter(t.name, size-tailMaxChunk)
		if err != nil {
			return true
		}
		t.off = next
		if !t.send("skip", t.off, map[string]int64{"offset": t.off}) {
			return false
		}
		t.lastWrite = time.Now()
	}
	if !t.sendLines(size, fi.ModTime()) {
		return false
	}
	if time.Since(t.lastWrite) > tailPing {
		if _, err := t.c.Writer.Write([]byte(": ping\n\n")); err != nil {
			return false
		}
		t.c.Writer.Flush()
		t.lastWrite = time.Now()
	}
	return true
}

// sendLines sends the whole lines from the offset up to size, in events
// of at most tailMaxChunk bytes; it returns false when the client is gone.
func (t *tailStream) sendLines(size int64, mtime time.Time) bool {
	for size > t.off {
		n, err := t.s.readFileAt(t.name, t.buf, t.off)
		if err != nil || n == 0 {
			break
		}
		if n < len(t.buf) && bytes.IndexByte(t.buf[:n], '\n') < 0 {
			break // a line still being written
		}
		lines, offs, used, _ := splitLines(t.buf[:n], t.off, false)
		if t.parser == nil || t.parser.Format() == logfmt.Unknown {
			head := make([]byte, levelHead)
			hn, _ := t.s.readFileAt(t.name, head, 0)
			t.parser = logfmt.Detect(head[:hn], logfmt.Options{Ref: mtime})
		}
		tl := TailLines{Start: t.off, End: t.off + int64(used), Lines: lines, Offsets: offs,
			Levels: lineLevels(t.parser, lines), Size: size, Mtime: mtime.UTC()}
		if !t.send("lines", t.off+int64(used), tl) {
			return false
		}
		t.off += int64(used)
		t.lastWrite = time.Now()
	}
	return true
}

// send writes one event (with an id unless id is negative); it returns
// false when the client is gone.
func (t *tailStream) send(event string, id int64, v any) bool {
	b, _ := json.Marshal(v)
	var buf bytes.Buffer
	if id >= 0 {
		fmt.Fprintf(&buf, "id: %d\n", id)
	}
	fmt.Fprintf(&buf, "event: %s\ndata: %s\n\n", event, b)
	if _, err := t.c.Writer.Write(buf.Bytes()); err != nil {
		return false
	}
	t.c.Writer.Flush()
	return true
}

// readFileAt reads archive file name (agent/rel) at off, through the root.
func (s *Server) readFileAt(name string, p []byte, off int64) (int, error) {
	agent, rel, _ := strings.Cut(name, "/")
	f, _, err := s.openArchived(agent, rel)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n, err := f.ReadAt(p, off)
	if n > 0 {
		return n, nil
	}
	return 0, err
}

// lineAfter returns the offset just after the first newline at or after
// off (off itself if none is near).
func (s *Server) lineAfter(name string, off int64) (int64, error) {
	buf := make([]byte, tailMaxChunk)
	n, err := s.readFileAt(name, buf, off-1)
	if err != nil {
		return 0, err
	}
	if i := bytes.IndexByte(buf[:n], '\n'); i >= 0 {
		return off + int64(i), nil
	}
	return off, nil
}
