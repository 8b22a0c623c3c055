package ftpfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"github.com/syncer-dev/syncer/ftpfs/accounts"
	"github.com/syncer-dev/syncer/ftpfs/activity"
	"github.com/syncer-dev/syncer/internal/archive"
	"golang.org/x/time/rate"
)

// Timing of transfers.
const (
	progressEvery = 250 * time.Millisecond
	// cutWait bounds how long a new upload waits for the transfer it cut
	// to let go of the path.
	cutWait = 10 * time.Second
)

// transfer is the FileTransfer handle of one upload or download. It does
// not implement io.WriterTo, and its io.ReaderFrom only calls Write with a
// larger buffer: every byte goes through Read and Write, where the rate
// limit and the cut check are.
type transfer struct {
	s      *Server
	sess   *session
	user   string
	path   string
	upload bool
	f      *os.File
	offset int64
	// openSize is the file's size when the upload opened (0 after STOR).
	openSize int64
	started  time.Time
	lim      *rate.Limiter
	// opening is an upload not opened yet: the archive is changed (the
	// old content kept as a version, the file created or truncated) only
	// at the first Write, which ftpserverlib makes once the data
	// connection is accepted, so that a transfer whose data connection
	// never comes changes nothing. nil once opened, and for downloads.
	opening *uploadOpen
	openErr error
	ctx     context.Context
	cancel  context.CancelFunc

	written atomic.Int64
	// dirs are the directories (archive paths) whose entries the upload
	// changed; Close makes them durable with the data.
	dirs []string
	// flushed is the offset in the file up to which writeback was started.
	flushed int64

	// mu is held around each write to the file: once cut has taken it and
	// set cutErr, no further byte of this transfer reaches the file.
	mu       sync.Mutex
	cutErr   error
	xferErr  error
	lastProg time.Time

	closeOnce sync.Once
	done      chan struct{}
}

var (
	_ ftpserver.FileTransfer      = (*transfer)(nil)
	_ ftpserver.FileTransferError = (*transfer)(nil)
	_ io.ReaderFrom               = (*transfer)(nil)
)

// writerTable enforces one writer per archive path.
type writerTable struct {
	mu sync.Mutex
	m  map[string]*transfer
}

func (w *writerTable) init() { w.m = map[string]*transfer{} }

// acquire makes t the writer of its path. A transfer already writing the
// path is cut and acquire waits until it has closed, so that the caller
// reads the file's size only after the last byte of the older transfer
// has landed.
func (w *writerTable) acquire(t *transfer) error {
	deadline := time.NewTimer(cutWait)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		old := w.m[t.path]
		if old == nil {
			w.m[t.path] = t
			w.mu.Unlock()
			return nil
		}
		w.mu.Unlock()
		t.s.log.Warn("upload cut by a newer upload of the same path", "path", t.path,
			"old_user", old.user, "old_remote", old.sess.conn.RemoteAddr().String(),
			"new_user", t.user, "new_remote", t.sess.conn.RemoteAddr().String())
		old.cut(fmt.Errorf("cut by a newer upload of %s: %w", t.path, ErrBusy))
		// The old client may be blocked reading a silent data connection;
		// only closing its session ends that read.
		old.sess.kill()
		select {
		case <-old.done:
		case <-deadline.C:
			return fmt.Errorf("upload %s: an older transfer of this path did not stop: %w", t.path, ErrBusy)
		}
	}
}

func (w *writerTable) release(t *transfer) {
	w.mu.Lock()
	if w.m[t.path] == t {
		delete(w.m, t.path)
	}
	w.mu.Unlock()
}

func (w *writerTable) busy(p string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.m[p] != nil
}

// busyUnder reports whether p or anything below it is being written.
func (w *writerTable) busyUnder(p string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for q := range w.m {
		if pathWithin(q, p) {
			return true
		}
	}
	return false
}

// GetHandle opens a download (flags O_RDONLY, needs r) or an upload:
// STOR (O_TRUNC, needs w) keeps an existing file as a version first; APPE
// (O_APPEND, needs a) appends; REST N + STOR (needs w and a) continues at
// N, which must not be beyond the end of the file and, for agent
// accounts, not below it.
func (h *handler) GetHandle(name string, flags int, offset int64) (ftpserver.FileTransfer, error) {
	if flags&(os.O_WRONLY|os.O_RDWR) == 0 {
		return h.openDownload(name, offset)
	}
	return h.openUpload(name, flags, offset)
}

