package httpview

import (
	"net/http"
	"sort"

	"github.com/gin-gonic/gin"
)

// timelineLasts are the relative ranges the timeline page offers.
var timelineLasts = []string{"5m", "15m", "1h", "6h", "24h", "7d"}

// pageTimeline shows /timeline: the lines of every agent in a time range,
// in time order, from /api/v1/timeline (the page's script reads the
// query: since/until or last, level, agent, path, q, exclude, live).
func (s *Server) pageTimeline(c *gin.Context) {
	agents, chosen := s.agentChoice(c)
	last := c.Query("last")
	if c.Query("since") == "" && last == "" {
		last = "15m"
	}
	s.render(c, http.StatusOK, "timeline", "Timeline", struct {
		Since, Until, Last, Level, Path, Q, Exclude string
		Live                                        bool
		Lasts, Levels, Agents                       []string
		Chosen                                      map[string]bool
	}{c.Query("since"), c.Query("until"), last, c.Query("level"), c.Query("path"), c.Query("q"), c.Query("exclude"), c.Query("live") == "1",
		timelineLasts, []string{"crit", "error", "warn", "notice", "info", "debug"}, agents, chosen})
}

// agentChoice is the agent filter of the search and timeline pages: the
// ids of the agents the viewer may see, sorted, and those the query's
// agent parameters chose.
func (s *Server) agentChoice(c *gin.Context) (agents []string, chosen map[string]bool) {
	for _, r := range s.agentRows(s.viewerOf(c)) {
		agents = append(agents, r.ID)
	}
	sort.Strings(agents)
	chosen = map[string]bool{}
	for _, a := range c.QueryArray("agent") {
		chosen[a] = true
	}
	return agents, chosen
}
