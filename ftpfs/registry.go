package ftpfs

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"github.com/syncer-dev/syncer/ftpfs/activity"
)

// session is the server's view of one control connection, from accept to
// ClientDisconnected.
type session struct {
	conn        *trackedConn
	connectedAt time.Time
	ip          string // the client's address, as the defender names it

	// closing is set once the server has decided to close the session:
	// it no longer counts against the connection caps.
	closing  atomic.Bool
	lastWork atomic.Int64 // UnixNano of the last login, work command or transfer

	mu        sync.Mutex
	id        uint32
	cc        ftpserver.ClientContext
	user      string
	loginAt   time.Time
	tlsConn   *tls.Conn
	tlsb      *tlsBinding // made at AUTH TLS: binds data connections to the control connection's TLS session
	handler   *handler
	transfers map[*transfer]struct{}

	bytesIn, bytesOut atomic.Int64
}

func (s *session) userName() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.user
}

// kill closes the control connection underneath ftpserverlib. Its command
// loop then ends and closes any data connection, which ends a transfer
// blocked reading from a silent client. Safe to call more than once.
func (s *session) kill() {
	s.closing.Store(true)
	_ = s.conn.Close()
}

// cancelTransfers cuts every transfer of the session: no further byte of
// them reaches a file.
func (s *session) cancelTransfers(cause error) {
	s.mu.Lock()
	ts := make([]*transfer, 0, len(s.transfers))
	for t := range s.transfers {
		ts = append(ts, t)
	}
	s.mu.Unlock()
	for _, t := range ts {
		t.cut(cause)
	}
}

func (s *session) addTransfer(t *transfer) {
	s.mu.Lock()
	s.transfers[t] = struct{}{}
	s.mu.Unlock()
	s.lastWork.Store(time.Now().UnixNano())
}

func (s *session) removeTransfer(t *transfer) {
	s.mu.Lock()
	delete(s.transfers, t)
	s.mu.Unlock()
	s.lastWork.Store(time.Now().UnixNano())
}

func (s *session) info() activity.ConnInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	ci := activity.ConnInfo{
		ID:          s.id,
		User:        s.user,
		RemoteAddr:  s.conn.RemoteAddr().String(),
		ConnectedAt: s.connectedAt,
		LoginAt:     s.loginAt,
		BytesIn:     s.bytesIn.Load(),
		BytesOut:    s.bytesOut.Load(),
	}
	if s.cc != nil {
		ci.Command = s.cc.GetLastCommand()
		ci.TLS = s.cc.HasTLSForControl()
	}
	for t := range s.transfers {
		ci.Transfers = append(ci.Transfers, t.info())
	}
	sort.Slice(ci.Transfers, func(i, j int) bool { return ci.Transfers[i].Started.Before(ci.Transfers[j].Started) })
	return ci
}

// registry holds the live sessions, keyed by the remote address of their
// control connection (unique among live TCP connections of one listener),
// which is how ClientConnected finds the session the listener created.
type registry struct {
	mu   sync.Mutex
	byRA map[string]*session
}

func (r *registry) init() { r.byRA = map[string]*session{} }

func (r *registry) add(s *session) {
	r.mu.Lock()
	r.byRA[s.conn.RemoteAddr().String()] = s
	r.mu.Unlock()
}

func (r *registry) lookup(remote string) *session {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byRA[remote]
}

func (r *registry) remove(s *session) {
	r.mu.Lock()
	if r.byRA[s.conn.RemoteAddr().String()] == s {
		delete(r.byRA, s.conn.RemoteAddr().String())
	}
	r.mu.Unlock()
}

// countUser counts the logged-in sessions of name (of every account when
// name is ""), except skip and those being closed.
func (r *registry) countUser(name string, skip *session) int {
	n := 0
	for _, s := range r.all() {
		if s == skip || s.closing.Load() {
			continue
		}
		if u := s.userName(); u != "" && (name == "" || u == name) {
			n++
		}
	}
	return n
}

func (r *registry) all() []*session {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*session, 0, len(r.byRA))
	for _, s := range r.byRA {
		out = append(out, s)
	}
	return out
}

func (r *registry) snapshot() []activity.ConnInfo {
	ss := r.all()
	out := make([]activity.ConnInfo, 0, len(ss))
	for _, s := range ss {
		out = append(out, s.info())
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].ConnectedAt.Equal(out[j].ConnectedAt) {
			return out[i].ConnectedAt.Before(out[j].ConnectedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// trackingListener is the control listener handed to ftpserverlib. It
// refuses banned addresses and connections over MaxConnsPerIP before
// ftpserverlib sees them, with a 421 reply, makes room in the pool of
// connections not logged in yet, and registers every accepted connection
// as a session.
type trackingListener struct {
	net.Listener
	s *Server
}

// Accept returns the next admitted connection. Errors of the underlying
// listener are returned unchanged: ftpserverlib recognises a closed
// listener by its error text.
func (l *trackingListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if reason := l.s.admit(c); reason != "" {
			go refuse(c, reason)
			continue
		}
		tc := &trackedConn{Conn: c}
		sess := &session{conn: tc, connectedAt: time.Now(), ip: hostOf(c.RemoteAddr()), transfers: map[*transfer]struct{}{}}
		tc.sess = sess
		l.s.sessions.Add(1)
		l.s.reg.add(sess)
		return tc, nil
	}
}

// refuse answers 421 and closes, without waiting long for a slow peer.
func refuse(c net.Conn, reason string) {
	_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, _ = fmt.Fprintf(c, "421 %s\r\n", reason)
	_ = c.Close()
}

// trackedConn is a control connection whose Close is idempotent, so the
// server can cut a session while ftpserverlib may close it too.
type trackedConn struct {
	net.Conn
	sess *session
	once sync.Once
	err  error
}

// SetDeadline is how ftpserverlib arms its idle timeout before reading
// each command, with the previous one handled: the moment to note whether
// that one was work (see ServerConfig.IdleTimeout).
func (c *trackedConn) SetDeadline(t time.Time) error {
	if c.sess != nil {
		c.sess.noteCommand()
	}
	return c.Conn.SetDeadline(t)
}

func (c *trackedConn) Close() error {
	c.once.Do(func() { c.err = c.Conn.Close() })
	if errors.Is(c.err, net.ErrClosed) || errors.Is(c.err, os.ErrClosed) {
		return nil
	}
	return c.err
}
