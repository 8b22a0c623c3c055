package httpview

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/syncer-dev/syncer/ftpfs/activity"
	"github.com/syncer-dev/syncer/internal/archive"
	"github.com/syncer-dev/syncer/internal/pathglob"
	"github.com/syncer-dev/syncer/store"
)

// Paging and result limits.
const (
	DefaultListLimit   = 1000
	MaxListLimit       = 10000
	DefaultSearchLimit = 1000
	MaxSearchLimit     = 10000
)

// errBadPath is the one message for every refused path, so that the reply
// does not tell which rule it broke.
const errBadPath = "bad path: it must be a clean path inside the archive (no '..', '.', empty elements, NUL or encoded '/')"

// archivePath checks the path parameter of c (everything after the route
// prefix) and splits it into agent and the path below it. Why so strict:
// the path reaches the file system, so every form of escape ("..", an
// encoded slash that would hide a separator from the router, an absolute
// path, NUL) is refused before any lookup.
//
// The path is percent-decoded exactly once, element by element, from the
// escaped request path: "%25" is a literal '%' in a name ("100%25.log" is
// the file 100%.log) and "a%252e%252e.log" is the file a%2e%2e.log, never
// "..": nothing decodes the result a second time (gin matches routes on
// the already decoded URL.Path and the file system takes the bytes as
// they are), and the decoded path must equal what the router matched.
func archivePath(c *gin.Context) (agent, rel string, ok bool) {
	p, ok := pathParam(c)
	if !ok {
		apiError(c, http.StatusBadRequest, errBadPath)
		return "", "", false
	}
	p = strings.TrimSuffix(p, "/")
	if p == "" {
		return "", "", true
	}
	for _, el := range strings.Split(p, "/") {
		if el == "" || el == "." || el == ".." {
			apiError(c, http.StatusBadRequest, errBadPath)
			return "", "", false
		}
	}
	agent, rel, _ = strings.Cut(p, "/")
	if !archive.ValidAgentID(agent) {
		apiError(c, http.StatusBadRequest, errBadPath)
		return "", "", false
	}
	return agent, rel, true
}

// pathParam is the route's *path parameter without its leading '/',
// decoded once from c's escaped path element by element. It refuses an
// element whose decoding holds a '/' or '\' (an encoded separator the
// router did not see: "%2f", "%5c") or a NUL, an invalid escape, and any
// disagreement with the parameter the router matched.
func pathParam(c *gin.Context) (string, bool) {
	route := c.FullPath()
	star := strings.IndexByte(route, '*')
	if star < 0 {
		return "", c.Param("path") == ""
	}
	// The route prefix ("/raw/", "/api/v1/files/") is that many elements
	// of the escaped path, however its letters were encoded.
	skip := strings.Count(route[:star], "/")
	els := strings.Split(c.Request.URL.EscapedPath(), "/")
	if len(els) < skip {
		return "", false
	}
	els = els[skip:]
	for i, el := range els {
		d, err := url.PathUnescape(el)
		if err != nil || strings.ContainsAny(d, "/\\\x00") {
			return "", false
		}
		els[i] = d
	}
	p := strings.Join(els, "/")
	if "/"+p != c.Param("path") {
		return "", false
	}
	return p, true
}

// hidden reports whether rel is the agent's metadata.
func hidden(rel string) bool {
	return archive.IsMeta(rel)
}

func fullPath(agent, rel string) string {
	if rel == "" {
		return "/" + agent
	}
	return "/" + agent + "/" + rel
}

// EntryJSON is one file or directory in API replies.
type EntryJSON struct {
	Agent string `json:"agent"`
	Path  string `json:"path"`
	Name  string `json:"name"`
	// NameB64 and PathB64 hold the exact bytes of names that are not UTF-8
	// (Name and Path then show them with replacement characters).
	NameB64 string    `json:"name_b64,omitempty"`
	PathB64 string    `json:"path_b64,omitempty"`
	Type    string    `json:"type"` // "file" or "dir"
	Size    int64     `json:"size"`
	Mtime   time.Time `json:"mtime"`
	SHA256  string    `json:"sha256,omitempty"`
	Status  string    `json:"status,omitempty"`
	// NameFlags marks a path (any element) that may deceive a reader:
	// "hidden_chars" (invisible or direction-changing characters) and
	// "mixed_script" (a word mixing scripts); see names.go. Name and
	// Path stay exact.
	NameFlags []string `json:"name_flags,omitempty"`
}

