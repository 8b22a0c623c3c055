package ftpfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"github.com/spf13/afero"
	"github.com/syncer-dev/syncer/ftpfs/accounts"
	"github.com/syncer-dev/syncer/internal/archive"
)

// handler is ftpserverlib's ClientDriver for one logged-in session: an
// afero.Fs over the archive that checks the account's permission letter
// and confinement on every call.
//
// Confinement is enforced twice. Lexically, every path is cleaned and an
// agent account is refused anything that is not its home or below it,
// before the file system is touched, so that errors never reveal whether a
// path outside exists. Physically, all I/O goes through an os.Root: the
// archive root for admins, the home directory itself for agents, so that
// no "..", absolute path or symlink (even one pointing into another
// agent's tree) leads out of it.
type handler struct {
	s    *Server
	sess *session
	name string // account name
	// Login-time view of the account; permissions are re-read on every
	// call (see account), but a changed home or admin flag ends access.
	home  string
	admin bool
	root  *os.Root
	base  string // archive path of root: "/" or home
	own   bool   // root belongs to this handler and is closed with it
}

var (
	_ ftpserver.ClientDriver                      = (*handler)(nil)
	_ ftpserver.ClientDriverExtentionFileTransfer = (*handler)(nil)
	_ ftpserver.ClientDriverExtensionRemoveDir    = (*handler)(nil)
)

// Left out on purpose: ftpserver.ClientDriverExtensionFileList. Its
// ReadDir returns a whole directory at once; without it ftpserverlib
// (patched, see third_party/ftpserverlib/SYNCER.md) opens the directory
// with Open and sends LIST, NLST, MLSD and STAT in batches as it reads
// them, so a listing of any size takes bounded memory.

// newHandler opens the account's view of the archive, creating an agent's
// home at its first login.
func (s *Server) newHandler(sess *session, u accounts.User) (*handler, error) {
	h := &handler{s: s, sess: sess, name: u.Name, home: u.Home, admin: u.Admin}
	if u.Admin || u.Home == "/" {
		h.root, h.base = s.root, "/"
		return h, nil
	}
	rel := strings.TrimPrefix(u.Home, "/")
	if err := s.mkdirAll(s.root, rel); err != nil {
		return nil, err
	}
	s.flush.ancestorsChanged(u.Home)
	r, err := s.root.OpenRoot(rel)
	if err != nil {
		return nil, err
	}
	h.root, h.base, h.own = r, u.Home, true
	return h, nil
}

func (h *handler) close() {
	if h.own {
		_ = h.root.Close()
	}
}

// account returns the account as the accounts.DB has it now, so that removed
// accounts and changed permissions take effect at once.
func (h *handler) account() (accounts.User, error) {
	u, ok := h.s.users.Lookup(h.name)
	if !ok {
		return accounts.User{}, fmt.Errorf("account %q no longer exists: %w", h.name, ErrPermission)
	}
	u = effectiveUser(u)
	if u.Home != h.home || u.Admin != h.admin {
		return accounts.User{}, fmt.Errorf("account %q changed, log in again: %w", h.name, ErrPermission)
	}
	return u, nil
}

// Permission letters (pyftpdlib's).
const (
	permCwd    = 'e'
	permList   = 'l'
	permRead   = 'r'
	permAppend = 'a'
	permDelete = 'd'
	permRename = 'f'
	permMkdir  = 'm'
	permWrite  = 'w'
	permChmod  = 'M'
	permMtime  = 'T'
)

// statPerm maps the FTP command that led to a Stat to its letter. A
// command not listed gets no access: new ftpserverlib commands fail
// closed.
var statPerm = map[string]byte{
	"CWD": permCwd, "XCWD": permCwd, "CDUP": permCwd, "XCUP": permCwd,
	"LIST": permList, "NLST": permList, "MLSD": permList, "MLST": permList,
	"STAT": permList, "SIZE": permList, "MDTM": permList, "AVBL": permList,
	"RNFR": permRename,
}

// resolve checks name and the account's letter for it and returns the
// path relative to h.root and the cleaned archive path.
func (h *handler) resolve(name string, letter byte) (rel, p string, err error) {
	if err := checkName(name); err != nil {
		return "", "", err
	}
	if !path.IsAbs(name) {
		// ftpserverlib always passes absolute paths; a relative one is a
		// LIST option ("-la") being probed.
		return "", "", fmt.Errorf("%s: %w", name, ErrNotFound)
	}
	p = path.Clean(name)
	u, err := h.account()
	if err != nil {
		return "", "", err
	}
	// The confinement rule: an agent has its letters under its home only.
	if !u.Admin && !pathWithin(p, u.Home) {
		return "", "", fmt.Errorf("%s: %w", p, ErrPermission)
	}
	if letter != 0 && !strings.ContainsRune(u.Perm, rune(letter)) {
		return "", "", fmt.Errorf("%s: %w (no %q permission)", p, ErrPermission, letter)
	}
	rel = strings.TrimPrefix(strings.TrimPrefix(p, h.base), "/")
	if rel == "" {
		rel = "."
	}
	return rel, p, nil
}

