//go:build !unix

package fuseview

import (
	"io/fs"
	"os"
	"path"
)

func sysAttr(fs.FileInfo, *Attr) {}

func isENOTDIR(error) bool { return false }

// readDirAttrs lists the open directory f (archive-relative path r) and
// stats every entry through the archive root.
func readDirAttrs(root *os.Root, r string, f *os.File) ([]DirEntry, error) {
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	return statEach(root, r, f, names)
}

// statEach stats the named entries of the directory r through the archive
// root, without following symlinks; names that are gone are left out.
func statEach(root *os.Root, r string, _ *os.File, names []string) ([]DirEntry, error) {
	out := make([]DirEntry, 0, len(names))
	for _, name := range names {
		fi, err := root.Lstat(path.Join(r, name))
		if err != nil {
			if os.IsNotExist(err) {
				continue
			}
			return nil, err
		}
		out = append(out, DirEntry{Name: name, Attr: attrOf(fi)})
	}
	return out, nil
}