func (h *handler) newTransfer(p string, upload bool, offset int64) *transfer {
	ctx, cancel := context.WithCancel(context.Background())
	t := &transfer{
		s: h.s, sess: h.sess, user: h.name, path: p, upload: upload,
		offset: offset, started: time.Now(), ctx: ctx, cancel: cancel,
		done: make(chan struct{}),
	}
	return t
}

// rateFor is the account's current limit for one direction.
func (h *handler) rateFor(u accounts.User, upload bool) accounts.Rate {
	if upload {
		if u.MaxUploadRate > 0 {
			return u.MaxUploadRate
		}
		return h.s.cfg.MaxUploadRate
	}
	if u.MaxDownloadRate > 0 {
		return u.MaxDownloadRate
	}
	return h.s.cfg.MaxDownloadRate
}

func (h *handler) openDownload(name string, offset int64) (ftpserver.FileTransfer, error) {
	rel, p, err := h.resolve(name, permRead)
	if err != nil {
		return nil, err
	}
	u, err := h.account()
	if err != nil {
		return nil, err
	}
	f, err := h.root.Open(rel)
	if err != nil {
		return nil, fsError("read", p, err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fsError("read", p, err)
	}
	if !fi.Mode().IsRegular() {
		_ = f.Close()
		return nil, fmt.Errorf("read %s: not a regular file", p)
	}
	if offset < 0 || offset > fi.Size() {
		_ = f.Close()
		return nil, fmt.Errorf("read %s: restart offset %d is beyond the end of the file (%d bytes): %w", p, offset, fi.Size(), ErrOffset)
	}
	t := h.newTransfer(p, false, offset)
	t.f = f
	t.lim = h.s.limiters.get(u.Name, false, h.rateFor(u, false))
	h.s.transfers.Add(1)
	h.sess.addTransfer(t)
	return t, nil
}

func (h *handler) openUpload(name string, flags int, offset int64) (ftpserver.FileTransfer, error) {
	o := &uploadOpen{h: h, name: name, appendMode: flags&os.O_APPEND != 0, offset: offset}
	if err := o.check(); err != nil {
		return nil, err
	}
	t := h.newTransfer(o.p, true, 0)
	if err := h.s.writers.acquire(t); err != nil {
		return nil, err
	}
	o.t = t
	ok := false
	defer func() {
		if !ok {
			h.s.writers.release(t)
			t.cancel()
		}
	}()
	// Only now, with any older writer of the path gone, is the size final.
	if err := o.stat(); err != nil {
		return nil, err
	}
	if err := o.plan(); err != nil {
		return nil, err
	}
	ok = true
	t.opening = o
	t.lim = h.s.limiters.get(o.u.Name, true, h.rateFor(o.u, true))
	h.s.transfers.Add(1)
	h.sess.addTransfer(t)
	return t, nil
}

// uploadOpen is the opening of one upload (STOR, APPE or REST N + STOR):
// what was asked, the file as it was found, and the transfer it becomes.
type uploadOpen struct {
	h          *handler
	name       string
	appendMode bool
	offset     int64 // REST N, 0 without

	rel, p  string // see handler.resolve
	u       accounts.User
	t       *transfer
	exists  bool
	size    int64
	version string // the archive path the old content was kept under
}

// check resolves the path with the permissions the upload needs (w for
// STOR, a for APPE, both for REST + STOR) and refuses what cannot be
// uploaded to whatever the file holds.
func (o *uploadOpen) check() error {
	letters := []byte{permWrite}
	switch {
	case o.appendMode:
		letters = []byte{permAppend}
	case o.offset > 0:
		letters = []byte{permWrite, permAppend}
	}
	var err error
	for _, l := range letters {
		if o.rel, o.p, err = o.h.resolve(o.name, l); err != nil {
			return err
		}
	}
	if o.rel == "." {
		return fmt.Errorf("upload %s: is a directory", o.p)
	}
	if strings.HasSuffix(o.name, "/") {
		return fmt.Errorf("upload %s: is a directory", o.p)
	}
	if o.u, err = o.h.account(); err != nil {
		return err
	}
	if o.offset < 0 {
		return fmt.Errorf("upload %s: negative restart offset: %w", o.p, ErrOffset)
	}
	return nil
}

// stat takes the size of the file, if there is one.
func (o *uploadOpen) stat() error {
	fi, err := o.h.root.Stat(o.rel)
	switch {
	case err == nil:
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("upload %s: not a regular file", o.p)
		}
		o.exists, o.size = true, fi.Size()
	case errors.Is(err, fs.ErrNotExist):
	default:
		return fsError("upload", o.p, err)
	}
	return nil
}

