package bridge

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"ta-defender-alerts/app/checkpoint"
	"ta-defender-alerts/app/defendertest"
	"ta-defender-alerts/app/hec"
)

// A link planted where the dead-letter file goes must not lead the pump to append rejected
// alerts to the file it points at.
func TestDeadLetterRefusesPlantedLink(t *testing.T) {
	r := newRig(t, false, 50)
	badID := defendertest.AlertID(7)
	r.hec.Reject(func(ev []byte) bool { return strings.Contains(string(ev), badID) })
	victim := filepath.Join(t.TempDir(), "victim.conf")
	if err := os.WriteFile(victim, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dl := DeadLetterPath(r.dir, "tenant1")
	if err := os.Symlink(victim, dl); err != nil {
		if runtime.GOOS == "windows" {
			t.Skip("creating a symlink needs a privilege here:", err)
		}
		t.Fatal(err)
	}
	// One batch in flight: the batch after the bad alert's goes after its refusal, and so
	// shows it a rare bad one (with several, it may go before and prove nothing).
	_, err := r.drain(context.Background(), func(c *hec.Config) { c.MaxInFlight = 1 })
	if err == nil || !strings.Contains(err.Error(), dl) || !strings.Contains(err.Error(), "link") {
		t.Errorf("drain: %v, want an error naming the linked dead-letter file", err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious\n" {
		t.Errorf("the link's target was written: %q", b)
	}
}

// A record a sink other than HEC could not send is logged and dead-lettered in that sink's
// words (By, and its reason), not as Splunk's refusal; HEC's keep HEC's code and text.
func TestDeadLetterWordingFollowsTheSink(t *testing.T) {
	store, err := checkpoint.Open(t.TempDir(), "tenant1")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	sink := &scripted{onFlush: func(s *scripted) error {
		s.report(Outcome{Last: s.tags[9], N: 10, Sent: 3, Rejected: []Rejected{
			{ID: "a3", Index: 2, Envelope: []byte(`{"id":"a3"}`), Text: "message too large for UDP even when shortened", Refused: 1, By: "syslog output"},
			{ID: "a5", Index: 4, Envelope: []byte(`{"id":"a5"}`), Code: 6, Text: "Invalid data format", Refused: 2}}})
		return nil
	}}
	var log strings.Builder
	dl := filepath.Join(t.TempDir(), "dl.jsonl")
	p := New(Config{Store: store, Log: slog.New(slog.NewTextHandler(&log, nil)), Start: time.Hour, DeadLetter: dl},
		listSource{n: 10}, sink.open)
	if err := p.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	p.Close()
	for _, want := range []string{
		`level=ERROR msg="the syslog output could not send an alert (message too large for UDP even when shortened); it was written to the dead-letter file" alert_id=a3 file=` + dl,
		`level=ERROR msg="Splunk refused an alert as malformed; it was written to the dead-letter file" alert_id=a5 hec_code=6 hec_text="Invalid data format" file=` + dl,
	} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks\n%s\nin\n%s", want, log.String())
		}
	}
	b, err := os.ReadFile(dl)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 ||
		!strings.Contains(lines[0], `"alert_id":"a3","output":"syslog output","reason":"message too large for UDP even when shortened","envelope":{"id":"a3"}}`) ||
		strings.Contains(lines[0], "hec_") ||
		!strings.Contains(lines[1], `"alert_id":"a5","hec_code":6,"hec_text":"Invalid data format","envelope":{"id":"a5"}}`) {
		t.Errorf("dead-letter lines:\n%s", b)
	}
}
