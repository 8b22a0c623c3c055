package ftpfs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strings"
	"syscall"
	"time"

	"github.com/jlaffaye/ftp"
)

// Sentinel errors at the package boundary. Server and client wrap them with
// the operation and the object, so callers test with errors.Is. The account
// database keeps its own sentinels in package accounts.
var (
	// ErrNotFound: the file or directory does not exist (FTP 550 on a path
	// the account may see).
	ErrNotFound = errors.New("not found")
	// ErrPermission: the account may not do this here. Outside an agent's
	// home it is returned whether or not the path exists, so that it reveals
	// nothing about other agents' trees.
	ErrPermission = errors.New("permission denied")
	// ErrClientLogin: the server refused our client's login (wrong name or
	// password, anonymous, TLS required). Retrying with the same credentials
	// will not help. The name says the side: it is what a Client or Pool
	// returns when a server said no, while accounts.ErrServerAuth is what
	// our server's account check says to a bad login. When both lived in
	// ftpfs as ErrLogin and ErrAuth, nothing in the names told them apart,
	// and the server returned the client's sentinel.
	ErrClientLogin = errors.New("login failed")
	// ErrUnreachable: the server could not be reached or the connection broke.
	ErrUnreachable = errors.New("server unreachable")
	// ErrBanned: the server refuses this address for a while after too many
	// failed logins (a *BannedError says until when, when the server said
	// it). Retrying before then only prolongs the ban.
	ErrBanned = errors.New("address banned by the server")
	// ErrCertificate: the server's TLS certificate failed verification
	// against the CA file or the pinned fingerprint. Retrying will not
	// help; the client's configuration or the server's certificate must
	// change.
	ErrCertificate = errors.New("server certificate rejected")
	// ErrBusy: a transient refusal (too many connections, a path still being
	// written that did not let go in time, FTP 421/450); retry later.
	ErrBusy = errors.New("server busy")
	// ErrExists: the target already exists (MKD of an existing directory,
	// rename onto an existing name).
	ErrExists = errors.New("already exists")
	// ErrOffset: a restart offset (REST) that the archive refuses: beyond the
	// end of the file, or below it for an account that may not rewrite
	// archived bytes.
	ErrOffset = errors.New("bad restart offset")
	// ErrNotSupported: the server does not have the command the operation
	// needs (MFMT for SetModTime).
	ErrNotSupported = errors.New("not supported by the server")
	// ErrBadName: a path the archive refuses to store: NUL, CR or LF in a
	// name, or a name that is not valid UTF-8.
	ErrBadName = errors.New("name not allowed")
)

// Errors of the client besides the package sentinels.
var (
	// ErrRemoteLarger is returned by Upload when the server already holds
	// more bytes than the source has: the source was truncated or
	// rewritten, and appending would corrupt the archived copy.
	ErrRemoteLarger = errors.New("remote file is larger than the source")
	// ErrSizeMismatch is returned by Upload when the server's SIZE after the
	// transfer differs from the source size.
	ErrSizeMismatch = errors.New("remote size differs from the source after upload")
	// ErrClientClosed is returned by operations on a Client that was closed,
	// or whose connection was cut by a cancelled context or a network error.
	ErrClientClosed = errors.New("ftp client closed")
)

// BannedError is a refusal because of a ban on the client's address. It
// matches ErrBanned.
type BannedError struct {
	// Until is when the ban ends, zero when the server did not say.
	Until time.Time
}

func (e *BannedError) Error() string {
	if e.Until.IsZero() {
		return ErrBanned.Error()
	}
	return fmt.Sprintf("%s until %s", ErrBanned, e.Until.UTC().Format(time.RFC3339))
}

// Is makes errors.Is(err, ErrBanned) hold.
func (e *BannedError) Is(target error) bool { return target == ErrBanned }

// banFrom recognises a server's ban refusal in a reply's text ("too many
// failed logins ... try again after <RFC 3339 time>", as syncer's server
// words it: 421 at connect, 530 at USER or PASS), or returns nil.
func banFrom(msg string) *BannedError {
	if !strings.Contains(strings.ToLower(msg), "too many failed logins") {
		return nil
	}
	be := &BannedError{}
	if _, after, ok := strings.Cut(msg, "after "); ok {
		if f := strings.Fields(after); len(f) > 0 {
			if t, err := time.Parse(time.RFC3339, strings.TrimRight(f[0], ".;,)\"")); err == nil {
				be.Until = t
			}
		}
	}
	return be
}

// errFingerprint marks a server certificate that does not match the pinned
// fingerprint; it is never transient.
var errFingerprint = errors.New("server certificate does not match the pinned fingerprint")

// ErrPoolClosed is returned by Pool.Get after Pool.Close.
var ErrPoolClosed = errors.New("ftp pool closed")

// localError is a failure of the caller's reader or writer, not of the
// connection: it is never transient and does not break the client.
type localError struct {
	op  string
	err error
}

