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
	m.reg.MustRegister(m.bytesIn, m.filesIn, m.failures,
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
func (m *Metrics) register(ix *store.Index, conns func() []activity.ConnInfo) {
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
