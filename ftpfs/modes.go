package ftpfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// Default modes of what the server creates in the archive: readable by
// the server's user and group only. An archive holds other machines' logs;
// who else may read them is the operator's choice, not a default.
const (
	DefaultArchiveFileMode Mode = 0o640
	DefaultArchiveDirMode  Mode = 0o750
)

// Mode is a file's permission bits, written in octal with a leading 0
// ("0640"). It is a pflag.Value.
type Mode fs.FileMode

// String formats the mode as four octal digits.
func (m Mode) String() string { return fmt.Sprintf("%04o", uint32(m)) }

// Set parses an octal mode with a leading 0 ("0640", "0o640"). A number
// without it is refused rather than guessed at: "640" may be meant as
// octal, and a YAML 0640 reaches here as the decimal 416.
func (m *Mode) Set(s string) error {
	v := strings.TrimSpace(s)
	if !strings.HasPrefix(v, "0") || v == "0" {
		return fmt.Errorf("mode %q: want octal permission bits with a leading 0, e.g. 0640 (quote it in YAML)", s)
	}
	n, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimPrefix(v, "0o"), "0"), 8, 32)
	if err != nil || n > 0o777 {
		return fmt.Errorf("mode %q: want octal permission bits 0000 to 0777, e.g. 0640", s)
	}
	*m = Mode(n)
	return nil
}

// Type names the flag's value type for help texts (pflag.Value).
func (m *Mode) Type() string { return "MODE" }

// CheckArchiveModes reports what NewServer would refuse in the modes of
// ServerConfig.ArchiveFileMode and ArchiveDirMode (0 is the default, and
// fine), and the field it is in, so that a caller can refuse them before
// it creates anything.
func CheckArchiveModes(file, dir Mode) (field string, err error) {
	if file != 0 {
		if err := checkMode(file, 0o600); err != nil {
			return "ArchiveFileMode", err
		}
	}
	if dir != 0 {
		if err := checkMode(dir, 0o700); err != nil {
			return "ArchiveDirMode", err
		}
	}
	return "", nil
}

// checkMode says what is wrong with mode for what the server creates:
// the server's own user must keep the owner bits it needs (own), and
// other users may never write (the archive is evidence).
func checkMode(m Mode, own Mode) error {
	switch {
	case m&^0o777 != 0:
		return errors.New("only permission bits 0000 to 0777")
	case m&own != own:
		return fmt.Errorf("the server's own user needs %s (%04o)", fs.FileMode(own).String()[1:4], uint32(own))
	case m&0o002 != 0:
		return errors.New("others may not write into the archive")
	}
	return nil
}

// createFile opens rel beneath root for writing with flag, creating it
// with the archive's file mode if it does not exist. The mode of a new
// file is set exactly (the process's umask does not apply: the operator
// asked for this mode); an existing file keeps its own, which the
// operator may have changed. created says whether the file is new (its
// name is a new entry of its directory).
func (s *Server) createFile(root *os.Root, rel string, flag int) (f *os.File, created bool, err error) {
	mode := fs.FileMode(s.cfg.ArchiveFileMode)
	f, err = root.OpenFile(rel, flag|os.O_CREATE|os.O_EXCL, mode)
	switch {
	case err == nil:
		if err := f.Chmod(mode); err != nil {
			_ = f.Close()
			return nil, false, err
		}
		return f, true, nil
	case errors.Is(err, fs.ErrExist):
		f, err = root.OpenFile(rel, flag, 0)
		return f, false, err
	}
	return nil, false, err
}

// mkdir creates the directory rel beneath root with the archive's
// directory mode, exactly, but for the setgid bit: a directory made in a
// setgid directory keeps it (the kernel sets it), so that everything below
// an archive the operator made setgid keeps the group it chose.
func (s *Server) mkdir(root *os.Root, rel string) error {
	mode := fs.FileMode(s.cfg.ArchiveDirMode)
	if err := root.Mkdir(rel, mode); err != nil {
		return err
	}
	fi, err := root.Stat(rel)
	if err != nil {
		return err
	}
	return root.Chmod(rel, mode|fi.Mode()&fs.ModeSetgid)
}

// mkdirAll creates rel and its missing parents beneath root, each new one
// with the archive's directory mode; existing directories keep theirs.
func (s *Server) mkdirAll(root *os.Root, rel string) error {
	if rel == "" || rel == "." {
		return nil
	}
	parts := strings.Split(rel, "/")
	for i := range parts {
		p := strings.Join(parts[:i+1], "/")
		if p == "" {
			continue
		}
		err := s.mkdir(root, p)
		if err == nil || errors.Is(err, fs.ErrExist) {
			continue
		}
		return err
	}
	// The last one may exist as something else than a directory.
	if fi, err := root.Stat(rel); err != nil {
		return err
	} else if !fi.IsDir() {
		return &fs.PathError{Op: "mkdir", Path: rel, Err: errors.New("not a directory")}
	}
	return nil
}
