package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"ta-defender-alerts/app/bridge"
	"ta-defender-alerts/app/defender"
	"ta-defender-alerts/app/hec"
)

func TestMetricsAndHealth(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	pump := bridge.Stats{Read: 120, Confirmed: 118, Skipped: 7, Rejected: 2, Windows: 3, Recovered: 40, Watermark: now.Add(-90 * time.Second), LastCommit: now.Add(-30 * time.Second)}
	graph := bridge.Stats{Read: 5, Confirmed: 5, LastCommit: now.Add(-30 * time.Second)}
	src := Sources{
		Feed: "endpoint-alerts",
		Pump: func() bridge.Stats { return pump },
		Defender: func() defender.Stats {
			return defender.Stats{CallsByStatus: map[int]int{200: 9, 429: 1}, LimiterWaits: 2}
		},
		HEC: func() hec.Stats {
			return hec.Stats{Batches: 4, Requests: 5, AckWaits: 4, AckWaitSum: 2 * time.Second, AckOverdue: 1, ChannelResets: 2, WindowMax: 16}
		},
		Now:      func() time.Time { return now },
		Interval: time.Minute,
		Started:  now.Add(-time.Hour),
	}
	h := Handler(src, Sources{Feed: "graph-alerts", Pump: func() bridge.Stats { return graph }, Now: src.Now, Interval: time.Minute, Started: src.Started})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`defender_alerts_alerts_read_total{feed="endpoint-alerts"} 120`, `defender_alerts_alerts_delivered_total{feed="endpoint-alerts"} 118`,
		`defender_alerts_alerts_skipped_total{feed="endpoint-alerts"} 7`, `defender_alerts_api_calls_total{feed="endpoint-alerts",status="429"} 1`,
		`defender_alerts_checkpoint_lag_seconds{feed="endpoint-alerts"} 90`, `defender_alerts_hec_batches_total{feed="endpoint-alerts",result="confirmed"} 4`,
		`defender_alerts_hec_ack_latency_seconds_sum{feed="endpoint-alerts"} 2`, `defender_alerts_api_throttle_waits_total{feed="endpoint-alerts"} 2`,
		`defender_alerts_alerts_recovered_total{feed="endpoint-alerts"} 40`, `defender_alerts_hec_batches_total{feed="endpoint-alerts",result="ack_overdue"} 1`,
		`defender_alerts_hec_channel_resets_total{feed="endpoint-alerts"} 2`, `defender_alerts_hec_window_max{feed="endpoint-alerts"} 16`,
		`defender_alerts_alerts_read_total{feed="graph-alerts"} 5`, `defender_alerts_alerts_delivered_total{feed="graph-alerts"} 5`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	if rec.Code != 200 {
		t.Errorf("healthz %d", rec.Code)
	}
	for i, stale := range []*bridge.Stats{&graph, &pump} { // each feed's staleness counts, named
		stale.LastCommit = now.Add(-10 * time.Minute)
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
		if rec.Code != 503 || !strings.Contains(rec.Body.String(), "feed "+[]string{"graph-alerts", "endpoint-alerts"}[i]+": no window committed") {
			t.Errorf("stale healthz: %d %s", rec.Code, rec.Body.String())
		}
		stale.LastCommit = now
	}
}