// plan checks what the upload may do with the file as found, without
// changing anything, and sets where the transfer starts.
func (o *uploadOpen) plan() error {
	t := o.t
	switch {
	case o.appendMode:
		t.offset, t.openSize = o.size, o.size
	case o.offset > 0:
		if err := o.checkRestart(); err != nil {
			return err
		}
		t.offset, t.openSize = o.offset, o.size
	default:
		t.offset = 0
	}
	return nil
}

// open opens the file for the upload as plan said: appended to, continued
// at the restart offset, or replaced (its old content kept as a version).
func (o *uploadOpen) open() (*os.File, error) {
	var f *os.File
	var created bool
	var err error
	root := o.h.root
	switch {
	case o.appendMode:
		f, created, err = o.h.s.createFile(root, o.rel, os.O_WRONLY|os.O_APPEND)
	case o.offset > 0:
		f, err = o.openAt()
	default:
		if err := o.keepOld(); err != nil {
			return nil, err
		}
		f, created, err = o.h.s.createFile(root, o.rel, os.O_WRONLY|os.O_TRUNC)
	}
	if o.version != "" || created {
		// The directory's entries changed (a new name, or the old
		// content's move to a version): the 226 waits for them too.
		// Recorded even when the open failed after the move.
		o.t.dirs = append(o.t.dirs, path.Dir(o.p))
	}
	if err != nil {
		return nil, fsError("upload", o.p, err)
	}
	return f, nil
}

// checkRestart refuses a restart offset beyond the end of the file, or
// below it for an agent.
func (o *uploadOpen) checkRestart() error {
	if o.offset > o.size {
		return fmt.Errorf("upload %s: restart offset %d is beyond the end of the file (%d bytes); ask SIZE and resume from there: %w", o.p, o.offset, o.size, ErrOffset)
	}
	if o.offset < o.size && !o.u.Admin {
		// Rewriting archived bytes is an admin's business: an agent
		// may only add to what the archive holds.
		return fmt.Errorf("upload %s: restart offset %d is below the end of the file (%d bytes); archived bytes cannot be rewritten: %w", o.p, o.offset, o.size, ErrOffset)
	}
	return nil
}

// openAt opens the file for writing at the restart offset.
func (o *uploadOpen) openAt() (*os.File, error) {
	if o.offset == o.size {
		return o.h.root.OpenFile(o.rel, os.O_WRONLY|os.O_APPEND, 0)
	}
	f, err := o.h.root.OpenFile(o.rel, os.O_WRONLY, 0)
	if err == nil {
		if _, err = f.Seek(o.offset, io.SeekStart); err != nil {
			_ = f.Close()
		}
	}
	return f, err
}

// keepOld keeps the content a STOR replaces as a version.
func (o *uploadOpen) keepOld() error {
	if o.exists && o.size > 0 && !archive.IsAgentInfo(o.p) {
		// Archive, not mirror: the old content stays, under a name
		// that says when it was superseded. An empty file holds
		// nothing to keep; nor does the agent's own description,
		// which it rewrites on every push as a heartbeat.
		var err error
		if o.version, err = o.h.keepVersion(o.rel, o.p); err != nil {
			return err
		}
	}
	return nil
}

// start makes the opened file the transfer's and reports the upload.
func (o *uploadOpen) start(f *os.File) {
	h, t, u := o.h, o.t, o.u
	t.f = f
	if o.version != "" {
		h.s.log.Info("file superseded", "path", o.p, "version", o.version, "user", u.Name)
		t.event(activity.UploadSuperseded, o.size, func(ev *activity.UploadEvent) { ev.VersionPath = o.version })
	}
	t.lastProg = time.Now()
	t.flushed = t.offset
	t.event(activity.UploadOpened, t.size(), nil)
}

