package httpview

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"syscall"

	"github.com/gin-gonic/gin"
	"github.com/syncer-dev/syncer/internal/archive"
)

// openArchived opens agent's file rel through the archive's os.Root: a
// symbolic link leading out of the root fails to open. Directories and
// anything that is not a regular file count as missing.
func (s *Server) openArchived(agent, rel string) (archive.File, fs.FileInfo, error) {
	var f archive.File
	var err error
	if s.cfg.Content != nil {
		f, err = s.cfg.Content.Open(agent, rel)
	} else {
		f, err = s.root.Open(agent + "/" + rel)
	}
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("%s/%s: not a regular file: %w", agent, rel, fs.ErrNotExist)
	}
	return f, fi, nil
}

// raw answers GET /raw/{agent}/{path...}: the file's bytes, straight from
// the disk (so a live tail sees appends before the index does), with
// Range, If-Modified-Since and ETag handled by http.ServeContent;
// ?download=1 makes it an attachment.
func (s *Server) raw(c *gin.Context) {
	agent, rel, ok := archivePath(c)
	if !ok {
		return
	}
	p := fullPath(agent, rel)
	if rel == "" || hidden(rel) || !s.viewerOf(c).can(p, 'r') {
		apiError(c, http.StatusNotFound, "not found")
		return
	}
	f, fi, err := s.openArchived(agent, rel)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || strings.Contains(err.Error(), "path escapes") || errors.Is(err, fs.ErrPermission) {
			apiError(c, http.StatusNotFound, "not found")
			return
		}
		s.internal(c, err)
		return
	}
	defer f.Close()
	if _, err := f.ReadAt(make([]byte, 1), 0); err != nil && errors.Is(err, syscall.EIO) {
		// Bytes kept in the storage tier that fail their checksum (or
		// cannot be fetched) are never sent: say so before any byte goes.
		s.log.Error("http: archived bytes cannot be served", "path", c.Request.URL.Path, "err", err)
		apiError(c, http.StatusBadGateway, "the archived bytes of this file cannot be read from the storage tier or fail their checksum")
		return
	}
	h := c.Writer.Header()
	name := path.Base(rel)
	// Never let a browser render archived bytes as HTML: logs are text,
	// compressed logs and everything else downloads.
	switch {
	case strings.HasSuffix(name, ".gz"):
		h.Set("Content-Type", "application/gzip")
	default:
		h.Set("Content-Type", "text/plain; charset=utf-8")
	}
	if c.Query("download") == "1" {
		h.Set("Content-Type", "application/octet-stream")
		// Escaped: a direction control would make a browser's save
		// dialog show "gol.exe" as a .log file.
		h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": escapeName(name)}))
	}
	h.Set("ETag", fmt.Sprintf(`"%x-%x"`, fi.Size(), fi.ModTime().UnixNano()))
	h.Set("Cache-Control", "no-cache")
	// Security: many tiny ranges make a multipart answer many times the
	// size of the file (each part carries its own headers): a cheap
	// request that costs the server bandwidth ("Apache Killer"). Beyond
	// maxRanges the Range header is ignored and the file sent once, which
	// RFC 9110 allows.
	if rg := c.Request.Header.Get("Range"); strings.Count(rg, ",") >= maxRanges {
		c.Request.Header.Del("Range")
	}
	var w http.ResponseWriter = sendfileWriter{c.Writer}
	if _, limited := c.Writer.(*rateWriter); limited {
		w = c.Writer // through the account's bucket, never sendfile
	}
	http.ServeContent(w, c.Request, name, fi.ModTime(), f)
}

// maxRanges is the most byte ranges one /raw request may ask for.
const maxRanges = 16

// sendfileWriter lets http.ServeContent's copy reach net/http's own
// io.ReaderFrom (sendfile(2) from the file to the socket); gin's writer
// does not offer one.
type sendfileWriter struct{ gin.ResponseWriter }

func (w sendfileWriter) ReadFrom(r io.Reader) (int64, error) {
	w.ResponseWriter.WriteHeaderNow()
	if u, ok := w.ResponseWriter.(interface{ Unwrap() http.ResponseWriter }); ok {
		if rf, ok := u.Unwrap().(io.ReaderFrom); ok {
			return rf.ReadFrom(r)
		}
	}
	return io.Copy(struct{ io.Writer }{w.ResponseWriter}, r)
}