// FileJSON is the metadata of one file.
type FileJSON struct {
	EntryJSON
	ExpectedSize   *int64      `json:"expected_size,omitempty"`
	ExpectedSHA256 string      `json:"expected_sha256,omitempty"`
	FirstUpload    *time.Time  `json:"first_upload,omitempty"`
	LastUpload     *time.Time  `json:"last_upload,omitempty"`
	Account        string      `json:"account,omitempty"`
	Versions       []EntryJSON `json:"versions"`
}

// ListingJSON is one page of a directory.
type ListingJSON struct {
	Agent   string      `json:"agent"`
	Path    string      `json:"path"`
	Type    string      `json:"type"` // "dir"
	Entries []EntryJSON `json:"entries"`
	// Next, when set, is the after= value of the next page.
	Next string `json:"next,omitempty"`
}

func entryJSON(e store.IndexEntry) EntryJSON {
	j := EntryJSON{Agent: e.Agent, Path: e.Path, Name: e.Name(), Size: e.Size, Mtime: e.Mtime(), Type: "file"}
	if e.MtimeNs == 0 {
		j.Mtime = time.Time{}
	}
	j.NameFlags = nameFlags(e.Path)
	if !utf8.ValidString(e.Path) {
		j.PathB64 = base64.StdEncoding.EncodeToString([]byte(e.Path))
		j.NameB64 = base64.StdEncoding.EncodeToString([]byte(e.Name()))
	}
	if e.Dir {
		j.Type, j.Size = "dir", 0
		return j
	}
	j.SHA256 = e.SHA256Hex()
	j.Status = e.Status().String()
	return j
}

func fileJSON(e store.IndexEntry, versions []store.IndexEntry) FileJSON {
	f := FileJSON{EntryJSON: entryJSON(e), Account: e.Account, Versions: []EntryJSON{}}
	if e.HasExpected {
		n := e.ExpectedSize
		f.ExpectedSize = &n
		f.ExpectedSHA256 = hexOf(e.ExpectedSHA256)
	}
	if e.FirstUploadNs != 0 {
		t := time.Unix(0, e.FirstUploadNs).UTC()
		f.FirstUpload = &t
	}
	if e.LastUploadNs != 0 {
		t := time.Unix(0, e.LastUploadNs).UTC()
		f.LastUpload = &t
	}
	for _, v := range versions {
		f.Versions = append(f.Versions, entryJSON(v))
	}
	return f
}

func hexOf(b [32]byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 64)
	for i, c := range b {
		out[2*i], out[2*i+1] = digits[c>>4], digits[c&15]
	}
	return string(out)
}

// intParam reads a positive integer query parameter, capped at max.
func intParam(c *gin.Context, name string, def, max int) (int, bool) {
	v := c.Query(name)
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		apiError(c, http.StatusBadRequest, name+" must be a positive integer")
		return 0, false
	}
	return min(n, max), true
}

