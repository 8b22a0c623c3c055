package ftpfs

import (
	"io"
	"net"
	"sync"
	"time"
)

// maxWriteChunk bounds one Write on the wire so that the idle deadline
// measures silence, not the time a large buffer takes on a slow link.
const maxWriteChunk = 32 << 10

// idleConn is a net.Conn whose deadline is pushed forward before every Read
// and every Write: a connection may stay open for hours as long as bytes keep
// moving, but a peer that goes silent for longer than timeout makes the
// blocked call fail with a timeout (os.ErrDeadlineExceeded). jlaffaye/ftp's
// own timeouts are fixed deadlines or apply to dialing only, so without this
// a server that stalls mid-transfer would hang the agent for ever.
type idleConn struct {
	net.Conn
	timeout time.Duration

	closeOnce sync.Once
	closeErr  error
	onClose   func(*idleConn)
}

// newIdleConn wraps c. timeout <= 0 disables the deadline. onClose, if not
// nil, is called once when the connection is closed.
func newIdleConn(c net.Conn, timeout time.Duration, onClose func(*idleConn)) *idleConn {
	return &idleConn{Conn: c, timeout: timeout, onClose: onClose}
}

// Read implements net.Conn, allowing at most timeout of silence.
func (c *idleConn) Read(p []byte) (int, error) {
	if c.timeout > 0 {
		if err := c.Conn.SetReadDeadline(time.Now().Add(c.timeout)); err != nil {
			return 0, err
		}
	}
	return c.Conn.Read(p)
}

// Write implements net.Conn, in chunks of at most maxWriteChunk, each of
// which must make progress within timeout.
func (c *idleConn) Write(p []byte) (int, error) {
	if c.timeout <= 0 {
		return c.Conn.Write(p)
	}
	written := 0
	for len(p) > 0 {
		chunk := p
		if len(chunk) > maxWriteChunk {
			chunk = chunk[:maxWriteChunk]
		}
		if err := c.Conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
			return written, err
		}
		n, err := c.Conn.Write(chunk)
		written += n
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

// Close implements net.Conn; it is safe to call more than once and from
// another goroutine (that is how a cancelled context aborts a transfer).
func (c *idleConn) Close() error {
	c.closeOnce.Do(func() {
		c.closeErr = c.Conn.Close()
		if c.onClose != nil {
			c.onClose(c)
		}
	})
	return c.closeErr
}

// countingSource feeds StorFrom. io.Copy uses its WriteTo, so the copy
// goes through one buffer of UploadBufferSize and n counts exactly the
// bytes the data connection accepted.
type countingSource struct {
	r io.Reader
	n int64
}

func (s *countingSource) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.n += int64(n)
	if err != nil && err != io.EOF {
		err = &localError{op: "read source", err: err}
	}
	return n, err
}

func (s *countingSource) WriteTo(w io.Writer) (int64, error) {
	buf := make([]byte, UploadBufferSize)
	var total int64
	for {
		n, rerr := s.r.Read(buf)
		if n > 0 {
			m, werr := w.Write(buf[:n])
			total += int64(m)
			s.n += int64(m)
			if werr != nil {
				return total, werr
			}
			if m != n {
				return total, io.ErrShortWrite
			}
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, &localError{op: "read source", err: rerr}
		}
	}
}

// countingSink counts what Retrieve delivered and marks the writer's errors
// as local.
type countingSink struct {
	w io.Writer
	n int64
}

func (s *countingSink) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	s.n += int64(n)
	if err != nil {
		err = &localError{op: "write destination", err: err}
	}
	return n, err
}