// pathWithin reports whether p is dir or below it (both clean and absolute).
func pathWithin(p, dir string) bool {
	return dir == "/" || p == dir || strings.HasPrefix(p, dir+"/")
}

// badNameError refuses a name; it matches ErrBadName and ftpserverlib's
// ErrFileNameNotAllowed (FTP 553 on STOR/APPE/RNTO).
type badNameError struct{ name, why string }

func (e *badNameError) Error() string {
	return fmt.Sprintf("%q: %s: %s", e.name, ErrBadName, e.why)
}

func (e *badNameError) Is(target error) bool {
	return target == ErrBadName || target == ftpserver.ErrFileNameNotAllowed
}

// checkName refuses names that FTP cannot carry faithfully: CR and LF
// would end or forge FTP replies and listing lines, and NUL truncates names
// in system calls. Names that are not UTF-8 are accepted and stored
// byte-exact: log files on the nodes have such names, and an archive that
// refused them would lose those logs (the viewers escape them for display).
func checkName(name string) error {
	if i := strings.IndexAny(name, "\x00\r\n"); i >= 0 {
		return &badNameError{name: name, why: "NUL, CR and LF are not allowed in names"}
	}
	return nil
}

// fsError translates a file-system error into the package's sentinels,
// naming the archive path (never the server's own directory).
func fsError(op, p string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s %s: %w", op, p, ErrNotFound)
	case errors.Is(err, fs.ErrExist):
		return fmt.Errorf("%s %s: %w", op, p, ErrExists)
	case errors.Is(err, fs.ErrPermission), isEscape(err):
		return fmt.Errorf("%s %s: %w", op, p, ErrPermission)
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		err = le.Err
	}
	return fmt.Errorf("%s %s: %v", op, p, err)
}

// isEscape recognises os.Root's refusal of a path (or symlink) that leads
// out of the root; the error has no exported sentinel.
func isEscape(err error) bool {
	return err != nil && strings.Contains(err.Error(), "path escapes from parent")
}

// Name implements afero.Fs.
func (h *handler) Name() string { return "syncer-archive" }

// Stat implements afero.Fs; the letter depends on the command (CWD needs
// e, SIZE/MDTM/LIST need l, RNFR needs f).
func (h *handler) Stat(name string) (os.FileInfo, error) {
	cmd := h.lastCommand()
	letter, ok := statPerm[cmd]
	if !ok {
		return nil, fmt.Errorf("%s: %w (command %s)", name, ErrPermission, cmd)
	}
	rel, p, err := h.resolve(name, letter)
	if err != nil {
		return nil, err
	}
	fi, err := h.root.Stat(rel)
	if err != nil {
		return nil, fsError("stat", p, err)
	}
	return fi, nil
}

func (h *handler) lastCommand() string {
	h.sess.mu.Lock()
	cc := h.sess.cc
	h.sess.mu.Unlock()
	if cc == nil {
		return ""
	}
	return strings.ToUpper(cc.GetLastCommand())
}

// Open opens a directory (l) or a file (r) read-only. ftpserverlib opens
// directories here to list them (reading them in batches) and files
// through GetHandle.
func (h *handler) Open(name string) (afero.File, error) {
	rel, p, err := h.resolve(name, permList)
	if err != nil {
		return nil, err
	}
	fi, err := h.root.Stat(rel)
	if err != nil {
		return nil, fsError("open", p, err)
	}
	if !fi.IsDir() {
		if _, _, err := h.resolve(name, permRead); err != nil {
			return nil, err
		}
	}
	f, err := h.root.Open(rel)
	if err != nil {
		return nil, fsError("open", p, err)
	}
	return f, nil
}

// OpenFile opens read-only like Open; writing is only possible through
// GetHandle, where the archive's rules (versions, REST, one writer) live.
func (h *handler) OpenFile(name string, flag int, _ os.FileMode) (afero.File, error) {
	if flag&(os.O_WRONLY|os.O_RDWR|os.O_APPEND|os.O_CREATE|os.O_TRUNC) != 0 {
		return nil, fmt.Errorf("%s: %w (writes go through uploads)", name, ErrPermission)
	}
	return h.Open(name)
}

// Create is refused: see OpenFile.
func (h *handler) Create(name string) (afero.File, error) {
	return h.OpenFile(name, os.O_CREATE|os.O_WRONLY, 0o644)
}

// Mkdir creates one directory (m).
func (h *handler) Mkdir(name string, _ os.FileMode) error {
	rel, p, err := h.resolve(name, permMkdir)
	if err != nil {
		return err
	}
	if err := h.s.mkdir(h.root, rel); err != nil {
		return fsError("mkdir", p, err)
	}
	h.s.flush.dirChanged(path.Dir(p))
	return nil
}

