package rotsim

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/syncer-dev/syncer/internal/archive"
)

// Count is how an archive holds the lines written.
type Count struct {
	Written    int // distinct lines written
	Once       int // archived exactly once
	Missing    int // archived nowhere
	Duplicated int // archived more than once
	// Extra counts archived lines that were never written (torn or
	// merged lines, foreign files), each occurrence once.
	Extra int
	// MissingBytes is the size of the missing lines, newlines included.
	MissingBytes int64
	// Files and Bytes are the files counted and their size as stored
	// (a .gz compressed).
	Files int
	Bytes int64
	// Broken names the gzip files (relative to the directory) that did
	// not decompress to the end; their lines up to the damage are counted.
	Broken []string
}

// OK reports whether every line written is archived exactly once and
// nothing else is.
func (c Count) OK() bool {
	return c.Missing == 0 && c.Duplicated == 0 && c.Extra == 0 && len(c.Broken) == 0
}

// String is a one-line summary.
func (c Count) String() string {
	return fmt.Sprintf("%d lines: %d archived exactly once, %d more than once, %d missing, %d stray",
		c.Written, c.Once, c.Duplicated, c.Missing, c.Extra)
}

// Tally counts, for every line written, how often it appears in the files
// under archiveDir: every regular file outside .syncer directories (the
// agent's metadata), each gzip file (by its magic number, whatever its
// name) decompressed, so a .gz archived beside its plain copy counts twice.
// An archiveDir that does not exist holds no line.
func Tally(lines []string, archiveDir string) (Count, error) {
	c := Count{}
	counts, err := countLines(archiveDir, &c)
	if err != nil {
		return Count{}, err
	}
	seen := make(map[string]bool, len(lines))
	for _, l := range lines {
		if seen[l] {
			continue
		}
		seen[l] = true
		c.Written++
		switch counts[l] {
		case 0:
			c.Missing++
			c.MissingBytes += int64(len(l)) + 1
		case 1:
			c.Once++
		default:
			c.Duplicated++
		}
	}
	for l, n := range counts {
		if !seen[l] {
			c.Extra += n
		}
	}
	return c, nil
}

// LinesOnDisk returns every line of every regular file under dir (gzip
// files decompressed; .syncer directories left out), each once: what a
// node still holds, for writers whose own losses the caller does not want
// to count against the agent.
func LinesOnDisk(dir string) ([]string, error) {
	var c Count
	counts, err := countLines(dir, &c)
	if err != nil {
		return nil, err
	}
	if len(c.Broken) > 0 {
		return nil, fmt.Errorf("rotsim: damaged gzip files under %s: %s", dir, strings.Join(c.Broken, ", "))
	}
	lines := make([]string, 0, len(counts))
	for l := range counts {
		lines = append(lines, l)
	}
	return lines, nil
}

// countLines counts the lines of the files under dir, noting the files,
// their size and the broken ones in c.
func countLines(dir string, c *Count) (map[string]int, error) {
	counts := map[string]int{}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return counts, nil
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == archive.MetaDir {
			return filepath.SkipDir
		}
		if !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		c.Files++
		c.Bytes += fi.Size()
		broken, err := scanFile(p, counts)
		if broken {
			rel, _ := filepath.Rel(dir, p)
			c.Broken = append(c.Broken, rel)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("rotsim: tally %s: %w", dir, err)
	}
	return counts, nil
}

// scanFile counts the lines of p; broken means a gzip file that did not
// decompress to the end.
func scanFile(p string, counts map[string]int) (broken bool, err error) {
	f, err := os.Open(p)
	if err != nil {
		return false, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 64<<10)
	var r io.Reader = br
	gz := false
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		z, err := gzip.NewReader(br)
		if err != nil {
			return true, nil
		}
		defer z.Close()
		r, gz = z, true
	}
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64<<10), 16<<20)
	for s.Scan() {
		counts[s.Text()]++
	}
	if err := s.Err(); err != nil {
		if gz {
			return true, nil
		}
		return false, fmt.Errorf("%s: %w", p, err)
	}
	return false, nil
}