// keepVersion moves the file at rel aside as NAME.superseded-<UTC time>
// ("-2", "-3"... on a collision) and returns the version's archive path.
// It links before it removes, so an existing version is never replaced.
func (h *handler) keepVersion(rel, p string) (string, error) {
	now := time.Now()
	for i := 1; i < 1000; i++ {
		vrel, vp := archive.VersionName(rel, now, i), archive.VersionName(p, now, i)
		err := h.root.Link(rel, vrel)
		if err == nil {
			if err := h.root.Remove(rel); err != nil {
				return "", fsError("keep version of", p, err)
			}
			return vp, nil
		}
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		// No hard links on this file system: check, then rename.
		if _, lerr := h.root.Lstat(vrel); lerr == nil {
			continue
		}
		if err := h.root.Rename(rel, vrel); err != nil {
			return "", fsError("keep version of", p, err)
		}
		return vp, nil
	}
	return "", fmt.Errorf("keep version of %s: too many versions in the same second: %w", p, ErrBusy)
}

// event reports an upload event with the transfer's state.
func (t *transfer) event(kind activity.UploadKind, size int64, fill func(*activity.UploadEvent)) {
	ev := activity.UploadEvent{
		Time: time.Now(), User: t.user, Path: t.path, Offset: t.offset,
		Written: t.written.Load(), Size: size, Kind: kind,
	}
	if fill != nil {
		fill(&ev)
	}
	t.s.emit(ev)
}

// cut stops the transfer: its next write fails and a wait on the rate
// limiter ends. When cut returns, no write of t is in progress.
func (t *transfer) cut(cause error) {
	t.cancel()
	t.mu.Lock()
	if t.cutErr == nil {
		t.cutErr = cause
	}
	t.mu.Unlock()
}

// Read implements io.Reader for downloads, at the account's rate.
func (t *transfer) Read(p []byte) (int, error) {
	if t.upload {
		return 0, errors.New("read from an upload")
	}
	if t.lim != nil && len(p) > t.lim.Burst() {
		p = p[:t.lim.Burst()]
	}
	t.mu.Lock()
	cutErr := t.cutErr
	t.mu.Unlock()
	if cutErr != nil {
		return 0, cutErr
	}
	n, err := t.f.Read(p)
	if n > 0 {
		t.written.Add(int64(n))
		t.sess.bytesOut.Add(int64(n))
		if t.lim != nil {
			if werr := waitN(t.ctx, t.lim, n); werr != nil && err == nil {
				err = t.stopReason(werr)
			}
		}
	}
	return n, err
}

// openUpload opens the upload's file at its first Write.
func (t *transfer) openUpload() error {
	if t.opening == nil {
		return t.openErr
	}
	o := t.opening
	t.opening = nil
	f, err := o.open()
	if err != nil {
		t.openErr = err
		return err
	}
	o.start(f)
	return nil
}

// Write implements io.Writer for uploads, at the account's rate. The first
// call, made once the data connection is accepted (with no bytes for an
// empty file), opens the file.
func (t *transfer) Write(p []byte) (int, error) {
	if !t.upload {
		return 0, errors.New("write to a download")
	}
	t.mu.Lock()
	cutErr := t.cutErr
	t.mu.Unlock()
	if cutErr != nil {
		return 0, cutErr
	}
	if err := t.openUpload(); err != nil {
		return 0, err
	}
	total := 0
	for len(p) > 0 {
		chunk := p
		if t.lim != nil {
			chunk = p[:min(len(p), t.lim.Burst())]
			if err := waitN(t.ctx, t.lim, len(chunk)); err != nil {
				return total, t.stopReason(err)
			}
		}
		t.mu.Lock()
		if t.cutErr != nil {
			err := t.cutErr
			t.mu.Unlock()
			return total, err
		}
		n, err := t.f.Write(chunk)
		t.mu.Unlock()
		total += n
		t.written.Add(int64(n))
		t.sess.bytesIn.Add(int64(n))
		if err != nil {
			return total, fsError("write", t.path, err)
		}
		p = p[n:]
	}
	if end := t.offset + t.written.Load(); end-t.flushed >= writebackEvery {
		// Start writing back what arrived, so that the fdatasync
		// before the 226 has little left to do.
		startWriteback(t.f, t.flushed, end-t.flushed)
		t.flushed = end
	}
	if now := time.Now(); now.Sub(t.lastProg) >= progressEvery {
		t.lastProg = now
		t.event(activity.UploadProgress, t.size(), nil)
	}
	return total, nil
}

// uploadBufs are ReadFrom's buffers.
var uploadBufs = sync.Pool{New: func() any { b := make([]byte, uploadBuf); return &b }}

// uploadBuf is the buffer ReadFrom receives an upload with: io.Copy's
// 32 KiB made a large upload cost one write(2), one lock and one limiter
// wait per 32 KiB.
const uploadBuf = 1 << 20

