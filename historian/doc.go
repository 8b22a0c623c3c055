// Package historian is the server side of syncer: it wires the FTP server
// that agents push to (ftpfs), the index of the archive (store), the web
// viewer (httpview) and the read-only FUSE view (fuseview) together, and
// owns their lifecycle: start in order, reload of the users file, and an
// ordered shutdown (web viewer, FTP server, FUSE view, index), as
// syncer.Agent does for the agent.
//
// A command builds a Config, calls New, and Run(ctx) until ctx is
// cancelled:
//
//	h, err := historian.New(historian.Config{Archive: historian.LocalArchive("/srv/archive"), State: "/var/lib/syncer"})
//	if err != nil { ... }
//	err = h.Run(ctx)
//
// The library changes no process-wide state: signals are the caller's
// (Config.Reload takes SIGHUP from it), and it never exits the process.
package historian
