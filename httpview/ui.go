package httpview

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/syncer-dev/syncer/ftpfs/accounts"
	"github.com/syncer-dev/syncer/ftpfs/activity"
	"github.com/syncer-dev/syncer/internal/defender"
	"github.com/syncer-dev/syncer/internal/iec"
	"github.com/syncer-dev/syncer/store"
)

// The viewer's pages: html/template pages whose scripts and styles are
// embedded in the binary (no CDN; the viewer works offline). Every page
// and state has a URL that can be shared:
//
//	/                           overview
//	/agents?sort=COL&order=desc agents
//	/agent/{agent}/{dir}?after= an agent's tree, paged
//	/view/{agent}/{path}?line=N&q=RE  a file at a line, with a search
//	/search?name=GLOB | ?q=RE&agent=ID&path=GLOB
//	/timeline?last=15m|since=T&until=T&level=L&agent=ID&q=RE&exclude=RE&live=1
//	                            every agent's lines in time order
//	/connections                live FTP sessions
//	/download/{agent}/{path}?format=zip|tar.gz
//
// Path elements in links are percent-encoded byte by byte, so names that
// are not UTF-8 reach the server unchanged; they are shown with U+FFFD.

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// PageSize is how many entries an agent's directory page shows; larger
// directories page with ?after=.
const PageSize = 500

// uiState is the viewer's part of a Server.
type uiState struct {
	pages     map[string]*template.Template
	assetHash string
	lines     *lineCache
	// closing ends live-tail streams when the server shuts down (see
	// CloseStreams).
	closing   chan struct{}
	closeOnce sync.Once
}

func newUIState() *uiState {
	u := &uiState{pages: map[string]*template.Template{}, lines: newLineCache(), closing: make(chan struct{})}
	h := sha256.New()
	_ = fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := staticFS.ReadFile(p)
			h.Write([]byte(p))
			h.Write(b)
		}
		return nil
	})
	u.assetHash = hex.EncodeToString(h.Sum(nil))[:12]
	funcs := template.FuncMap{
		"dirURL":     func(agent, rel string) string { return "/agent/" + escapePath(agent, rel) },
		"viewURL":    func(agent, rel string) string { return "/view/" + escapePath(agent, rel) },
		"rawURL":     func(agent, rel string) string { return "/raw/" + escapePath(agent, rel) },
		"dlURL":      func(agent, rel string) string { return "/download/" + escapePath(agent, rel) },
		"encPath":    func(agent, rel string) string { return escapePath(agent, rel) },
		"show":       display,
		"name":       markName,
		"base":       path.Base,
		"bytes":      iec.Bytes,
		"when":       when,
		"tm":         timeElem,
		"ago":        func(t time.Time) string { return ago(t, time.Now()) },
		"asset":      func(name string) string { return "/static/" + name + "?v=" + u.assetHash },
		"join":       strings.Join,
		"rate":       func(r accounts.Rate) string { return humanRate(int64(r)) },
		"statusCls":  func(s string) string { return "st-" + strings.ReplaceAll(s, " ", "-") },
		"pushIssues": pushIssuesOf,
	}
	for _, page := range []string{"overview", "agents", "agent", "view", "search", "connections", "error", "timeline"} {
		u.pages[page] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+page+".html"))
	}
	return u
}

// CloseStreams ends every live tail (server-sent events) at once: call it
// when the HTTP server shuts down (http.Server.RegisterOnShutdown), since
// Shutdown waits for open streams otherwise. Safe to call more than once.
func (s *Server) CloseStreams() {
	s.ui.closeOnce.Do(func() { close(s.ui.closing) })
}

// mountUI adds the pages, their assets and the viewer's own JSON
// endpoints (lines of a byte window, search in a file, live tail) to r;
// a is the group behind authentication.
func (s *Server) mountUI(r *gin.Engine, a *gin.RouterGroup) {
	s.ui = newUIState()
	// The assets are the same for everyone and reveal nothing about the
	// archive, so they are served without authentication (the browser
	// would otherwise ask for credentials twice on the first page).
	r.GET("/static/*file", s.static)
	a.GET("/", s.pageOverview)
	a.GET("/agents", s.pageAgents)
	a.GET("/agent/*path", s.pageAgent)
	a.GET("/view/*path", s.pageView)
	a.GET("/search", s.pageSearch)
	a.GET("/timeline", s.pageTimeline)
	a.GET("/connections", s.pageConnections)
	a.GET("/download/*path", s.heavy, s.rateLimited, s.download)
	a.GET("/api/v1/lines/*path", s.rateLimited, s.apiLines) // heavy for .gz only: apiLines
	a.GET("/api/v1/find/*path", s.heavy, s.apiFind)
	a.GET("/api/v1/tail/*path", s.rateLimited, s.apiTail)
}

