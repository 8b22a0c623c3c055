package httpview

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/syncer-dev/syncer/internal/archive"
)

// FuzzArchivePath: for any request path under /raw/, archivePath either
// refuses it or yields a valid agent id and a relative path with no empty,
// "." or ".." element and no NUL, encoded separator or backslash. This is
// the rule that keeps every HTTP parameter path inside the archive.
func FuzzArchivePath(f *testing.F) {
	for _, s := range []string{
		"node1/a.log", "node1/../node2/x", "node1/%2e%2e/x", "node1/a%2fb", "node1/a%5cb", "%2e%2e/etc/passwd",
		"node1/a%00b", "node1//b", "node1/./b", "node1/100%25.log", "node1/a%252e%252e.log", "node1/%zz", "..%2f..",
	} {
		f.Add(s)
	}
	type got struct {
		agent, rel string
		ok         bool
	}
	var last got
	r := gin.New()
	r.GET("/raw/*path", func(c *gin.Context) {
		a, rel, ok := archivePath(c)
		last = got{a, rel, ok}
		if ok {
			c.Status(http.StatusOK)
		}
	})
	f.Fuzz(func(t *testing.T, p string) {
		u, err := url.Parse("/raw/" + p)
		if err != nil || u.Path == "" || !strings.HasPrefix(u.Path, "/raw/") {
			return
		}
		last = got{}
		req := &http.Request{Method: "GET", URL: &url.URL{Path: u.Path, RawPath: u.RawPath}, Header: http.Header{}}
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		if !last.ok || last.agent == "" {
			return
		}
		if !archive.ValidAgentID(last.agent) {
			t.Fatalf("%q: agent %q accepted", p, last.agent)
		}
		if last.rel == "" {
			return
		}
		for _, el := range strings.Split(last.rel, "/") {
			if el == "" || el == "." || el == ".." || strings.ContainsAny(el, "\x00\\") {
				t.Fatalf("%q: path %q accepted with element %q", p, last.rel, el)
			}
		}
	})
}