// MkdirAll creates a directory and its parents (m; SITE MKDIR).
func (h *handler) MkdirAll(name string, _ os.FileMode) error {
	rel, p, err := h.resolve(name, permMkdir)
	if err != nil {
		return err
	}
	if err := h.s.mkdirAll(h.root, rel); err != nil {
		return fsError("mkdir", p, err)
	}
	h.s.flush.ancestorsChanged(p)
	return nil
}

// Remove deletes a file (d; DELE). A file being uploaded is not removed.
func (h *handler) Remove(name string) error {
	rel, p, err := h.resolve(name, permDelete)
	if err != nil {
		return err
	}
	fi, err := h.root.Lstat(rel)
	if err != nil {
		return fsError("delete", p, err)
	}
	if fi.IsDir() {
		return fmt.Errorf("delete %s: is a directory (use RMD)", p)
	}
	if h.s.writers.busy(p) {
		return fmt.Errorf("delete %s: being uploaded: %w", p, ErrBusy)
	}
	return fsError("delete", p, h.root.Remove(rel))
}

// RemoveDir deletes an empty directory (d; RMD).
func (h *handler) RemoveDir(name string) error {
	rel, p, err := h.resolve(name, permDelete)
	if err != nil {
		return err
	}
	if rel == "." {
		return fmt.Errorf("remove %s: %w (the home directory stays)", p, ErrPermission)
	}
	fi, err := h.root.Lstat(rel)
	if err != nil {
		return fsError("remove directory", p, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("remove directory %s: not a directory", p)
	}
	return fsError("remove directory", p, h.root.Remove(rel))
}

// RemoveAll is refused (SITE RMDIR): deleting a whole tree of an archive
// in one command is too easy to do by mistake; delete files one by one.
func (h *handler) RemoveAll(name string) error {
	return fmt.Errorf("%s: %w (recursive delete is not supported)", name, ErrPermission)
}

// Rename moves a file or directory (f on both names). It never replaces an
// existing target, and refuses files being uploaded.
func (h *handler) Rename(oldname, newname string) error {
	relOld, pOld, err := h.resolve(oldname, permRename)
	if err != nil {
		return err
	}
	relNew, pNew, err := h.resolve(newname, permRename)
	if err != nil {
		return err
	}
	if relOld == "." || relNew == "." {
		return fmt.Errorf("rename %s: %w (the home directory stays)", pOld, ErrPermission)
	}
	if h.s.writers.busyUnder(pOld) || h.s.writers.busyUnder(pNew) {
		return fmt.Errorf("rename %s: being uploaded: %w", pOld, ErrBusy)
	}
	if _, err := h.root.Lstat(relNew); err == nil {
		return fmt.Errorf("rename %s to %s: %w", pOld, pNew, ErrExists)
	}
	if err := h.root.Rename(relOld, relNew); err != nil {
		return fsError("rename", pOld, err)
	}
	h.s.flush.dirChanged(path.Dir(pOld))
	h.s.flush.dirChanged(path.Dir(pNew))
	return nil
}

// Chmod changes permission bits (M; SITE CHMOD). Only the rwx bits of
// owner, group and others are honoured.
func (h *handler) Chmod(name string, mode os.FileMode) error {
	rel, p, err := h.resolve(name, permChmod)
	if err != nil {
		return err
	}
	return fsError("chmod", p, h.root.Chmod(rel, mode&0o777))
}

// Chown is always refused: ownership in the archive is the server's.
func (h *handler) Chown(name string, _, _ int) error {
	return fmt.Errorf("%s: %w (chown is not supported)", name, ErrPermission)
}

// Chtimes sets the modification time (MFMT): with T anywhere the account
// reaches, and for an agent account that may write or append (w or a) on
// the files of its own tree that are not superseded versions, so that an
// agent keeps its logs' times (the node's mtime, not the upload's) without
// the T letter, which lets an admin redate anything. Directories keep
// their own times. The index is told (activity.UploadTouched).
func (h *handler) Chtimes(name string, atime, mtime time.Time) error {
	u, err := h.account()
	if err != nil {
		return err
	}
	letter := byte(permMtime)
	if !u.Admin && !strings.ContainsRune(u.Perm, permMtime) && strings.ContainsAny(u.Perm, string([]byte{permWrite, permAppend})) {
		letter = 0 // the own-files rule below
		if _, _, ok := archive.VersionOf(path.Base(name)); ok {
			return fmt.Errorf("%s: %w (a superseded version keeps its time)", name, ErrPermission)
		}
	}
	rel, p, err := h.resolve(name, letter)
	if err != nil {
		return err
	}
	if letter == 0 {
		fi, err := h.root.Lstat(rel)
		if err != nil {
			return fsError("set time", p, err)
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%s: %w (only a file's time can be set)", p, ErrPermission)
		}
	}
	if err := h.root.Chtimes(rel, atime, mtime); err != nil {
		return fsError("set time", p, err)
	}
	h.s.touched(h.name, p)
	return nil
}
