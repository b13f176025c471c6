package wiring

import (
	"encoding/json"
	"testing"
	"time"

	"ta-defender-alerts/app/hectest"
	"ta-defender-alerts/app/siem"
)

// With shape detection, each current alert version reaches HEC as its detections (one per
// evidence item, the old SIEM API's fields), every one once, under the detections sourcetype;
// the window completes and a second drain sends nothing again.
func TestDetectionShapeToHEC(t *testing.T) {
	// The same tenant read twice: as alerts (what the detections must be made from), and as
	// detections.
	alertsCfg := tenantWith(t, 120, "hec")
	alertsHEC := hectest.New(hectest.Options{Token: hecToken})
	t.Cleanup(alertsHEC.Close)
	alertsCfg.HEC.URLs, alertsCfg.HEC.Token = []string{alertsHEC.URL}, hecToken
	cfg := *alertsCfg
	cfg.StateDir = t.TempDir()
	h := hectest.New(hectest.Options{Token: hecToken, Ack: true})
	t.Cleanup(h.Close)
	cfg.HEC.URLs, cfg.HEC.AckInterval = []string{h.URL}, 10*time.Millisecond
	cfg.HEC.Sourcetype, cfg.Detections = "ms:defender:atp:detections", true
	cfg.HEC.BatchBytes = 64 << 10 // batch boundaries fall among an alert's detections
	drainOnce(t, alertsCfg)
	drainOnce(t, &cfg)

	want := map[string]int{} // detections per alert id, from the alerts as the API gave them
	for _, e := range alertsHEC.Events() {
		ds, err := siem.Build(e.Raw)
		if err != nil {
			t.Fatal(err)
		}
		want[ds[0].AlertID] += len(ds)
	}
	got := map[string]int{}
	parts := map[string]bool{}
	for _, e := range h.Events() {
		var d siem.Detection
		if err := json.Unmarshal(e.Raw, &d); err != nil || e.Sourcetype != "ms:defender:atp:detections" || d.AlertID == "" {
			t.Fatalf("event %s (sourcetype %s): %v", e.Raw, e.Sourcetype, err)
		}
		got[d.AlertID]++
		key := d.AlertID + "/" + d.FullID
		if parts[key] {
			t.Errorf("detection %s indexed twice", key)
		}
		parts[key] = true
	}
	if total := len(h.Events()); total <= len(want) {
		t.Fatalf("%d detections of %d alerts: the stand-in's alerts should have several evidence items", total, len(want))
	}
	if len(got) != len(want) {
		t.Fatalf("detections of %d alerts indexed, want %d", len(got), len(want))
	}
	for id, n := range want {
		if got[id] != n {
			t.Errorf("alert %s: %d detections indexed, want %d", id, got[id], n)
		}
	}
	before := len(h.Events())
	drainOnce(t, &cfg)
	if n := len(h.Events()) - before; n != 0 {
		t.Errorf("a second drain sent %d events, want none", n)
	}
}
