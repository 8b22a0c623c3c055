package httpview

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
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
	agent, rel, ok := archivePath(c)
	if !ok {
		return
	}
	if agent == "" || rel == "" || hidden(rel) || !s.viewerOf(c).can(fullPath(agent, rel), 'r') {
		apiError(c, http.StatusNotFound, "not found")
		return
	}
	if isGz(rel) {
		apiError(c, http.StatusBadRequest, "a compressed file is not tailed")
		return
	}
	off, _, ok := int64Param(c, "offset")
	if !ok {
		return
	}
	if id := c.GetHeader("Last-Event-ID"); id != "" {
		if n, err := strconv.ParseInt(id, 10, 64); err == nil && n >= 0 {
			off = n
		}
	}
	name := agent + "/" + rel
	if _, err := s.root.Stat(name); err != nil {
		apiError(c, http.StatusNotFound, "not found")
		return
	}
	h := c.Writer.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	c.Status(http.StatusOK)
	send := func(event string, id int64, v any) bool {
		b, _ := json.Marshal(v)
		var buf bytes.Buffer
		if id >= 0 {
			fmt.Fprintf(&buf, "id: %d\n", id)
		}
		fmt.Fprintf(&buf, "event: %s\ndata: %s\n\n", event, b)
		if _, err := c.Writer.Write(buf.Bytes()); err != nil {
			return false
		}
		c.Writer.Flush()
		return true
	}
	// "retry" sets how soon the browser reconnects after the stream ends.
	if _, err := c.Writer.Write([]byte("retry: 1000\n: tail " + strconv.FormatInt(off, 10) + "\n\n")); err != nil {
		return
	}
	c.Writer.Flush()

	ctx := c.Request.Context()
	poll := time.NewTicker(tailPoll)
	defer poll.Stop()
	lastWrite := time.Now()
	end := time.NewTimer(tailLifetime)
	defer end.Stop()
	buf := make([]byte, tailMaxChunk)
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.ui.closing:
			return
		case <-end.C:
			return
		case <-poll.C:
		}
		fi, err := s.root.Stat(name)
		if err != nil {
			continue // gone for a moment (being replaced): keep waiting
		}
		size := fi.Size()
		switch {
		case size < off:
			if !send("reset", -1, map[string]int64{"size": size}) {
				return
			}
			off = 0
			lastWrite = time.Now()
			continue
		case size-off > tailMaxBehind:
			next, err := s.lineAfter(name, size-tailMaxChunk)
			if err != nil {
				continue
			}
			off = next
			if !send("skip", off, map[string]int64{"offset": off}) {
				return
			}
			lastWrite = time.Now()
		}
		for size > off {
			n, err := s.readFileAt(name, buf, off)
			if err != nil || n == 0 {
				break
			}
			if n < len(buf) && bytes.IndexByte(buf[:n], '\n') < 0 {
				break // a line still being written
			}
			lines, offs, used, _ := splitLines(buf[:n], off, false)
			if !send("lines", off+int64(used), TailLines{Start: off, End: off + int64(used), Lines: lines, Offsets: offs}) {
				return
			}
			off += int64(used)
			lastWrite = time.Now()
		}
		if time.Since(lastWrite) > tailPing {
			if _, err := c.Writer.Write([]byte(": ping\n\n")); err != nil {
				return
			}
			c.Writer.Flush()
			lastWrite = time.Now()
		}
	}
}

// readFileAt reads archive file name (agent/rel) at off, through the root.
func (s *Server) readFileAt(name string, p []byte, off int64) (int, error) {
	f, err := s.root.Open(name)
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