func (s *Server) static(c *gin.Context) {
	name := strings.TrimPrefix(c.Param("file"), "/")
	if name == "" || strings.Contains(name, "..") {
		apiError(c, http.StatusNotFound, "not found")
		return
	}
	b, err := staticFS.ReadFile("static/" + name)
	if err != nil {
		apiError(c, http.StatusNotFound, "not found")
		return
	}
	ct := "application/octet-stream"
	switch path.Ext(name) {
	case ".js":
		ct = "text/javascript; charset=utf-8"
	case ".css":
		ct = "text/css; charset=utf-8"
	case ".svg":
		ct = "image/svg+xml"
	case ".png":
		ct = "image/png"
	}
	if c.Query("v") == s.ui.assetHash {
		c.Header("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		c.Header("Cache-Control", "no-cache")
	}
	c.Data(http.StatusOK, ct, b)
}

// page is what every template gets.
type page struct {
	Title  string
	Nav    string
	Viewer string
	Admin  bool
	Ver    string
	Data   any
}

func (s *Server) render(c *gin.Context, status int, name, title string, data any) {
	v := s.viewerOf(c)
	var buf bytes.Buffer
	err := s.ui.pages[name].ExecuteTemplate(&buf, "layout.html", page{Title: title, Nav: name, Viewer: v.Name, Admin: v.Admin, Ver: s.cfg.Overview.Version, Data: data})
	if err != nil {
		s.internal(c, fmt.Errorf("render %s: %w", name, err))
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Data(status, "text/html; charset=utf-8", buf.Bytes())
}

// pageError shows a short message on an HTML page.
func (s *Server) pageError(c *gin.Context, status int, msg string) {
	v := s.viewerOf(c)
	var buf bytes.Buffer
	_ = s.ui.pages["error"].ExecuteTemplate(&buf, "layout.html", page{Title: http.StatusText(status), Viewer: v.Name, Admin: v.Admin, Data: errorPage{Status: status, Msg: msg}})
	c.Header("Cache-Control", "no-store")
	c.Data(status, "text/html; charset=utf-8", buf.Bytes())
	c.Abort()
}

type errorPage struct {
	Status int
	Msg    string
}

// escapePath makes the URL path of agent's rel: each element
// percent-encoded byte by byte (url.PathEscape leaves no '/' and encodes
// every byte that is not UTF-8 text).
func escapePath(agent, rel string) string {
	var b strings.Builder
	b.WriteString(url.PathEscape(agent))
	if rel == "" {
		return b.String()
	}
	for _, el := range strings.Split(rel, "/") {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(el))
	}
	return b.String()
}

// display makes a name or line safe to show: bytes that are not UTF-8
// become U+FFFD (html/template escapes the rest).
func display(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

func humanRate(n int64) string {
	if n <= 0 {
		return "unlimited"
	}
	return iec.Rate(float64(n))
}

func when(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// timeElem is t as a <time> element, in UTC with the zone named; the
// page's script shows it in the zone the viewer chose.
func timeElem(t time.Time) template.HTML {
	if t.IsZero() {
		return "—"
	}
	u := t.UTC()
	return template.HTML(`<time datetime="` + u.Format(time.RFC3339Nano) + `">` + u.Format("2006-01-02 15:04:05") + ` UTC</time>`)
}

func ago(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

// crumb is one breadcrumb link.
type crumb struct {
	Name, URL string
}

func crumbs(agent, rel string) []crumb {
	out := []crumb{{"agents", "/agents"}, {display(agent), "/agent/" + escapePath(agent, "")}}
	if rel == "" {
		return out
	}
	els := strings.Split(rel, "/")
	for i := range els {
		out = append(out, crumb{display(els[i]), "/agent/" + escapePath(agent, strings.Join(els[:i+1], "/"))})
	}
	return out
}

// totals are the overview's counts over the agents the viewer may see.
func (s *Server) totals(v viewer) store.IndexStats {
	if v.Admin {
		return s.idx.Stats()
	}
	var st store.IndexStats
	for _, a := range s.idx.Agents() {
		if v.sees("/" + a.ID) {
			st.Agents++
			st.Files += a.Files
			st.Bytes += a.Bytes
			st.Verified += a.Verified
			st.Pending += a.Pending
			st.Mismatch += a.Mismatch
			st.Incomplete += a.Incomplete
		}
	}
	return st
}

func (s *Server) pageOverview(c *gin.Context) {
	v := s.viewerOf(c)
	ready := true
	select {
	case <-s.idx.Ready():
	default:
		ready = false
	}
	s.render(c, http.StatusOK, "overview", "Overview", struct {
		Service   Overview
		Stats     store.IndexStats
		Ready     bool
		Conns     int
		Attention attention
	}{s.service(v), s.totals(v), ready, len(s.visibleConns(v)), s.attention(v)})
}

// attention is what the overview leads with: the agents that need a look.
type attention struct {
	// Counts per status of the agents v may see.
	Counts map[string]int
	// Rows are the late, failing and never seen agents, worst first (at
	// most maxAttentionRows); More counts the others.
	Rows []AgentJSON
	More int
}

const maxAttentionRows = 10

func (s *Server) attention(v viewer) attention {
	rows := s.agentRows(v)
	a := attention{Counts: map[string]int{}}
	for _, r := range rows {
		a.Counts[r.Status]++
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if ri, rj := statusRank[rows[i].Status], statusRank[rows[j].Status]; ri != rj {
			return ri < rj
		}
		return rows[i].ID < rows[j].ID
	})
	for _, r := range rows {
		switch r.Status {
		case store.AgentLate, store.AgentFailing, store.AgentNeverSeen:
			if len(a.Rows) < maxAttentionRows {
				a.Rows = append(a.Rows, r)
			} else {
				a.More++
			}
		}
	}
	return a
}

// agentRows lists the agents v may see, with the accounts of the users
// file that never pushed ("never seen"); the agents page, /api/v1/agents
// and the per-agent metrics all show this list. An agent whose tree no
// account may write any more (its account removed) is "retired": it keeps
// its archive and raises no alarm.
func (s *Server) agentRows(v viewer) []AgentJSON {
	now := s.now()
	var out []AgentJSON
	known := map[string]bool{}
	homes, names := map[string]string{}, map[string]bool{}
	if s.cfg.Users != nil {
		for _, u := range s.cfg.Users.List() {
			names[u.Name] = true
			if id, _, _ := strings.Cut(strings.TrimPrefix(u.Home, "/"), "/"); !u.Admin && id != "" {
				homes[id] = u.Name
			}
		}
	}
	for _, a := range s.idx.Agents() {
		known[a.ID] = true
		if !v.sees("/" + a.ID) {
			continue
		}
		st := a.Status(now)
		if _, home := homes[a.ID]; s.cfg.Users != nil && !home && !names[a.Account] {
			st = store.AgentRetired
		}
		out = append(out, agentJSON(a, st))
	}
	if s.cfg.Users != nil {
		for _, u := range s.cfg.Users.List() {
			if u.Admin {
				continue
			}
			id, _, _ := strings.Cut(strings.TrimPrefix(u.Home, "/"), "/")
			if id == "" || known[id] || !v.sees("/"+id) {
				continue
			}
			known[id] = true
			out = append(out, agentJSON(store.AgentRecord{ID: id, Account: u.Name}, store.AgentNeverSeen))
		}
	}
	return out
}

// agentSorts are the sortable columns of the agents page.
var agentSorts = map[string]func(a, b AgentJSON) int{
	"id":        func(a, b AgentJSON) int { return strings.Compare(a.ID, b.ID) },
	"host":      func(a, b AgentJSON) int { return strings.Compare(a.Host, b.Host) },
	"ip":        func(a, b AgentJSON) int { return strings.Compare(strings.Join(a.IPs, ","), strings.Join(b.IPs, ",")) },
	"last_seen": func(a, b AgentJSON) int { return a.LastSeen.Compare(b.LastSeen) },
	"files":     func(a, b AgentJSON) int { return cmpInt(a.Files, b.Files) },
	"bytes":     func(a, b AgentJSON) int { return cmpInt(a.Bytes, b.Bytes) },
	"version":   func(a, b AgentJSON) int { return strings.Compare(a.Version, b.Version) },
	"interval":  func(a, b AgentJSON) int { return cmpInt(int64(a.Schedule()), int64(b.Schedule())) },
	"status":    func(a, b AgentJSON) int { return cmpInt(int64(statusRank[a.Status]), int64(statusRank[b.Status])) },
}

// statusRank orders the statuses by how much they need attention, worst
// first: sorting the agents page by status puts the trouble on top.
var statusRank = map[string]int{
	store.AgentLate: 0, store.AgentFailing: 1, store.AgentNeverSeen: 2, store.AgentActive: 3, store.AgentRetired: 4,
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

type sortCol struct {
	Key, Label, URL, Mark string
}

func (s *Server) pageAgents(c *gin.Context) {
	rows := s.agentRows(s.viewerOf(c))
	key := c.Query("sort")
	cmp, ok := agentSorts[key]
	if !ok {
		key, cmp = "id", agentSorts["id"]
	}
	desc := c.Query("order") == "desc"
	sort.SliceStable(rows, func(i, j int) bool {
		r := cmp(rows[i], rows[j])
		if r == 0 {
			r = strings.Compare(rows[i].ID, rows[j].ID)
		}
		if desc {
			return r > 0
		}
		return r < 0
	})
	var cols []sortCol
	for _, col := range [][2]string{{"id", "Agent"}, {"host", "Host"}, {"ip", "IP"}, {"last_seen", "Last seen"},
		{"files", "Files"}, {"bytes", "Bytes"}, {"version", "Version"}, {"interval", "Schedule"}, {"status", "Status"}} {
		sc := sortCol{Key: col[0], Label: col[1], URL: "/agents?sort=" + col[0]}
		if col[0] == key {
			if desc {
				sc.Mark = "▼"
			} else {
				sc.Mark = "▲"
				sc.URL += "&order=desc"
			}
		}
		cols = append(cols, sc)
	}
	s.render(c, http.StatusOK, "agents", "Agents", struct {
		Rows []AgentJSON
		Cols []sortCol
	}{rows, cols})
}

// listedEntry is one row of a directory page.
type listedEntry struct {
	store.IndexEntry
	Status string
}

func (s *Server) pageAgent(c *gin.Context) {
	agent, rel, ok := archivePath(c)
	if !ok {
		s.pageError(c, http.StatusBadRequest, errBadPath)
		return
	}
	if agent == "" {
		c.Redirect(http.StatusFound, "/agents")
		return
	}
	v := s.viewerOf(c)
	p := fullPath(agent, rel)
	if hidden(rel) || !v.sees(p) {
		s.pageError(c, http.StatusNotFound, "no such directory")
		return
	}
	e, ok := s.lookup(c, agent, rel, func() { s.pageError(c, http.StatusNotFound, "no such directory in the archive") })
	if !ok {
		return
	}
	if !e.Dir {
		c.Redirect(http.StatusFound, "/view/"+escapePath(agent, rel))
		return
	}
	after := c.Query("after")
	es, more, err := s.idx.List(agent, rel, after, PageSize)
	if err != nil {
		s.internal(c, err)
		return
	}
	var rows []listedEntry
	var dirs, files int
	for _, e := range es {
		ep := fullPath(agent, e.Path)
		if (rel == "" && hidden(e.Path)) || (!v.can(ep, 'l') && !(e.Dir && v.sees(ep))) {
			continue
		}
		if e.Dir {
			dirs++
		} else {
			files++
		}
		rows = append(rows, listedEntry{e, e.Status().String()})
	}
	next := ""
	if more && len(es) > 0 {
		next = "?after=" + url.QueryEscape(es[len(es)-1].Name())
	}
	rec, _ := s.idx.Agent(agent)
	parent, _ := path.Split(rel)
	s.render(c, http.StatusOK, "agent", escapeName(agent)+" "+escapeName("/"+rel), struct {
		Agent, Rel, Parent string
		Crumbs             []crumb
		Record             store.AgentRecord
		Status             string
		Rows               []listedEntry
		Dirs               int
		Files              int
		Next               string
		Paged              bool
		CanRead            bool
	}{agent, rel, strings.TrimSuffix(parent, "/"), crumbs(agent, rel), rec, rec.Status(s.now()), rows, dirs, files, next, after != "", v.can(p, 'r')})
}

func (s *Server) pageView(c *gin.Context) {
	agent, rel, ok := archivePath(c)
	if !ok {
		s.pageError(c, http.StatusBadRequest, errBadPath)
		return
	}
	v := s.viewerOf(c)
	p := fullPath(agent, rel)
	if agent == "" || rel == "" || hidden(rel) || !v.can(p, 'l') {
		s.pageError(c, http.StatusNotFound, "no such file")
		return
	}
	e, ok := s.lookup(c, agent, rel, func() { s.pageError(c, http.StatusNotFound, "no such file in the archive") })
	if !ok {
		return
	}
	if e.Dir {
		c.Redirect(http.StatusFound, "/agent/"+escapePath(agent, rel))
		return
	}
	versions, _ := s.idx.Versions(agent, rel)
	canRead := v.can(p, 'r')
	binary, gz := false, isGz(rel)
	if canRead {
		if ct, err := s.openContent(agent, rel); err == nil {
			binary = ct.binary(c.Request.Context())
			ct.Close()
		}
	}
	parent, _ := path.Split(rel)
	s.render(c, http.StatusOK, "view", escapeName(path.Base(rel)), struct {
		Agent, Rel, Parent string
		Crumbs             []crumb
		Entry              store.IndexEntry
		Status             string
		Versions           []store.IndexEntry
		CanRead            bool
		Binary, Gz, Live   bool
	}{agent, rel, strings.TrimSuffix(parent, "/"), crumbs(agent, rel), e, e.Status().String(), versions, canRead, binary, gz, s.isLive(agent, rel, gz)})
}

func (s *Server) pageSearch(c *gin.Context) {
	agents, chosen := s.agentChoice(c)
	s.render(c, http.StatusOK, "search", "Search", struct {
		Name, Q, Path, Max, Timeout, Since, Until string
		ByTime                                    bool
		Agents                                    []string
		Chosen                                    map[string]bool
	}{c.Query("name"), c.Query("q"), c.Query("path"), c.DefaultQuery("max", "500"), c.DefaultQuery("timeout", "20s"),
		c.Query("since"), c.Query("until"), c.Query("order") == "time", agents, chosen})
}

func (s *Server) visibleConns(v viewer) []activity.ConnInfo {
	var out []activity.ConnInfo
	for _, ci := range s.cfg.Connections() {
		if v.Admin || (ci.User != "" && ci.User == v.Name) {
			out = append(out, ci)
		}
	}
	return out
}

// pageConnections shows the FTP sessions, and to admins the bans in
// force, each with a button that lifts it (DELETE /api/v1/bans/ADDR).
func (s *Server) pageConnections(c *gin.Context) {
	v := s.viewerOf(c)
	conns := s.visibleConns(v)
	sort.Slice(conns, func(i, j int) bool { return conns[i].ID < conns[j].ID })
	showBans := v.Admin && s.cfg.Defender != nil
	var bans []defender.Ban
	if showBans {
		bans = s.cfg.Defender.Bans()
	}
	s.render(c, http.StatusOK, "connections", "FTP connections", struct {
		Conns    []activity.ConnInfo
		ShowBans bool
		Bans     []defender.Ban
	}{conns, showBans, bans})
}

// pushIssues is what an agent's last push reported that the archive may
// lack: logs whose last lines could not be archived (rotated away before
// the push found them) and files that failed.
type pushIssues struct {
	FilesUnrecoverable int64             `json:"files_unrecoverable"`
	BytesUnrecoverable int64             `json:"bytes_unrecoverable"`
	FilesFailed        int64             `json:"files_failed"`
	Errors             []store.PushError `json:"errors"`
}

// pushIssuesOf reads them from the raw last_push summary; nil when there
// are none (or the summary is missing or unreadable).
func pushIssuesOf(raw json.RawMessage) *pushIssues {
	var p pushIssues
	if len(raw) == 0 || json.Unmarshal(raw, &p) != nil || (p.FilesUnrecoverable == 0 && p.FilesFailed == 0) {
		return nil
	}
	if len(p.Errors) > 2*maxShownErrors {
		p.Errors = p.Errors[:2*maxShownErrors]
	}
	return &p
}
