package hec

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// A record may name its own sourcetype (an incident's alert beside the incident); the others
// keep the client's, and the size a batch reserves is the envelope's true size either way.
func TestRecordSourcetypeOverridesTheClients(t *testing.T) {
	e := newEncoder("h1", "defender:incidents", "ms365:defender:incident", "sec")
	b := &Batch{}
	at := time.Unix(1764547200, 250000000)
	recs := []Record{
		{Time: at, Event: []byte(`{"incidentId":7}`), ID: "7"},
		{Time: at, Event: []byte(`{"alertId":"da1"}`), ID: "da1", Sourcetype: "ms365:defender:incident:alerts"},
		{Time: at, Event: []byte(`{"incidentId":8}`), ID: "8"},
	}
	size := 0
	for _, r := range recs {
		size += e.envelopeSize(r)
		e.Append(b, r)
	}
	lines := strings.Split(strings.TrimSuffix(string(b.body), "\n"), "\n")
	want := []string{"ms365:defender:incident", "ms365:defender:incident:alerts", "ms365:defender:incident"}
	for i, l := range lines {
		var env struct {
			Host, Source, Sourcetype, Index string
			Event                           map[string]any
		}
		if err := json.Unmarshal([]byte(l), &env); err != nil {
			t.Fatalf("envelope %d: %v", i, err)
		}
		if env.Sourcetype != want[i] || env.Host != "h1" || env.Source != "defender:incidents" || env.Index != "sec" {
			t.Errorf("envelope %d: %+v, want sourcetype %s and the client's host, source and index", i, env, want[i])
		}
	}
	if len(b.body) > size {
		t.Fatalf("batch of %d bytes, but envelopeSize reserved %d", len(b.body), size)
	}
}
