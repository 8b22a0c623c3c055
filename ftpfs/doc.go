// Package ftpfs is syncer's FTP layer, usable as a library by other Go
// programs: a server (on ftpserverlib) that runs beside the caller's own
// work, and a resumable, reconnecting client (on jlaffaye/ftp).
//
// # Server
//
// NewServer(ServerConfig) builds a server over an archive root; Start listens,
// Stop shuts down (cutting transfers). Accounts come from an accounts.DB
// (package ftpfs/accounts: a YAML users file with bcrypt hashes, reloaded
// when it changes); AddUser and RemoveUser change them at run time.
// Connections returns the live sessions; ServerConfig.OnUpload receives an
// UploadEvent for every upload that opened, grew or closed. Both types live
// in package ftpfs/activity, so that observers need not import the server.
//
// Permissions use pyftpdlib's letters: e cwd, l list, r retrieve, a append,
// d delete, f rename, m mkdir, w store, M chmod, T set mtime. An agent
// account (accounts.User.Admin false) has its letters only under its home,
// /NAME/, and nothing outside it. An admin account has its letters everywhere.
// Without T, an agent account that may write (w or a) still sets the time of
// its own files (MFMT, so that archived logs keep their node's mtime), never
// of a directory or a superseded version.
//
// The reply to a successful PASS tells the client the server's version and
// clock ("230 Logged in as node1; syncer historian v1.2.0; time <RFC 3339>";
// Client.Hello reads it). Logins and uploads are logged at DEBUG, summed up
// every ServerConfig.SummaryEvery at INFO.
//
// The archive is protected, because an archive that loses a log is worse than
// none:
//   - STOR without REST onto an existing file keeps the old content as a
//     version named NAME.superseded-YYYYMMDDTHHMMSSZ (UTC; "-2", "-3" are
//     appended on a collision) and then writes the new file.
//   - REST beyond the end of a file is refused; REST below the end (rewriting
//     archived bytes) is refused for agent accounts, which never hold w on
//     existing files.
//   - One writer per path: a new upload to a path that is being written
//     cuts the older transfer and waits for it to close before it starts.
//
// Data connections are the client's only:
//   - A passive port accepts connections from the control connection's
//     address only; others are closed and the transfer keeps waiting for
//     the client until ServerConfig.DataConnTimeout. A connection refused
//     is never handed to a later transfer: after a failed transfer the
//     client needs a new PASV/EPSV.
//   - With TLS on the data channel, a data connection must resume its own
//     control connection's TLS session (vsftpd's require_ssl_reuse): only
//     the client holds that session's secret, so another program on the
//     same address cannot send or read a transfer's bytes. Its connection
//     is dropped and the transfer waits for the client's. syncer's client,
//     curl and lftp resume; TLSAllowDataWithoutReuse lifts the rule for
//     clients that do not (Python's stock ftplib).
//   - An upload changes nothing in the archive (no version kept, nothing
//     created or truncated) until its data connection is accepted and its
//     first bytes (or, for an empty file, its end) arrive.
//   - LIST, NLST, MLSD and STAT read a directory in batches while they send
//     it, in the order the file system gives (not sorted), so listing a
//     directory of any size takes bounded memory.
//
// These rest on a patched ftpserverlib (third_party/ftpserverlib/SYNCER.md).
//
// # Client
//
// Dial(ctx, ClientConfig) opens one control connection; a Client is used by
// one goroutine at a time. Pool keeps one connection per worker, checks
// connections with NOOP after errors and redials with capped exponential
// backoff; with FailFast it reports a failed first dial at once instead.
// Upload resumes from the server's SIZE. Over TLS every data connection
// resumes the control connection's TLS session (a session cache per
// control connection), as servers that require it want. Errors at the package boundary are
// sentinels (all in errors.go): ErrNotFound, ErrPermission, ErrClientLogin,
// ErrUnreachable, ErrBanned (a *BannedError with the ban's end),
// ErrCertificate, ErrBusy, ErrExists, ErrOffset, ErrBadName, ErrNotSupported.
//
// # Testing
//
// Package ftpfs/ftptest starts the server in a test's process (NewServer)
// and holds the client suite (RunClientSuite) that ours, vsftpd and
// pyftpdlib all pass.
package ftpfs