// files answers GET /api/v1/files/{agent}/{path...}: a directory's
// listing (paged with after= and limit=) or a file's metadata.
func (s *Server) files(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	agent, rel, ok := archivePath(c)
	if !ok {
		return
	}
	v := s.viewerOf(c)
	limit, ok := intParam(c, "limit", DefaultListLimit, MaxListLimit)
	if !ok {
		return
	}
	after := c.Query("after")
	if agent == "" {
		s.listAgents(c, v, after, limit)
		return
	}
	p := fullPath(agent, rel)
	if hidden(rel) || !v.sees(p) {
		apiError(c, http.StatusNotFound, "not found")
		return
	}
	e, ok := s.lookup(c, agent, rel, func() { apiError(c, http.StatusNotFound, "not found") })
	if !ok {
		return
	}
	if !e.Dir {
		if !v.can(p, 'l') {
			apiError(c, http.StatusNotFound, "not found")
			return
		}
		vs, err := s.idx.Versions(agent, rel)
		if err != nil {
			s.internal(c, err)
			return
		}
		c.JSON(http.StatusOK, fileJSON(e, vs))
		return
	}
	if !v.can(p, 'l') && !v.sees(p) {
		apiError(c, http.StatusNotFound, "not found")
		return
	}
	es, more, err := s.idx.List(agent, rel, after, limit)
	if errors.Is(err, store.ErrNoEntry) {
		apiError(c, http.StatusNotFound, "not found")
		return
	}
	if err != nil {
		s.internal(c, err)
		return
	}
	out := ListingJSON{Agent: agent, Path: rel, Type: "dir", Entries: make([]EntryJSON, 0, len(es))}
	for _, e := range es {
		ep := fullPath(agent, e.Path)
		if !v.can(ep, 'l') && !(e.Dir && v.sees(ep)) {
			continue
		}
		out.Entries = append(out.Entries, entryJSON(e))
	}
	if more && len(es) > 0 {
		out.Next = es[len(es)-1].Name()
	}
	c.Data(http.StatusOK, "application/json; charset=utf-8", appendListingJSON(make([]byte, 0, 64+len(out.Entries)*256), &out))
}

// listAgents is the archive's top: one directory per agent.
func (s *Server) listAgents(c *gin.Context, v viewer, after string, limit int) {
	out := ListingJSON{Type: "dir", Entries: []EntryJSON{}}
	for _, a := range s.idx.Agents() {
		if a.ID <= after && after != "" || !v.sees("/"+a.ID) {
			continue
		}
		if len(out.Entries) == limit {
			out.Next = out.Entries[len(out.Entries)-1].Name
			break
		}
		e := EntryJSON{Agent: a.ID, Name: a.ID, Type: "dir"}
		if fi, err := s.root.Stat(a.ID); err == nil {
			e.Mtime = fi.ModTime().UTC()
		}
		out.Entries = append(out.Entries, e)
	}
	c.JSON(http.StatusOK, out)
}

// lookup returns the index entry of agent/rel; when there is none it calls
// notFound, and on any other error it answers 500, and reports false.
func (s *Server) lookup(c *gin.Context, agent, rel string, notFound func()) (store.IndexEntry, bool) {
	e, err := s.idx.Lookup(agent, rel)
	if errors.Is(err, store.ErrNoEntry) {
		notFound()
		return e, false
	}
	if err != nil {
		s.internal(c, err)
		return e, false
	}
	return e, true
}

func (s *Server) internal(c *gin.Context, err error) {
	s.log.Error("http request failed", "path", c.Request.URL.Path, "err", err)
	apiError(c, http.StatusInternalServerError, "internal error")
}

// AgentJSON is one agent in /api/v1/agents.
type AgentJSON struct {
	store.AgentRecord
	Status string `json:"status"`
	// Failed and Errors are the failures of the agent's last push, as
	// it reported them (at most maxShownErrors).
	Failed int64             `json:"last_push_failed"`
	Errors []store.PushError `json:"last_push_errors,omitempty"`
}

// maxShownErrors bounds the failures shown per agent.
const maxShownErrors = 5

func agentJSON(a store.AgentRecord, status string) AgentJSON {
	return AgentJSON{AgentRecord: a, Status: status, Failed: a.LastPushFailed(), Errors: a.LastPushErrors(maxShownErrors)}
}

