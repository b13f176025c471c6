package wiring

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"ta-defender-alerts/app/bridge"
	"ta-defender-alerts/app/checkpoint"
	"ta-defender-alerts/app/config"
	"ta-defender-alerts/app/defender"
	"ta-defender-alerts/app/defendertest"
	"ta-defender-alerts/app/hec"
	"ta-defender-alerts/app/hectest"
)

// incidentList is a fake incidents API: incidents listed in order of their update time, a
// Position being the number of incidents handed on in the window.
type incidentList struct {
	mu        sync.Mutex
	incidents map[int]*fakeIncident
}

type fakeIncident struct {
	id      int
	updated time.Time
	alerts  []fakeAlert
}

type fakeAlert struct {
	id      string
	updated time.Time
}

type listPos int

func (p listPos) MarshalJSON() ([]byte, error) { return []byte(strconv.Itoa(int(p))), nil }

func (f *fakeIncident) json() []byte {
	var as []string
	for _, a := range f.alerts {
		as = append(as, fmt.Sprintf(`{"alertId":%q,"incidentId":%d,"lastUpdatedTime":%q,"title":"t %s","severity":"High","status":"New","entities":[{"entityType":"File","fileName":"x.exe"}],"devices":[{"deviceDnsName":"pc1"}]}`,
			a.id, f.id, a.updated.Format(time.RFC3339Nano), a.id))
	}
	return fmt.Appendf(nil, `{"incidentId":%d,"incidentName":"inc %d","lastUpdateTime":%q,"status":"Active","alerts":[%s]}`,
		f.id, f.id, f.updated.Format(time.RFC3339Nano), strings.Join(as, ","))
}

func (l *incidentList) Read(ctx context.Context, w bridge.Window, emit func(bridge.Record, bridge.Position) error) (bridge.SourceStats, error) {
	l.mu.Lock()
	var in []*fakeIncident
	for _, f := range l.incidents {
		if !f.updated.Before(w.From) && f.updated.Before(w.To) {
			c := *f
			c.alerts = slices.Clone(f.alerts)
			in = append(in, &c)
		}
	}
	l.mu.Unlock()
	slices.SortFunc(in, func(a, b *fakeIncident) int { return a.updated.Compare(b.updated)*1000 + a.id - b.id })
	skip := 0
	if w.Resume != nil {
		skip, _ = strconv.Atoi(string(w.Resume))
	}
	var st bridge.SourceStats
	for i, f := range in {
		if i < skip {
			continue
		}
		id := strconv.Itoa(f.id)
		if w.Delivered != nil && w.Delivered(id, f.updated) {
			st.Skipped++
			continue
		}
		if err := emit(bridge.Record{ID: id, Time: f.updated, Data: f.json()}, listPos(i+1)); err != nil {
			return st, err
		}
	}
	return st, nil
}

const (
	incidentST = "ms365:defender:incident"
	alertST    = "ms365:defender:incident:alerts"
)

// incidentPipe is the incidents feed's pump between a fake API and the HEC stand-in.
type incidentPipe struct {
	t     *testing.T
	dir   string
	src   *incidentList
	h     *hectest.Server
	stats IncidentStats
}

func newIncidentPipe(t *testing.T) *incidentPipe {
	h := hectest.New(hectest.Options{Token: hecToken, Ack: true})
	t.Cleanup(h.Close)
	return &incidentPipe{t: t, dir: t.TempDir(), src: &incidentList{incidents: map[int]*fakeIncident{}}, h: h}
}

