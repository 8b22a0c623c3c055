package ftpfs

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"slices"
	"sync"
)

// Why data connections must resume their control connection's TLS session:
// the passive port is announced to the client, but anyone on the client's
// address (another user or container on the node, hosts behind the same
// NAT) can connect to it, and the address check lets them in. Before this
// rule such a connection's own TLS handshake was accepted, so a stranger
// could send the bytes of an agent's upload or read its download. Only the
// client that made the control connection's handshake holds that
// session's secret, so a data connection that resumes it comes from that
// client (vsftpd's require_ssl_reuse, FileZilla Server's default).
//
// Go's tls cannot name "the session of that connection" directly, so each
// control connection gets a random tag, written into every session ticket
// it (and its data connections) issue (SessionState.Extra). A data
// connection is accepted only if it resumed a ticket carrying its control
// connection's tag, or the tag of a ticket the control connection itself
// resumed (the same client, then, holds that secret too).

// tlsTagPrefix marks the tag among a ticket's Extra values.
const tlsTagPrefix = "syncer-ftp-control:"

// errNoSessionReuse is the handshake error of a data connection that did
// not resume its control connection's TLS session.
var errNoSessionReuse = errors.New("data connection did not resume the control connection's TLS session")

// tlsBinding ties one control connection's data connections to its TLS
// session.
type tlsBinding struct {
	base    *tls.Config // the server's configuration: certificate, ticket keys
	control *tls.Config // the control connection's handshake
	data    *tls.Config // its data connections' handshakes

	mu   sync.Mutex
	tags [][]byte // accepted tags: its own first, then those it resumed
}

// newTLSBinding makes the configurations of one control connection over
// base. With requireReuse false the data connections' sessions are not
// checked (TLSAllowDataWithoutReuse).
func newTLSBinding(base *tls.Config, requireReuse bool) (*tlsBinding, error) {
	tag := make([]byte, 16)
	if _, err := rand.Read(tag); err != nil {
		return nil, err
	}
	b := &tlsBinding{base: base, tags: [][]byte{append([]byte(tlsTagPrefix), tag...)}}
	b.control = base.Clone()
	b.control.GetConfigForClient = nil
	b.control.WrapSession = b.wrap
	b.control.UnwrapSession = b.unwrapControl
	b.data = base.Clone()
	b.data.GetConfigForClient = nil
	b.data.WrapSession = b.wrap
	if requireReuse {
		// A stranger's handshake is refused at its ClientHello, before
		// the server signs anything, so that a flood of them costs little
		// and does not crowd out the client's own connection.
		b.data.GetConfigForClient = refuseWithoutPSK
		b.data.UnwrapSession = b.unwrapData
		b.data.VerifyConnection = func(cs tls.ConnectionState) error {
			if !cs.DidResume {
				return errNoSessionReuse
			}
			return nil
		}
	}
	return b, nil
}

// wrap issues a ticket carrying the control connection's own tag, on the
// control connection and on its data connections alike.
func (b *tlsBinding) wrap(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
	extra := ss.Extra[:0:0]
	for _, e := range ss.Extra {
		if !bytes.HasPrefix(e, []byte(tlsTagPrefix)) {
			extra = append(extra, e)
		}
	}
	ss.Extra = append(extra, b.tags[0])
	return b.base.EncryptTicket(cs, ss)
}

// unwrapControl lets the control connection resume any ticket of this
// server, and remembers the ticket's tag: its data connections may resume
// that session too.
func (b *tlsBinding) unwrapControl(identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
	ss, err := b.base.DecryptTicket(identity, cs)
	if err != nil || ss == nil {
		return ss, err
	}
	if tag := ticketTag(ss); tag != nil {
		b.mu.Lock()
		b.tags = append(b.tags, tag)
		b.mu.Unlock()
	}
	return ss, nil
}

// unwrapData resumes only a ticket carrying one of the control
// connection's tags, and aborts the handshake on any other (or none: TLS
// 1.2 asks with an empty ticket).
func (b *tlsBinding) unwrapData(identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
	ss, err := b.base.DecryptTicket(identity, cs)
	if err != nil || ss == nil {
		return nil, errNoSessionReuse
	}
	tag := ticketTag(ss)
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, t := range b.tags {
		if tag != nil && bytes.Equal(t, tag) {
			return ss, nil
		}
	}
	return nil, errNoSessionReuse
}

// extensionPreSharedKey is TLS 1.3's pre_shared_key extension (RFC 8446),
// which carries the tickets a client resumes with.
const extensionPreSharedKey = 41

// refuseWithoutPSK refuses a TLS 1.3 ClientHello that offers no ticket to
// resume: UnwrapSession is not even asked then. (TLS 1.2 ClientHellos go
// on to unwrapData.)
func refuseWithoutPSK(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	if slices.Contains(hello.SupportedVersions, tls.VersionTLS13) && !slices.Contains(hello.Extensions, extensionPreSharedKey) {
		return nil, errNoSessionReuse
	}
	return nil, nil
}

// ticketTag is the control connection tag a ticket carries, nil if none.
func ticketTag(ss *tls.SessionState) []byte {
	for _, e := range ss.Extra {
		if bytes.HasPrefix(e, []byte(tlsTagPrefix)) {
			return e
		}
	}
	return nil
}