// ReadFrom implements io.ReaderFrom for uploads: ftpserverlib copies the
// data connection into the transfer with io.Copy, which (through the TCP
// connection's WriteTo) comes here. Each chunk goes through Write.
func (t *transfer) ReadFrom(r io.Reader) (int64, error) {
	if !t.upload {
		return 0, errors.New("write to a download")
	}
	bp := uploadBufs.Get().(*[]byte)
	defer uploadBufs.Put(bp)
	buf := *bp
	var total int64
	for {
		n, rerr := r.Read(buf)
		if n > 0 {
			w, werr := t.Write(buf[:n])
			total += int64(w)
			if werr != nil {
				return total, werr
			}
		}
		switch {
		case rerr == io.EOF:
			return total, nil
		case rerr != nil:
			return total, rerr
		}
	}
}

// stopReason prefers the cut's cause to the limiter's context error.
func (t *transfer) stopReason(err error) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cutErr != nil {
		return t.cutErr
	}
	return err
}

// Seek implements io.Seeker. ftpserverlib seeks to the REST offset that
// GetHandle already validated and applied; an upload refuses any other
// position.
func (t *transfer) Seek(offset int64, whence int) (int64, error) {
	if t.upload {
		if whence != io.SeekStart || offset != t.offset {
			return 0, fmt.Errorf("upload %s: seek to %d refused: %w", t.path, offset, ErrOffset)
		}
		return offset, nil
	}
	return t.f.Seek(offset, whence)
}

// TransferError records that ftpserverlib saw the transfer fail.
func (t *transfer) TransferError(err error) {
	t.mu.Lock()
	if t.xferErr == nil {
		t.xferErr = err
	}
	t.mu.Unlock()
}

// Close closes the file, frees the path for the next writer and reports
// the upload as closed or failed.
func (t *transfer) Close() error {
	var err error
	t.closeOnce.Do(func() {
		if t.upload && t.f != nil {
			// The 226 reply goes out after Close: the bytes and the
			// file's name must be on stable storage by then, because
			// the agent advances its manifest on that reply and never
			// sends them again (durable.go).
			err = t.s.flush.sync(t.f, t.dirs...)
		} else if t.upload && len(t.dirs) > 0 {
			// The open moved the old content to a version and then
			// failed: no 226, but the move is made durable all the same.
			_ = t.s.flush.sync(nil, t.dirs...)
		}
		if t.f != nil {
			if cerr := t.f.Close(); err == nil {
				err = cerr
			}
		}
		t.cancel()
		t.sess.removeTransfer(t)
		if t.upload && t.f == nil {
			// Never opened: nothing in the archive changed, so there is
			// nothing to report to OnUpload either.
			t.s.writers.release(t)
			t.mu.Lock()
			failure := errors.Join(t.cutErr, t.xferErr, t.openErr)
			t.mu.Unlock()
			t.s.log.Warn("upload ended before any byte arrived; the archive is unchanged", "path", t.path, "user", t.user, "err", failure)
		} else if t.upload {
			t.s.writers.release(t)
			t.mu.Lock()
			failure := t.cutErr
			if failure == nil {
				failure = t.xferErr
			}
			t.mu.Unlock()
			if failure == nil && err != nil {
				failure = fsError("close", t.path, err)
			}
			size := t.size()
			if failure != nil {
				t.s.log.Warn("upload failed", "path", t.path, "user", t.user, "offset", t.offset, "written", t.written.Load(), "err", failure)
				t.s.counts.uploadFailures.Add(1)
				t.event(activity.UploadFailed, size, func(ev *activity.UploadEvent) { ev.Err = failure })
			} else {
				t.s.log.Debug("upload closed", "path", t.path, "user", t.user, "offset", t.offset, "written", t.written.Load(), "size", size)
				t.s.counts.uploads.Add(1)
				t.s.counts.uploadBytes.Add(t.written.Load())
				t.event(activity.UploadClosed, size, nil)
			}
		}
		close(t.done)
		t.s.transfers.Done()
		if err != nil {
			err = fsError("close", t.path, err)
		}
	})
	return err
}

// size is the uploaded file's size now: only this transfer writes it.
func (t *transfer) size() int64 { return max(t.openSize, t.offset+t.written.Load()) }

func (t *transfer) info() activity.TransferInfo {
	return activity.TransferInfo{Path: t.path, Upload: t.upload, Offset: t.offset, Bytes: t.written.Load(), Started: t.started}
}