func (e *localError) Error() string { return e.op + ": " + e.err.Error() }
func (e *localError) Unwrap() error { return e.err }

// IsTransient reports whether retrying the operation that failed with err
// may succeed: FTP 4xx replies (421 closing, 425 no data connection, 426
// transfer aborted, 450 busy...), ErrBusy, ErrUnreachable, timeouts, resets
// and dropped connections. Never a cancelled or expired context, a refused
// login or permission (530, 550...), a rejected certificate, or a failure
// of the caller's own reader or writer.
func IsTransient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var le *localError
	if errors.As(err, &le) || isVerifyErr(err) {
		return false
	}
	for _, permanent := range []error{ErrClientLogin, ErrBanned, ErrCertificate, ErrPermission, ErrNotFound, ErrExists, ErrOffset, ErrBadName, ErrRemoteLarger, ErrSizeMismatch} {
		if errors.Is(err, permanent) {
			return false
		}
	}
	var tp *textproto.Error
	if errors.As(err, &tp) {
		return tp.Code >= 400 && tp.Code < 500
	}
	if errors.Is(err, ErrBusy) || errors.Is(err, ErrUnreachable) || errors.Is(err, ErrClientClosed) {
		return true
	}
	return isConnErr(err)
}

// isConnErr reports a failure of the connection itself (as opposed to a
// server reply or the caller's reader/writer): after one, the FTP
// conversation is out of step and the client must be redialed.
func isConnErr(err error) bool {
	if err == nil {
		return false
	}
	var le *localError
	if errors.As(err, &le) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) || isVerifyErr(err) {
		return true
	}
	var (
		alert tls.AlertError
		rec   tls.RecordHeaderError
	)
	return errors.As(err, &alert) || errors.As(err, &rec) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNABORTED)
}

// isVerifyErr reports a rejected server certificate: retrying will not
// help, the operator must fix the CA file or fingerprint.
func isVerifyErr(err error) bool {
	var (
		cv *tls.CertificateVerificationError
		ua x509.UnknownAuthorityError
		hn x509.HostnameError
		ci x509.CertificateInvalidError
	)
	return errors.Is(err, errFingerprint) || errors.As(err, &cv) || errors.As(err, &ua) ||
		errors.As(err, &hn) || errors.As(err, &ci)
}

// opError names the operation and path and translates the server's reply
// to a package sentinel, keeping the reply text in the message:
// "size /a/b: not found (server: 550 No such file or directory.)".
func opError(op, p string, err error) error {
	what := op
	if p != "" {
		what += " " + p
	}
	if errors.Is(err, ErrClientClosed) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", what, err)
	}
	var tp *textproto.Error
	if errors.As(err, &tp) {
		if s := sentinelFor(op, tp); s != nil {
			return fmt.Errorf("%s: %w (server: %w)", what, s, err)
		}
		return fmt.Errorf("%s: server: %w", what, err)
	}
	var le *localError
	if errors.As(err, &le) {
		return fmt.Errorf("%s: %w", what, err)
	}
	if isConnErr(err) {
		return fmt.Errorf("%s: connection lost: %w", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// sentinelFor maps an FTP reply to a sentinel, or nil. 550 is "not
// available" in RFC 959 and servers use it for missing files, refused
// access and refused restart offsets alike, so the reply text decides,
// then the operation.
func sentinelFor(op string, tp *textproto.Error) error {
	msg := strings.ToLower(tp.Msg)
	has := func(words ...string) bool {
		for _, w := range words {
			if strings.Contains(msg, w) {
				return true
			}
		}
		return false
	}
	switch tp.Code {
	case ftp.StatusNotLoggedIn: // 530
		return ErrClientLogin
	case ftp.StatusNotAvailable, ftp.StatusFileActionIgnored: // 421, 450
		return ErrBusy
	case ftp.StatusFileUnavailable, ftp.StatusBadFileName, ftp.StatusPageTypeUnknown: // 550, 553, 551
		switch {
		case has("restart offset", "rest parameter", "invalid rest"):
			return ErrOffset
		case has("permission", "denied", "not allowed", "forbidden", "access is", "refused", "read-only", "read only"):
			return ErrPermission
		case has("no such", "not found", "does not exist", "doesn't exist", "not exist", "cannot find", "can't find"):
			return ErrNotFound
		case has("exists"):
			return ErrExists
		}
		if tp.Code == ftp.StatusBadFileName {
			return ErrPermission
		}
		switch op {
		case "size", "retr", "list", "cwd":
			return ErrNotFound
		case "stor", "mkdir", "mfmt":
			return ErrPermission
		}
	}
	return nil
}

// isProtoErr reports an FTP reply error (the connection is still in step).
func isProtoErr(err error) bool {
	var tp *textproto.Error
	return errors.As(err, &tp)
}