// drain runs one collection, as a process does: it opens the checkpoint and the memory, drains,
// and closes (saving the memory).
func (p *incidentPipe) drain() error {
	t := p.t
	store, err := checkpoint.Open(p.dir, "tenant1.incidents")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	sent, err := checkpoint.OpenSent(store.SentPath(), SentHorizon, SentLimit, nil)
	if err != nil {
		t.Fatal(err)
	}
	hc, err := hec.New(hec.Config{URLs: []string{p.h.URL}, Token: hecToken, Sourcetype: incidentST, Source: "tenant1", AckInterval: 5 * time.Millisecond,
		AckTimeout: 2 * time.Second, GiveUpAfter: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	src := incidentSource{src: p.src, sent: sent, alertSourcetype: alertST, log: quiet, stats: &p.stats}
	pump := bridge.New(bridge.Config{Store: store, Log: quiet, Start: 24 * time.Hour, Overlap: time.Minute,
		DeadLetter: bridge.DeadLetterPath(p.dir, "tenant1.incidents")}, src, sentRecorder(bridge.HECSink(hc, 5*time.Millisecond), sent, quiet))
	err = pump.Drain(context.Background())
	hc.Close()
	pump.Close()
	if serr := sent.Save(); serr != nil {
		t.Fatal(serr)
	}
	return err
}

// indexed counts the events HEC holds of each sourcetype since mark.
func (p *incidentPipe) indexed(mark int) (incidents, alerts int, evs []hectest.Event) {
	evs = p.h.Events()[mark:]
	for _, e := range evs {
		switch e.Sourcetype {
		case incidentST:
			incidents++
		case alertST:
			alerts++
		default:
			p.t.Fatalf("an event of sourcetype %q", e.Sourcetype)
		}
	}
	return incidents, alerts, evs
}

func (p *incidentPipe) put(f *fakeIncident) {
	p.src.mu.Lock()
	p.src.incidents[f.id] = f
	p.src.mu.Unlock()
}

// An incident's first version sends the incident and every alert; an update that leaves the
// alerts as they were sends the incident alone; one alert changed sends it and the incident;
// the memory holds across restarts (each drain is a process of its own).
func TestIncidentUpdateSendsOnlyNewAlertVersions(t *testing.T) {
	p := newIncidentPipe(t)
	base := time.Now().Add(-time.Hour).UTC()
	big := &fakeIncident{id: 924521, updated: base}
	for i := range 50 {
		big.alerts = append(big.alerts, fakeAlert{fmt.Sprintf("da%03d_1", i), base.Add(-time.Duration(i) * time.Minute)})
	}
	small := &fakeIncident{id: 7, updated: base.Add(time.Second), alerts: []fakeAlert{{"da900_1", base}, {"da901_1", base}}}
	p.put(big)
	p.put(small)

	steps := []struct {
		name               string
		change             func()
		incidents, alerts  int
		wantAlertIDsInStep []string
	}{
		{"first read", func() {}, 2, 52, nil},
		{"50-alert incident updated, alerts unchanged", func() {
			time.Sleep(5 * time.Millisecond)
			big.updated = time.Now().Add(-time.Second).UTC()
			p.put(big)
		}, 1, 0, nil},
		{"one alert of the small incident changed", func() {
			time.Sleep(5 * time.Millisecond)
			small.updated = time.Now().Add(-time.Second).UTC()
			small.alerts[1].updated = small.updated
			p.put(small)
		}, 1, 1, []string{"da901_1"}},
		{"an alert added to the big incident", func() {
			time.Sleep(5 * time.Millisecond)
			big.updated = time.Now().Add(-time.Second).UTC()
			big.alerts = append(big.alerts, fakeAlert{"da050_1", big.updated})
			p.put(big)
		}, 1, 1, []string{"da050_1"}},
		{"nothing changed", func() {}, 0, 0, nil},
	}
	for _, s := range steps {
		mark := len(p.h.Events())
		s.change()
		time.Sleep(5 * time.Millisecond)
		if err := p.drain(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		inc, al, evs := p.indexed(mark)
		if inc != s.incidents || al != s.alerts {
			t.Fatalf("%s: %d incident events and %d alert events, want %d and %d", s.name, inc, al, s.incidents, s.alerts)
		}
		var ids []string
		for _, e := range evs {
			var a struct {
				AlertID  string `json:"alertId"`
				Entities []any  `json:"entities"`
				Alerts   []map[string]any
			}
			json.Unmarshal(e.Raw, &a)
			switch e.Sourcetype {
			case alertST:
				ids = append(ids, a.AlertID)
				if len(a.Entities) != 1 {
					t.Errorf("%s: alert event %s without its entities: %s", s.name, a.AlertID, e.Raw)
				}
			case incidentST:
				for _, ref := range a.Alerts {
					if ref["alertId"] == nil || ref["entities"] != nil || ref["devices"] != nil {
						t.Errorf("%s: the incident event's alerts must be references (id, time, title...), not whole: %v", s.name, ref)
					}
				}
			}
		}
		if s.wantAlertIDsInStep != nil && !slices.Equal(ids, s.wantAlertIDsInStep) {
			t.Errorf("%s: alerts sent %v, want %v", s.name, ids, s.wantAlertIDsInStep)
		}
	}
	if st := p.h.Stats(); st.Duplicates != 0 {
		t.Errorf("%d duplicates at HEC", st.Duplicates)
	}
	if got := p.stats.AlertsUnchanged.Load(); got < 100 {
		t.Errorf("%d alerts counted as unchanged, want at least 100 (two updates of the 50-alert incident)", got)
	}
}

// An alert whose event HEC did not confirm is not remembered: when its batch fails, the
// drain fails, and the next one sends the alert (and its incident) again; nothing is lost.
func TestIncidentAlertNotConfirmedIsSentAgain(t *testing.T) {
	p := newIncidentPipe(t)
	base := time.Now().Add(-time.Hour).UTC()
	for i := range 20 {
		f := &fakeIncident{id: 100 + i, updated: base.Add(time.Duration(i) * time.Second)}
		for j := range 5 {
			f.alerts = append(f.alerts, fakeAlert{fmt.Sprintf("da%d_%d", i, j), base})
		}
		p.put(f)
	}
	p.h.SetDown(true) // every request refused: nothing confirmed
	if err := p.drain(); err == nil {
		t.Fatal("the drain did not fail with HEC down")
	}
	p.h.SetDown(false)
	if err := p.drain(); err != nil {
		t.Fatal(err)
	}
	inc, al, _ := p.indexed(0)
	if inc != 20 || al != 100 {
		t.Fatalf("%d incidents and %d alerts indexed, want 20 and 100", inc, al)
	}
}

// The pump's checkpoint may land among an incident's alerts (a batch boundary there, and a
// failure after it): the nested alerts carry the position before their incident, so the next
// read takes the incident again and sends what was not confirmed; nothing is lost.
func TestIncidentCheckpointAmongItsAlerts(t *testing.T) {
	src := &incidentList{incidents: map[int]*fakeIncident{}}
	base := time.Now().Add(-time.Hour).UTC()
	for i := range 6 {
		f := &fakeIncident{id: 200 + i, updated: base.Add(time.Duration(i) * time.Second)}
		for j := range 40 {
			f.alerts = append(f.alerts, fakeAlert{fmt.Sprintf("da%d_%02d", i, j), base})
		}
		src.incidents[f.id] = f
	}
	dir := t.TempDir()
	seen := map[string]int{}
	// Batches of 7 records: boundaries fall among alerts. The first process confirms 9
	// batches (63 records: incident 200 and 22 alerts of incident 201) and fails the tenth.
	for run, failAt := range []int{9, -1} {
		store, err := checkpoint.Open(dir, "t.incidents")
		if err != nil {
			t.Fatal(err)
		}
		sent, _ := checkpoint.OpenSent(store.SentPath(), SentHorizon, SentLimit, nil)
		k := &batchesOf{n: 7, failAt: failAt, seen: seen}
		pump := bridge.New(bridge.Config{Store: store, Log: quiet, Start: 24 * time.Hour, Overlap: time.Minute,
			DeadLetter: bridge.DeadLetterPath(dir, "t.incidents")},
			incidentSource{src: src, sent: sent, alertSourcetype: alertST, log: quiet, stats: &IncidentStats{}}, sentRecorder(k.open, sent, quiet))
		err = pump.Drain(context.Background())
		pump.Close()
		sent.Save()
		store.Close()
		if (err != nil) != (failAt > 0) {
			t.Fatalf("run %d: %v", run, err)
		}
	}
	for i := range 6 {
		if seen[strconv.Itoa(200+i)] == 0 {
			t.Errorf("incident %d never confirmed", 200+i)
		}
		for j := range 40 {
			if id := fmt.Sprintf("da%d_%02d", i, j); seen[id] != 1 {
				t.Errorf("alert %s confirmed %d times, want once", id, seen[id])
			}
		}
	}
}

// batchesOf is a sink that confirms every n records as a batch, and fails batch failAt
// (counting from 1; -1: never) and every one after it.
type batchesOf struct {
	n, failAt int
	report    func(bridge.Outcome)
	buf       []string
	last      *bridge.Tag
	batches   int
	seen      map[string]int // confirmed records by id (or by key, when set)
	key       func(bridge.Record) string
}

func (k *batchesOf) open(report func(bridge.Outcome)) bridge.Sink { k.report = report; return k }

func (k *batchesOf) Add(ctx context.Context, r bridge.Record, t *bridge.Tag) error {
	id := r.ID
	if k.key != nil {
		id = k.key(r)
	}
	k.buf, k.last = append(k.buf, id), t
	if len(k.buf) == k.n {
		return k.Flush(ctx)
	}
	return nil
}

func (k *batchesOf) Flush(context.Context) error {
	if len(k.buf) == 0 {
		return nil
	}
	k.batches++
	o := bridge.Outcome{Last: k.last, N: len(k.buf)}
	if k.failAt > 0 && k.batches >= k.failAt {
		o.Err = errors.New("the destination is down")
	} else {
		for _, id := range k.buf {
			k.seen[id]++
		}
	}
	k.buf = k.buf[:0]
	k.report(o)
	return o.Err
}

func TestSplitIncident(t *testing.T) {
	for _, c := range []struct {
		name, in, slim string
		alerts         []string
		err            bool
	}{
		{"two alerts", `{"incidentId":1, "alerts":[{"alertId":"a","lastUpdatedTime":"2026-11-30T10:00:00.5Z","title":"T","entities":[1]},{"alertId":"b","lastUpdatedTime":"2026-11-30T10:00:01Z"}],"z":2}`,
			`{"incidentId":1,"alerts":[{"alertId":"a","lastUpdatedTime":"2026-11-30T10:00:00.5Z","title":"T"},{"alertId":"b","lastUpdatedTime":"2026-11-30T10:00:01Z"}],"z":2}`,
			[]string{"a@2026-11-30T10:00:00.5Z", "b@2026-11-30T10:00:01Z"}, false},
		{"an alert time that cannot be read: the incident goes whole", `{"incidentId":1,"alerts":[{"alertId":"b","lastUpdatedTime":"bad"}]}`, "", nil, true},
		{"no alerts member", `{"incidentId":2}`, `{"incidentId":2}`, nil, false},
		{"alerts null", `{"incidentId":3,"alerts":null}`, `{"incidentId":3,"alerts":null}`, nil, false},
		{"alerts not a list", `{"incidentId":4,"alerts":{}}`, "", nil, true},
		{"alert not an object", `{"incidentId":5,"alerts":[1]}`, "", nil, true},
		{"not an object", `[1]`, "", nil, true},
		{"cut short", `{"incidentId":6,"alerts":[`, "", nil, true},
	} {
		alerts, slim, err := splitIncident([]byte(c.in))
		if (err != nil) != c.err {
			t.Errorf("%s: err %v, want error %v", c.name, err, c.err)
			continue
		}
		if err != nil {
			continue
		}
		var got []string
		for _, a := range alerts {
			got = append(got, a.id+"@"+a.updated.Format(time.RFC3339Nano))
			if !json.Valid(a.raw) {
				t.Errorf("%s: alert %s not valid JSON", c.name, a.id)
			}
		}
		if string(slim) != c.slim || !slices.Equal(got, c.alerts) {
			t.Errorf("%s:\n slim %s\n want %s\n alerts %v, want %v", c.name, slim, c.slim, got, c.alerts)
		}
	}
}

func FuzzSplitIncident(f *testing.F) {
	f.Add([]byte(`{"incidentId":1,"alerts":[{"alertId":"a","lastUpdatedTime":"2026-11-30T10:00:00Z"}]}`))
	f.Add([]byte(`{"alerts":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		alerts, slim, err := splitIncident(b)
		if err != nil {
			return
		}
		if !json.Valid(slim) {
			t.Fatalf("slim incident not valid JSON: %s", slim)
		}
		for _, a := range alerts {
			if !json.Valid(a.raw) {
				t.Fatalf("alert not valid JSON: %s", a.raw)
			}
		}
	})
}

// The incidents feed end to end against the XDR stand-in: every incident and every nested
// alert indexed once under its sourcetype; then one update of a 50-alert incident that leaves
// its alerts alone sends 1 incident event and 0 alert events, and one that changes one alert
// of another incident sends that incident and that alert.
func TestIncidentsFeedToHEC(t *testing.T) {
	api := defendertest.New(defendertest.Options{TenantID: tenant, ClientID: client, ClientSecret: secretV, Mode: defendertest.IncidentsMode})
	t.Cleanup(api.Close)
	now := time.Now()
	ids := api.AddIncidents(2*defendertest.IncidentBigEvery, func(i int) time.Time { return now.Add(-time.Hour).Add(time.Duration(i) * time.Second) }, nil)
	h := hectest.New(hectest.Options{Token: hecToken, Ack: true})
	t.Cleanup(h.Close)
	cfg := &config.Config{Output: "hec", Input: "tenant1.incidents", Feed: "incidents", StateDir: t.TempDir(), Start: 2 * time.Hour, Overlap: time.Minute,
		Linger: 20 * time.Millisecond, NestedSourcetype: alertST,
		Defender: defender.Config{Feed: "incidents", TenantID: tenant, ClientID: client, ClientSecret: secretV, APIURL: api.URL, LoginURL: api.URL},
		HEC:      hec.Config{URLs: []string{h.URL}, Token: hecToken, Sourcetype: incidentST, Source: "tenant1", AckInterval: 10 * time.Millisecond}}
	count := func(mark int) (inc, al int) {
		for _, e := range h.Events()[mark:] {
			switch e.Sourcetype {
			case incidentST:
				inc++
			case alertST:
				al++
			}
		}
		return
	}
	drainOnce(t, cfg)
	wantAlerts, big := 0, ""
	for _, id := range ids {
		n := len(api.NestedAlerts(id, time.Now()))
		wantAlerts += n
		if n == 50 && big == "" {
			big = id
		}
	}
	if inc, al := count(0); inc != len(ids) || al != wantAlerts || big == "" {
		t.Fatalf("first read: %d incident and %d alert events, want %d and %d (50-alert incident %q)", inc, al, len(ids), wantAlerts, big)
	}
	small := ids[1]
	for _, step := range []struct {
		name    string
		id      string
		alert   int
		inc, al int
	}{
		{"a 50-alert incident updated, its alerts unchanged", big, -1, 1, 0},
		{"one alert of another incident changed", small, 0, 1, 1},
	} {
		mark := len(h.Events())
		time.Sleep(5 * time.Millisecond)
		api.UpdateIncident(step.id, time.Now().Add(-time.Millisecond), step.alert)
		time.Sleep(5 * time.Millisecond)
		drainOnce(t, cfg)
		inc, al := count(mark)
		line := fmt.Sprintf("INCIDENTS %s: %d incident event, %d alert events sent", step.name, inc, al)
		fmt.Println(line)
		if inc != step.inc || al != step.al {
			t.Errorf("%s; want %d and %d", line, step.inc, step.al)
		}
	}
	if st := h.Stats(); st.Duplicates != 0 {
		t.Errorf("%d duplicates", st.Duplicates)
	}
}
