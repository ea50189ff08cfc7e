package serve

import (
	"fmt"
	"io"
	"log"
	"math"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// latencyBuckets are the request latency histogram's upper bounds (s).
var latencyBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// batchBuckets are the device batch size histogram's upper bounds.
var batchBuckets = []float64{1, 2, 4, 8, 16, 32, 64}

// histogram is a Prometheus histogram: cumulative counts per bucket when
// written, plain counts while observing.
type histogram struct {
	bounds []float64
	counts []uint64 // len(bounds)+1, the last for +Inf
	sum    float64
	n      uint64
}

func newHistogram(bounds []float64) *histogram {
	return &histogram{bounds: bounds, counts: make([]uint64, len(bounds)+1)}
}

func (h *histogram) observe(v float64) {
	i := sort.SearchFloat64s(h.bounds, v) // first bound >= v
	h.counts[i]++
	h.sum += v
	h.n++
}

// write prints the histogram's series; labels is `k="v",` or "".
func (h *histogram) write(w io.Writer, name, labels string) {
	var cum uint64
	for i, b := range h.bounds {
		cum += h.counts[i]
		fmt.Fprintf(w, "%s_bucket{%sle=\"%s\"} %d\n", name, labels, formatFloat(b), cum)
	}
	cum += h.counts[len(h.bounds)]
	fmt.Fprintf(w, "%s_bucket{%sle=\"+Inf\"} %d\n", name, labels, cum)
	trim := labels
	if len(trim) > 0 {
		trim = "{" + trim[:len(trim)-1] + "}"
	}
	fmt.Fprintf(w, "%s_sum%s %s\n", name, trim, formatFloat(h.sum))
	fmt.Fprintf(w, "%s_count%s %d\n", name, trim, h.n)
}

func formatFloat(v float64) string {
	if math.IsInf(v, 1) {
		return "+Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// metrics are the server's counters, written in Prometheus' text format
// by hand.
type metrics struct {
	mu       sync.Mutex
	requests map[[2]string]uint64 // (endpoint, code)
	latency  map[string]*histogram
	batches  map[string]*histogram // device batch sizes by task kind
	devSecs  map[string]float64
	inflight atomic.Int64
	queue    func() int
	started  time.Time
	log      *log.Logger
}

func newMetrics(l *log.Logger) *metrics {
	return &metrics{
		requests: map[[2]string]uint64{}, latency: map[string]*histogram{},
		batches: map[string]*histogram{}, devSecs: map[string]float64{},
		started: time.Now(), log: l,
	}
}

func (m *metrics) logf(format string, args ...any) {
	if m.log != nil {
		m.log.Printf(format, args...)
	}
}

// request records one finished request.
func (m *metrics) request(endpoint string, code int, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests[[2]string{endpoint, strconv.Itoa(code)}]++
	h := m.latency[endpoint]
	if h == nil {
		h = newHistogram(latencyBuckets)
		m.latency[endpoint] = h
	}
	h.observe(d.Seconds())
}

// device records one run on the device worker.
func (m *metrics) device(kind string, batch int, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	h := m.batches[kind]
	if h == nil {
		h = newHistogram(batchBuckets)
		m.batches[kind] = h
	}
	h.observe(float64(batch))
	m.devSecs[kind] += d.Seconds()
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// ServeHTTP writes every metric.
func (m *metrics) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	m.mu.Lock()
	defer m.mu.Unlock()
	fmt.Fprintln(w, "# HELP blip_http_requests_total HTTP requests by endpoint and status code.")
	fmt.Fprintln(w, "# TYPE blip_http_requests_total counter")
	keys := make([][2]string, 0, len(m.requests))
	for k := range m.requests {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i][0] != keys[j][0] {
			return keys[i][0] < keys[j][0]
		}
		return keys[i][1] < keys[j][1]
	})
	for _, k := range keys {
		fmt.Fprintf(w, "blip_http_requests_total{endpoint=%q,code=%q} %d\n", k[0], k[1], m.requests[k])
	}
	fmt.Fprintln(w, "# HELP blip_http_request_duration_seconds HTTP request latency by endpoint.")
	fmt.Fprintln(w, "# TYPE blip_http_request_duration_seconds histogram")
	for _, e := range sortedKeys(m.latency) {
		m.latency[e].write(w, "blip_http_request_duration_seconds", fmt.Sprintf("endpoint=%q,", e))
	}
	fmt.Fprintln(w, "# HELP blip_device_batch_size Tasks per device run (caption requests are grouped).")
	fmt.Fprintln(w, "# TYPE blip_device_batch_size histogram")
	for _, k := range sortedKeys(m.batches) {
		m.batches[k].write(w, "blip_device_batch_size", fmt.Sprintf("kind=%q,", k))
	}
	fmt.Fprintln(w, "# HELP blip_device_seconds_total Time the device worker spent per task kind.")
	fmt.Fprintln(w, "# TYPE blip_device_seconds_total counter")
	for _, k := range sortedKeys(m.devSecs) {
		fmt.Fprintf(w, "blip_device_seconds_total{kind=%q} %s\n", k, formatFloat(m.devSecs[k]))
	}
	fmt.Fprintln(w, "# HELP blip_http_requests_in_flight Requests being served.")
	fmt.Fprintln(w, "# TYPE blip_http_requests_in_flight gauge")
	fmt.Fprintf(w, "blip_http_requests_in_flight %d\n", m.inflight.Load())
	if m.queue != nil {
		fmt.Fprintln(w, "# HELP blip_device_queue_depth Tasks waiting for the device worker.")
		fmt.Fprintln(w, "# TYPE blip_device_queue_depth gauge")
		fmt.Fprintf(w, "blip_device_queue_depth %d\n", m.queue())
	}
	fmt.Fprintln(w, "# HELP blip_uptime_seconds Seconds since the server started.")
	fmt.Fprintln(w, "# TYPE blip_uptime_seconds gauge")
	fmt.Fprintf(w, "blip_uptime_seconds %s\n", formatFloat(time.Since(m.started).Seconds()))
}
