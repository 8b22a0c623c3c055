package httpview

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/syncer-dev/syncer/store"
)

// download answers GET /download/{agent}/{path}: a file goes to /raw as an
// attachment; a directory (or an agent's whole tree) is streamed as
// ?format=tar.gz (the default) or zip, built while it is sent, so its
// size does not matter. Each file is archived with the size it had when
// it was opened (later appends are left out); if a file cannot be read to
// that size the stream is broken off, so that a truncated download shows
// as a failed one, never as a complete archive missing bytes.
func (s *Server) download(c *gin.Context) {
	agent, rel, ok := archivePath(c)
	if !ok {
		return
	}
	v := s.viewerOf(c)
	p := fullPath(agent, rel)
	if agent == "" || hidden(rel) || !v.can(p, 'r') {
		apiError(c, http.StatusNotFound, "not found")
		return
	}
	e, ok := s.lookup(c, agent, rel, func() { apiError(c, http.StatusNotFound, "not found") })
	if !ok {
		return
	}
	if !e.Dir {
		c.Redirect(http.StatusFound, "/raw/"+escapePath(agent, rel)+"?download=1")
		return
	}
	format := c.DefaultQuery("format", "tar.gz")
	if format != "tar.gz" && format != "zip" {
		apiError(c, http.StatusBadRequest, "format must be tar.gz or zip")
		return
	}
	base := agent
	if rel != "" {
		base = path.Base(rel)
	}
	fname := escapeName(base) + "." + format
	h := c.Writer.Header()
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": fname}))
	h.Set("Cache-Control", "no-store")
	var aw archiveWriter
	if format == "zip" {
		h.Set("Content-Type", "application/zip")
		aw = &zipArchive{w: zip.NewWriter(c.Writer)}
	} else {
		h.Set("Content-Type", "application/gzip")
		zw, _ := gzip.NewWriterLevel(c.Writer, gzip.BestSpeed)
		aw = &tarArchive{zw: zw, w: tar.NewWriter(zw)}
	}
	c.Status(http.StatusOK)
	ctx := c.Request.Context()
	err := s.walkDir(ctx, agent, rel, func(fe store.IndexEntry) error {
		if hidden(fe.Path) || !v.can(fullPath(agent, fe.Path), 'r') {
			return nil
		}
		name := base + "/" + fe.Path[len(rel):]
		if rel == "" {
			name = base + "/" + fe.Path
		}
		return s.addToArchive(aw, agent, fe.Path, path.Clean(name))
	})
	if err == nil {
		err = aw.Close()
	}
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("directory download broken off", "agent", agent, "err", err)
		}
		// Break the connection: the archive must not look complete.
		panic(http.ErrAbortHandler)
	}
}

// walkDir calls fn for every file below agent's directory rel, depth
// first in name order, a page of the index at a time.
func (s *Server) walkDir(ctx context.Context, agent, rel string, fn func(store.IndexEntry) error) error {
	after := ""
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		es, more, err := s.idx.List(agent, rel, after, DefaultListLimit)
		if err != nil {
			return err
		}
		for _, e := range es {
			if e.Dir {
				if rel == "" && hidden(e.Path) {
					continue
				}
				if err := s.walkDir(ctx, agent, e.Path, fn); err != nil && !errors.Is(err, store.ErrNoEntry) {
					return err
				}
				continue
			}
			if err := fn(e); err != nil {
				return err
			}
		}
		if !more || len(es) == 0 {
			return nil
		}
		after = es[len(es)-1].Name()
	}
}

func (s *Server) addToArchive(aw archiveWriter, agent, rel, name string) error {
	f, fi, err := s.openArchived(agent, rel)
	if err != nil {
		return nil // gone since it was indexed (or a link out of the root)
	}
	defer f.Close()
	w, err := aw.Create(name, fi.Size(), fi.ModTime())
	if err != nil {
		return fmt.Errorf("archive %s: %w", name, err)
	}
	if _, err := io.CopyN(w, f, fi.Size()); err != nil {
		return fmt.Errorf("archive %s: %w", name, err)
	}
	return nil
}

// archiveWriter is a tar.gz or zip stream.
type archiveWriter interface {
	Create(name string, size int64, mtime time.Time) (io.Writer, error)
	Close() error
}

type tarArchive struct {
	zw *gzip.Writer
	w  *tar.Writer
}

func (a *tarArchive) Create(name string, size int64, mtime time.Time) (io.Writer, error) {
	hdr := &tar.Header{Name: name, Size: size, Mode: 0o644, Typeflag: tar.TypeReg, ModTime: mtime}
	if !utf8.ValidString(name) {
		// PAX records are UTF-8; GNU long names carry any bytes.
		hdr.Format = tar.FormatGNU
	}
	if err := a.w.WriteHeader(hdr); err != nil {
		return nil, err
	}
	return a.w, nil
}

func (a *tarArchive) Close() error {
	if err := a.w.Close(); err != nil {
		return err
	}
	return a.zw.Close()
}

type zipArchive struct{ w *zip.Writer }

func (a *zipArchive) Create(name string, size int64, mtime time.Time) (io.Writer, error) {
	return a.w.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: mtime,
		NonUTF8: !utf8.ValidString(name), UncompressedSize64: uint64(size)})
}

func (a *zipArchive) Close() error { return a.w.Close() }