// agents answers GET /api/v1/agents: agents of the index, and accounts of
// the users file that never pushed ("never seen").
func (s *Server) agents(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	out := s.agentRows(s.viewerOf(c))
	if out == nil {
		out = []AgentJSON{}
	}
	for i := range out {
		out[i].MetaMtimeNs = 0 // the index's bookkeeping, not the agent's
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	c.JSON(http.StatusOK, gin.H{"agents": out})
}

// search answers GET /api/v1/search?name=GLOB[&agent=ID][&limit=N] from
// the index. A glob without '/' matches file names, one with '/' the path
// below the agent's tree ('*' stays within one path element).
func (s *Server) search(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	pattern := c.Query("name")
	if pattern == "" {
		apiError(c, http.StatusBadRequest, "name is required (a glob, e.g. *.log)")
		return
	}
	g, err := compileGlob(pattern)
	if err != nil {
		apiError(c, http.StatusBadRequest, "bad glob in name: "+err.Error())
		return
	}
	limit, ok := intParam(c, "limit", DefaultSearchLimit, MaxSearchLimit)
	if !ok {
		return
	}
	agent := c.Query("agent")
	if agent != "" && !archive.ValidAgentID(agent) {
		apiError(c, http.StatusBadRequest, "bad agent id")
		return
	}
	byPath := strings.Contains(pattern, "/")
	v := s.viewerOf(c)
	results := []EntryJSON{}
	truncated := false
	errFull := errors.New("full")
	err = s.idx.Walk(c.Request.Context(), agent, func(e store.IndexEntry) error {
		if e.Dir {
			return nil
		}
		subject := e.Name()
		if byPath {
			subject = e.Path
		}
		if !g.Match(subject) || !v.can(fullPath(e.Agent, e.Path), 'l') {
			return nil
		}
		if len(results) == limit {
			truncated = true
			return errFull
		}
		results = append(results, entryJSON(e))
		return nil
	})
	if err != nil && !errors.Is(err, errFull) {
		if c.Request.Context().Err() != nil {
			return
		}
		s.internal(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"results": results, "truncated": truncated})
}

// connections answers GET /api/v1/connections: every live FTP session for
// an admin, an account's own sessions otherwise.
func (s *Server) connections(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	v := s.viewerOf(c)
	out := []activity.ConnInfo{}
	for _, ci := range s.cfg.Connections() {
		if v.Admin || (ci.User != "" && ci.User == v.Name) {
			if ci.Transfers == nil {
				ci.Transfers = []activity.TransferInfo{}
			}
			out = append(out, ci)
		}
	}
	c.JSON(http.StatusOK, gin.H{"connections": out})
}

// overview answers GET /api/v1/overview: the service and its totals.
func (s *Server) overview(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	// An account's totals cover only the agents it may see.
	v := s.viewerOf(c)
	st := s.totals(v)
	ready := true
	select {
	case <-s.idx.Ready():
	default:
		ready = false
	}
	c.JSON(http.StatusOK, gin.H{
		"service": s.service(v), "agents": st.Agents, "files": st.Files, "bytes": st.Bytes,
		"verified": st.Verified, "pending": st.Pending, "mismatch": st.Mismatch, "incomplete": st.Incomplete,
		"index_ready": ready, "agent_statuses": s.attention(s.viewerOf(c)).Counts,
	})
}

// service is the overview's description of the service as v may see it.
// Security: the archive's directory on disk is for admins only; an agent
// account has no use for it, and it tells an attacker with the
// account's password where to aim on the historian.
func (s *Server) service(v viewer) Overview {
	o := s.cfg.Overview
	if !v.Admin {
		o.ArchiveRoot = ""
	}
	return o
}

// Bounds of a glob from a query. Matching is linear in the path
// (pathglob), but its cost grows with the pattern too, and a search glob
// needs neither many bytes nor many wildcards.
const (
	maxGlobLen       = 512
	maxGlobWildcards = 16
)

// compileGlob compiles a search glob as the agent's --include does: '/'
// separates elements and '**/' also matches no directory. It never uses the
// glob library's backtracking engine: `*a*a*a*a*c*b` or `{a*,a}` repeated
// ten times would hold a CPU for seconds to hours per request.
func compileGlob(pattern string) (*pathglob.Pattern, error) {
	if len(pattern) > maxGlobLen || strings.Count(pattern, "*")+strings.Count(pattern, "?") > maxGlobWildcards {
		return nil, fmt.Errorf("pattern too long or too many wildcards (at most %d bytes, %d wildcards)", maxGlobLen, maxGlobWildcards)
	}
	return pathglob.Compile(pattern)
}
