package web

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"medguard/internal/audit"
	"medguard/internal/storage"
)

// Metrics are medguard's Prometheus metrics.
type Metrics struct {
	registry   *prometheus.Registry
	handler    http.Handler
	requests   *prometheus.CounterVec
	durations  *prometheus.HistogramVec
	batchSize  prometheus.Histogram
	batchTook  prometheus.Histogram
	auditAdded prometheus.Counter
}

// NewMetrics registers medguard's metrics, the Go runtime's and the
// process's. treeSize, if given, reports the audit tree's size.
func NewMetrics(db *storage.DB, log func() *audit.Log) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		registry: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "medguard_http_requests_total",
			Help: "HTTP requests by route and status code."}, []string{"route", "code"}),
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "medguard_http_request_duration_seconds",
			Help: "HTTP request latency by route.", Buckets: []float64{.001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5}},
			[]string{"route"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "medguard_audit_batch_entries",
			Help: "Audit entries committed per group commit.", Buckets: prometheus.ExponentialBuckets(1, 2, 12)}),
		batchTook: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "medguard_audit_batch_seconds",
			Help: "Duration of an audit group commit.", Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .5}}),
		auditAdded: prometheus.NewCounter(prometheus.CounterOpts{Name: "medguard_audit_entries_total",
			Help: "Audit entries appended by this process."}),
	}
	reg.MustRegister(m.requests, m.durations, m.batchSize, m.batchTook, m.auditAdded,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if log != nil {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "medguard_audit_tree_size",
			Help: "Entries in the audit log's Merkle tree."}, func() float64 {
			l := log()
			if l == nil {
				return 0
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			size, _, err := l.Head(ctx)
			if err != nil {
				return -1
			}
			return float64(size)
		}))
	}
	if log != nil {
		// The log's commit counts, one counter each.
		const commitsHelp = "Audit group commits of this process: as one statement without a transaction (PostgreSQL), or in a " +
			"transaction under the tree head's lock (SQLite always; PostgreSQL for mutations and when another server overtook)."
		const refusedHelp = "One-statement audit commits (PostgreSQL) the database refused because another server had moved " +
			"the tree head; the batch then went under the lock."
		const rangeHelp = "Times this process took the audit tree up again under the head's lock after other servers' " +
			"batches: from the range stored with the head, or read from the tiles (at start, or after a server of an earlier version)."
		const indexHelp = "Audit batches under the head's lock that asked the search index how far it goes, because the head " +
			"did not say it was complete (after a batch indexed later, or a server of an earlier version)."
		for _, c := range []struct {
			name, help string
			labels     prometheus.Labels
			pick       func(audit.CommitCounts) uint64
		}{
			{"medguard_audit_commits_total", commitsHelp, prometheus.Labels{"path": "statement"}, func(c audit.CommitCounts) uint64 { return c.Statement }},
			{"medguard_audit_commits_total", commitsHelp, prometheus.Labels{"path": "transaction"}, func(c audit.CommitCounts) uint64 { return c.Transaction }},
			{"medguard_audit_statements_refused_total", refusedHelp, nil, func(c audit.CommitCounts) uint64 { return c.Refused }},
			{"medguard_audit_range_loads_total", rangeHelp, prometheus.Labels{"from": "head"}, func(c audit.CommitCounts) uint64 { return c.RangeFromHead }},
			{"medguard_audit_range_loads_total", rangeHelp, prometheus.Labels{"from": "tiles"}, func(c audit.CommitCounts) uint64 { return c.RangeFromTiles }},
			{"medguard_audit_index_end_reads_total", indexHelp, nil, func(c audit.CommitCounts) uint64 { return c.IndexReads }},
			{"medguard_audit_batches_retried_total", "Audit batches tried again because their transaction failed, on a connection " +
				"PostgreSQL had ended (a restart, a failover), before any of them reached the database.", nil,
				func(c audit.CommitCounts) uint64 { return c.Unsent }},
		} {
			reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help, ConstLabels: c.labels}, func() float64 {
				if l := log(); l != nil {
					return float64(c.pick(l.Commits()))
				}
				return 0
			}))
		}
	}
	if db != nil {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "medguard_db_open_connections",
			Help: "Open connections of the write pool."}, func() float64 { return float64(db.Stats().OpenConnections) }))
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "medguard_db_connection_waits_total",
			Help: "Queries that waited for a connection of the write pool (on PostgreSQL, all of them share it: a rate that keeps growing says --db-connections is small for the load)."},
			func() float64 { return float64(db.Stats().WaitCount) }))
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "medguard_db_connection_wait_seconds_total",
			Help: "Time queries spent waiting for a connection of the write pool."},
			func() float64 { return db.Stats().WaitDuration.Seconds() }))
	}
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	return m
}

// Gauge registers a gauge read from fn at each scrape (e.g. the SIEM
// forwarder's lag).
func (m *Metrics) Gauge(name, help string, fn func() float64) {
	m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, fn))
}

// Counter registers a counter read from fn at each scrape (e.g. the
// entries detection read back from the log).
func (m *Metrics) Counter(name, help string, fn func() float64) {
	m.registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, fn))
}

// GaugeSet registers a gauge with one label, read from fn at each scrape:
// one series per key of the map fn returns (e.g. medguard_insecure_links
// by link).
func (m *Metrics) GaugeSet(name, help, label string, fn func() map[string]float64) {
	m.registry.MustRegister(&gaugeSet{desc: prometheus.NewDesc(name, help, []string{label}, nil), fn: fn})
}

// gaugeSet is the collector of GaugeSet.
type gaugeSet struct {
	desc *prometheus.Desc
	fn   func() map[string]float64
}

func (g *gaugeSet) Describe(ch chan<- *prometheus.Desc) { ch <- g.desc }

func (g *gaugeSet) Collect(ch chan<- prometheus.Metric) {
	for k, v := range g.fn() {
		ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, v, k)
	}
}

func (m *Metrics) observe(route string, code int, took time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
	m.durations.WithLabelValues(route).Observe(took.Seconds())
}

// ObserveBatch records one audit group commit (wire it to audit.Options.OnBatch).
func (m *Metrics) ObserveBatch(entries int, took time.Duration) {
	m.batchSize.Observe(float64(entries))
	m.batchTook.Observe(took.Seconds())
	m.auditAdded.Add(float64(entries))
}
