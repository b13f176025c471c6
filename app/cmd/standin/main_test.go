package main

import (
	"testing"
	"time"

	"ta-defender-alerts/app/defendertest"
	"ta-defender-alerts/app/hectest"
)

// Each mode's records are keyed by their own id and update time: an incident by its numeric
// incidentId (an incident's nested alerts carry the same incidentId but are not records).
func TestEventKey(t *testing.T) {
	for _, tt := range []struct {
		name          string
		mode          defendertest.Mode
		give          string
		wantID, wantK string
	}{
		{"alert API", defendertest.AlertAPIMode, `{"id":"da1_2","incidentId":7,"lastUpdateTime":"2026-01-01T00:00:00Z"}`, "da1_2", "da1_2@2026-01-01T00:00:00Z"},
		{"graph", defendertest.GraphMode, `{"id":"da1_2","incidentId":"7","lastUpdateDateTime":"2026-01-01T00:00:00.5Z"}`, "da1_2", "da1_2@2026-01-01T00:00:00.5Z"},
		{"incidents", defendertest.IncidentsMode, `{"incidentId":924521,"lastUpdateTime":"2026-01-01T00:00:00Z","alerts":[{"alertId":"da1_2","incidentId":924521,"lastUpdatedTime":"2025-01-01T00:00:00Z"}]}`, "924521", "924521@2026-01-01T00:00:00Z"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if id, k := eventKey(tt.mode, []byte(tt.give)); id != tt.wantID || k != tt.wantK {
				t.Errorf("got %q %q, want %q %q", id, k, tt.wantID, tt.wantK)
			}
		})
	}
}

func TestCheckLatency(t *testing.T) {
	for _, tt := range []struct {
		name        string
		give        hectest.Latency
		lost, busy  float64
		wantRefused bool
	}{
		{name: "none", give: hectest.Latency{}},
		{name: "long tail", give: hectest.Latency{Median: time.Second, P99: 3 * time.Second, Tail: 10 * time.Second, TailShare: 0.005}, lost: 0.05, busy: 0.1},
		{name: "tail share breaks p99", give: hectest.Latency{Median: time.Second, P99: 3 * time.Second, Tail: 10 * time.Second, TailShare: 0.02}, wantRefused: true},
		{name: "tail shorter than p99", give: hectest.Latency{Median: time.Second, P99: 3 * time.Second, Tail: 2 * time.Second, TailShare: 0.005}, wantRefused: true},
		{name: "negative", give: hectest.Latency{Median: -time.Second}, wantRefused: true},
		{name: "share over 1", give: hectest.Latency{}, lost: 1.5, wantRefused: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := checkLatency(tt.give, tt.lost, tt.busy)
			if (err != nil) != tt.wantRefused {
				t.Errorf("checkLatency(%+v, %v, %v) = %v, want refused %v", tt.give, tt.lost, tt.busy, err, tt.wantRefused)
			}
		})
	}
}

// TestWatch: only alerts added through /add are timed, and at their first indexing.
func TestWatch(t *testing.T) {
	w := newWatch()
	w.indexed("a") // not watched yet
	if _, ok := w.when("a"); ok {
		t.Fatal("an alert not added through /add was timed")
	}
	w.watch("a")
	w.indexed("a")
	first, ok := w.when("a")
	if !ok {
		t.Fatal("a watched alert indexed was not timed")
	}
	time.Sleep(2 * time.Millisecond)
	w.indexed("a") // a duplicate later
	if again, _ := w.when("a"); !again.Equal(first) {
		t.Errorf("a duplicate moved the time from %v to %v", first, again)
	}
}
