// Package metrics serves the collector's figures for Prometheus (/metrics) and a liveness
// check (/healthz). It reads the counters the other packages keep, at scrape time, so the hot
// path pays nothing.
package metrics

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"ta-defender-alerts/app/bridge"
	"ta-defender-alerts/app/defender"
	"ta-defender-alerts/app/hec"
)

// Sources are where one feed's figures come from.
type Sources struct {
	Feed     string // the feed's name, the label feed of every figure
	Pump     func() bridge.Stats
	Defender func() defender.Stats
	HEC      func() hec.Stats
	Now      func() time.Time
	// Interval is the poll interval: /healthz fails when no window was committed for three.
	Interval time.Duration
	Started  time.Time
}

type collector struct {
	feeds []Sources
	descs map[string]*prometheus.Desc
}

// desc names a figure; every figure is labelled with its feed first.
func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("defender_alerts_"+name, help, append([]string{"feed"}, labels...), nil)
}

func newCollector(feeds []Sources) *collector {
	return &collector{feeds: feeds, descs: map[string]*prometheus.Desc{
		"read":       desc("alerts_read_total", "Alert versions handed on by the Defender reader."),
		"confirmed":  desc("alerts_delivered_total", "Alert versions confirmed by Splunk (acknowledged, or HTTP 200 without acks)."),
		"skipped":    desc("alerts_skipped_total", "Alert versions dropped because an earlier run delivered them (overlap)."),
		"rejected":   desc("alerts_rejected_total", "Alert versions Splunk refused, written to the dead-letter file."),
		"resent":     desc("alerts_resent_total", "Alert versions sent again after a lost reply or ack (possible duplicates)."),
		"calls":      desc("api_calls_total", "Defender API calls by HTTP status (0: no reply).", "status"),
		"throttle":   desc("api_throttle_waits_total", "Times a call waited for the rate limit or a Retry-After."),
		"throttleS":  desc("api_throttle_wait_seconds_total", "Time spent waiting for the rate limit or a Retry-After."),
		"tokens":     desc("token_requests_total", "Entra ID token requests."),
		"batches":    desc("hec_batches_total", "HEC batches by result.", "result"),
		"requests":   desc("hec_requests_total", "HEC event requests sent."),
		"ack":        desc("hec_ack_latency_seconds", "Time from a batch's first send to its acknowledgement."),
		"lag":        desc("checkpoint_lag_seconds", "Now minus the checkpoint's watermark."),
		"lastCommit": desc("last_success_timestamp_seconds", "When a window was last committed (Unix time)."),
		"windows":    desc("windows_total", "Windows read, delivered and committed."),
		"recovered":  desc("alerts_recovered_total", "Alert versions a restart did not send again: HEC confirmed, on the old channel, the batches the earlier process had in flight."),
		"window":     desc("hec_window_max", "The widest the window of HEC batches in flight has grown."),
		"resets":     desc("hec_channel_resets_total", "Times HEC was seen to have forgotten a channel (its batches were sent again on a new one)."),
	}}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	for _, src := range c.feeds {
		c.collect(ch, src)
	}
}

func (c *collector) collect(ch chan<- prometheus.Metric, src Sources) {
	counter := func(name string, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.CounterValue, v, append([]string{src.Feed}, labels...)...)
	}
	gauge := func(name string, v float64) {
		ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.GaugeValue, v, src.Feed)
	}
	if src.Pump != nil {
		p := src.Pump()
		counter("read", float64(p.Read))
		counter("confirmed", float64(p.Confirmed))
		counter("skipped", float64(p.Skipped))
		counter("rejected", float64(p.Rejected))
		counter("resent", float64(p.Resent))
		counter("windows", float64(p.Windows))
		counter("recovered", float64(p.Recovered))
		if !p.Watermark.IsZero() {
			gauge("lag", src.Now().Sub(p.Watermark).Seconds())
		}
		if !p.LastCommit.IsZero() {
			gauge("lastCommit", float64(p.LastCommit.UnixNano())/1e9)
		}
	}
	if src.Defender != nil {
		d := src.Defender()
		for status, n := range d.CallsByStatus {
			counter("calls", float64(n), strconv.Itoa(status))
		}
		counter("throttle", float64(d.LimiterWaits))
		counter("throttleS", d.LimiterWaiting.Seconds())
		counter("tokens", float64(d.TokenFetches))
	}
	if src.HEC != nil {
		h := src.HEC()
		counter("batches", float64(h.Batches), "confirmed")
		counter("batches", float64(h.Retries), "retried")
		counter("batches", float64(h.AckTimeouts), "ack_timeout")
		counter("batches", float64(h.AckOverdue), "ack_overdue")
		counter("resets", float64(h.ChannelResets))
		gauge("window", float64(h.WindowMax))
		counter("requests", float64(h.Requests))
		ch <- prometheus.MustNewConstSummary(c.descs["ack"], uint64(h.AckWaits), h.AckWaitSum.Seconds(), nil, src.Feed)
	}
}

// Handler returns the /metrics and /healthz handler of the process's feeds.
func Handler(feeds ...Sources) http.Handler {
	feeds = append([]Sources(nil), feeds...)
	for i := range feeds {
		if feeds[i].Now == nil {
			feeds[i].Now = time.Now
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(feeds), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		for _, src := range feeds {
			if err := healthy(src); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}

// healthy: a window of the feed was committed within three intervals (or the process is young).
func healthy(src Sources) error {
	if src.Pump == nil {
		return nil
	}
	limit := 3*src.Interval + time.Minute
	last := src.Pump().LastCommit
	if last.IsZero() {
		last = src.Started
	}
	if age := src.Now().Sub(last); age > limit {
		return fmt.Errorf("feed %s: no window committed for %v (limit %v): see the log", src.Feed, age.Round(time.Second), limit)
	}
	return nil
}

// Serve listens on addr until ctx ends.
func Serve(ctx context.Context, addr string, h http.Handler) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("DEFENDER_METRICS_ADDR %q: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	go func() { _ = srv.Serve(ln) }() // a failing metrics server does not stop the collector
	return ln.Addr(), nil
}
