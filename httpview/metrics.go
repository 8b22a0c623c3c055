package httpview

import (
	"errors"
	"sync"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/syncer-dev/syncer/ftpfs/activity"
	"github.com/syncer-dev/syncer/store"
)

// Metrics are the historian's Prometheus metrics. Its owner counts what
// arrives with Received, FileReceived and UploadFailed; index and
// connection gauges are read at scrape time. Its methods are safe for
// concurrent use.
type Metrics struct {
	reg      *prometheus.Registry
	bytesIn  *prometheus.CounterVec
	filesIn  *prometheus.CounterVec
	failures *prometheus.CounterVec
	// timelineOpened and timelineSkipped count the files timeline queries
	// read, and those the index let them skip unopened.
	timelineOpened, timelineSkipped prometheus.Counter

	mu       sync.Mutex
	attached bool
}

// NewMetrics creates the metrics in a registry of their own.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "syncer_received_bytes_total", Help: "Bytes of files received over FTP, per agent.",
		}, []string{"agent"}),
		filesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "syncer_received_files_total", Help: "Uploads completed, per agent.",
		}, []string{"agent"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "syncer_upload_errors_total", Help: "Uploads that failed or were cut, per agent.",
		}, []string{"agent"}),
	}
	m.timelineOpened = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "syncer_timeline_files_opened_total", Help: "Files read by timeline queries.",
	})
	m.timelineSkipped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "syncer_timeline_files_skipped_total", Help: "Files timeline queries skipped unopened: the index showed them outside the range.",
	})
	m.reg.MustRegister(m.bytesIn, m.filesIn, m.failures, m.timelineOpened, m.timelineSkipped,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Received counts n more bytes received for agent (the bytes of log files
// written by uploads, as they arrive). Agent "/" stands for uploads outside
// any agent's tree.
func (m *Metrics) Received(agent string, n int64) {
	if n > 0 {
		m.bytesIn.WithLabelValues(agent).Add(float64(n))
	}
}

// FileReceived counts one upload of agent that completed.
func (m *Metrics) FileReceived(agent string) { m.filesIn.WithLabelValues(agent).Inc() }

// UploadFailed counts one upload of agent that failed or was cut.
func (m *Metrics) UploadFailed(agent string) { m.failures.WithLabelValues(agent).Inc() }

// register adds the gauges read from the index and the FTP server (once).
func (m *Metrics) register(ix *store.Index, conns func() []activity.ConnInfo, agents func() []AgentJSON) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.attached {
		return
	}
	m.attached = true
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	cs := []prometheus.Collector{
		gauge("syncer_ftp_connections", "Live FTP control connections.", func() float64 { return float64(len(conns())) }),
		gauge("syncer_index_files", "Files in the index.", func() float64 { return float64(ix.Stats().Files) }),
		gauge("syncer_index_bytes", "Bytes of the indexed files.", func() float64 { return float64(ix.Stats().Bytes) }),
		gauge("syncer_index_agents", "Agents in the index.", func() float64 { return float64(ix.Stats().Agents) }),
		gauge("syncer_index_disk_bytes", "Size of the index database on disk.", func() float64 { return float64(ix.DiskUsage()) }),
		&verifyCollector{ix: ix, desc: prometheus.NewDesc("syncer_verification_files",
			"Indexed files by verification status against their agent's SHA-256.", []string{"status"}, nil)},
		newAgentCollector(agents),
	}
	for _, c := range cs {
		if err := m.reg.Register(c); err != nil && !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
			panic(err) // a programming error: duplicate metric names
		}
	}
}

func (m *Metrics) handler() gin.HandlerFunc {
	h := promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
	return gin.WrapH(h)
}

// verifyCollector reports the verification counts in one consistent read.
type verifyCollector struct {
	ix   *store.Index
	desc *prometheus.Desc
}

func (v *verifyCollector) Describe(ch chan<- *prometheus.Desc) { ch <- v.desc }

func (v *verifyCollector) Collect(ch chan<- prometheus.Metric) {
	st := v.ix.Stats()
	for status, n := range map[string]int64{"verified": st.Verified, "pending": st.Pending, "mismatch": st.Mismatch, "incomplete": st.Incomplete} {
		ch <- prometheus.MustNewConstMetric(v.desc, prometheus.GaugeValue, float64(n), status)
	}
}

// agentCollector reports each agent's health, read at scrape time from
// the same list as the agents page, so that an alert can be written on
// it (scripts/prometheus/syncer-alerts.yml):
//
//	syncer_agent_last_seen_timestamp_seconds{agent}  last sign of life (0: never)
//	syncer_agent_status{agent,status}                 1 for its status, 0 for the others
//	syncer_agent_schedule_seconds{agent}              its declared period (0: none)
//	syncer_agent_last_push_failed_files{agent}        files its last push failed
type agentCollector struct {
	agents                             func() []AgentJSON
	lastSeen, status, schedule, failed *prometheus.Desc
}

// agentStatuses are the values of syncer_agent_status's status label.
var agentStatuses = []string{store.AgentActive, store.AgentLate, store.AgentFailing, store.AgentNeverSeen, store.AgentRetired}

func newAgentCollector(agents func() []AgentJSON) *agentCollector {
	return &agentCollector{
		agents: agents,
		lastSeen: prometheus.NewDesc("syncer_agent_last_seen_timestamp_seconds",
			"When the historian last heard from the agent (an upload or its heartbeat), Unix seconds; 0 if never.", []string{"agent"}, nil),
		status: prometheus.NewDesc("syncer_agent_status",
			"The agent's status: 1 for the one it has (active, late, failing, never seen, retired), 0 for the others.", []string{"agent", "status"}, nil),
		schedule: prometheus.NewDesc("syncer_agent_schedule_seconds",
			"How often the agent said it pushes (watch interval or push --expect-every); 0 if it did not.", []string{"agent"}, nil),
		failed: prometheus.NewDesc("syncer_agent_last_push_failed_files",
			"Files the agent's last push could not archive.", []string{"agent"}, nil),
	}
}

func (a *agentCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- a.lastSeen
	ch <- a.status
	ch <- a.schedule
	ch <- a.failed
}

func (a *agentCollector) Collect(ch chan<- prometheus.Metric) {
	for _, r := range a.agents() {
		seen := 0.0
		if !r.LastSeen.IsZero() {
			seen = float64(r.LastSeen.UnixNano()) / 1e9
		}
		ch <- prometheus.MustNewConstMetric(a.lastSeen, prometheus.GaugeValue, seen, r.ID)
		for _, st := range agentStatuses {
			v := 0.0
			if st == r.Status {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(a.status, prometheus.GaugeValue, v, r.ID, st)
		}
		ch <- prometheus.MustNewConstMetric(a.schedule, prometheus.GaugeValue, r.Schedule().Seconds(), r.ID)
		ch <- prometheus.MustNewConstMetric(a.failed, prometheus.GaugeValue, float64(r.Failed), r.ID)
	}
}

// Register adds collectors of other components (the storage tier's) to
// the /metrics registry.
func (m *Metrics) Register(cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := m.reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
