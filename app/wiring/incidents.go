package wiring

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"ta-defender-alerts/app/bridge"
	"ta-defender-alerts/app/checkpoint"
	"ta-defender-alerts/app/defender"
)

// The incidents feed sends one event per incident version and one per nested alert version
// not sent before (docs/feeds-design.md, section 3). An incident update that leaves its
// alerts unchanged sends the incident alone: the memory of alert versions sent
// (checkpoint.Sent) says which are new.
//
// How that stays lossless:
//   - a nested alert goes to the sink just before its incident, as a bridge.Record marked
//     Nested, keyed by the incident version's time and carrying the Position from before the
//     incident: a checkpoint that lands among them makes a resume read the incident again;
//   - an alert version is recorded as sent only when the sink confirms the batch that held its
//     event (not refused), by sentRecorder; one the memory does not hold is sent;
//   - the incident's own event lists its alerts by id, time, title, severity and status, not
//     whole: the whole alerts are the other sourcetype's events.

// incidentAlertRef is what an incident's event keeps of each nested alert.
var incidentAlertRef = []string{"alertId", "lastUpdatedTime", "title", "severity", "status", "serviceSource"}

// IncidentStats count the nested alerts of the incidents read.
type IncidentStats struct {
	AlertsSent      atomic.Int64 // nested alert versions handed to the sink
	AlertsUnchanged atomic.Int64 // nested alert versions left out: sent before
	Unreadable      atomic.Int64 // incidents whose alerts could not be read: sent whole
}

type incidentSource struct {
	src             bridge.Source
	sent            *checkpoint.Sent
	alertSourcetype string
	log             *slog.Logger
	stats           *IncidentStats
}

func (s incidentSource) Read(ctx context.Context, w bridge.Window, emit func(bridge.Record, bridge.Position) error) (bridge.SourceStats, error) {
	var before bridge.Position // where a resume would read the incident being split again
	if w.Resume != nil {
		before = w.Resume
	}
	handed := map[string]time.Time{} // alert versions handed on in this read, not yet confirmed
	sent0, same0 := s.stats.AlertsSent.Load(), s.stats.AlertsUnchanged.Load()
	st, err := s.src.Read(ctx, w, func(r bridge.Record, pos bridge.Position) error {
		alerts, slim, err := splitIncident(r.Data)
		if err != nil {
			// Sent whole, with its alerts inside: nothing is left out.
			s.stats.Unreadable.Add(1)
			s.log.Warn("an incident's alerts cannot be read; it is sent whole, alerts included", "incident_id", r.ID, "err", err)
			before = pos
			return emit(r, pos)
		}
		for _, a := range alerts {
			if a.id != "" && !a.updated.IsZero() {
				if t, ok := handed[a.id]; (ok && t.Equal(a.updated)) || s.sent.Has(a.id, a.updated) {
					s.stats.AlertsUnchanged.Add(1)
					continue
				}
				handed[a.id] = a.updated
			}
			s.stats.AlertsSent.Add(1)
			if err := emit(bridge.Record{ID: a.id, Time: r.Time, EventTime: a.updated, Data: a.raw,
				Sourcetype: s.alertSourcetype, Nested: true}, before); err != nil {
				return err
			}
		}
		r.Data = slim
		before = pos
		return emit(r, pos)
	})
	if n, same := s.stats.AlertsSent.Load()-sent0, s.stats.AlertsUnchanged.Load()-same0; n+same > 0 {
		s.log.Info("incidents' alerts", "alerts_sent", n, "alerts_unchanged_not_sent", same)
	}
	return st, err
}

type nestedAlert struct {
	id      string
	updated time.Time
	raw     []byte
}

// splitIncident returns an incident's nested alerts and the incident with each alert cut
// down to incidentAlertRef, its members in their order.
func splitIncident(data []byte) ([]nestedAlert, []byte, error) {
	found, err := defender.IncidentAlerts(data)
	if err != nil {
		return nil, nil, err
	}
	alerts := make([]nestedAlert, len(found))
	for i, a := range found {
		alerts[i] = nestedAlert{id: a.ID, updated: a.LastUpdated, raw: compact(a.Raw)}
	}
	members, err := objectMembers(data)
	if err != nil {
		return nil, nil, err
	}
	// Cut only what IncidentAlerts read: one member named "alerts", written plainly, holding
	// as many alerts as it found. A name written with escapes or given twice could make the
	// two readings differ, and an alert cut from the incident but never sent would be lost:
	// such an incident goes whole.
	named := 0
	for _, m := range members {
		if m.decoded == "alerts" {
			named++
			if m.written != `"alerts"` {
				return nil, nil, errors.New("the incident's alerts member is written with escapes")
			}
		}
	}
	if named > 1 {
		return nil, nil, errors.New("the incident names alerts more than once")
	}
	out := []byte{'{'}
	for i, m := range members {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, m.key...)
		out = append(out, ':')
		if string(m.key) != `"alerts"` || bytes.Equal(m.value, []byte("null")) {
			out = append(out, m.value...)
			continue
		}
		var raws []json.RawMessage
		if err := json.Unmarshal(m.value, &raws); err != nil {
			return nil, nil, fmt.Errorf("alerts: %w", err)
		}
		if len(raws) != len(alerts) {
			return nil, nil, fmt.Errorf("alerts: %d read as events, %d in the incident", len(alerts), len(raws))
		}
		out = append(out, '[')
		for j, raw := range raws {
			var a map[string]json.RawMessage
			if err := json.Unmarshal(raw, &a); err != nil || a == nil {
				return nil, nil, fmt.Errorf("alert %d: not an object", j)
			}
			if j > 0 {
				out = append(out, ',')
			}
			out = append(out, '{')
			n := 0
			for _, k := range incidentAlertRef {
				v, ok := a[k]
				if !ok {
					continue
				}
				if n > 0 {
					out = append(out, ',')
				}
				n++
				kb, _ := json.Marshal(k)
				out = append(append(append(out, kb...), ':'), compact(v)...)
			}
			out = append(out, '}')
		}
		out = append(out, ']')
	}
	return alerts, append(out, '}'), nil
}

type member struct {
	key, value []byte // the key as written (quoted, escapes kept), the value compacted
	decoded    string // the key's text
	written    string // the key as the incident wrote it
}

// objectMembers lists a JSON object's members in order, keys as written (quoted).
func objectMembers(data []byte) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errors.New("an incident is not a JSON object")
	}
	var out []member
	for dec.More() {
		from := dec.InputOffset()
		k, err := dec.Token()
		if err != nil {
			return nil, err
		}
		raw := bytes.TrimLeft(data[from:dec.InputOffset()], " \t\r\n,")
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		ks := k.(string)
		kb, _ := json.Marshal(ks)
		out = append(out, member{key: kb, value: compact(v), decoded: ks, written: string(raw)})
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	return out, nil
}

func compact(b []byte) []byte {
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return append([]byte(nil), b...)
	}
	return buf.Bytes()
}
