package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"

	"ta-defender-alerts/app/defendertest"
)

// anyVersionKey names an event of any feed by its item's id and update time: an alert of the
// Alert API (id, lastUpdateTime) or of Graph (id, lastUpdateDateTime), an incident
// (incidentId, lastUpdateTime) or an incident's alert (alertId, lastUpdatedTime).
func anyVersionKey(raw []byte) string {
	var e struct {
		ID                 string          `json:"id"`
		AlertID            string          `json:"alertId"`
		IncidentID         json.RawMessage `json:"incidentId"`
		LastUpdateTime     string          `json:"lastUpdateTime"`
		LastUpdateDateTime string          `json:"lastUpdateDateTime"`
		LastUpdatedTime    string          `json:"lastUpdatedTime"`
	}
	_ = json.Unmarshal(raw, &e)
	switch {
	case e.AlertID != "":
		return e.AlertID + "@" + e.LastUpdatedTime
	case e.ID != "" && e.LastUpdateDateTime != "":
		return e.ID + "@" + e.LastUpdateDateTime
	case e.ID != "":
		return e.ID + "@" + e.LastUpdateTime
	}
	return string(e.IncidentID) + "@" + e.LastUpdateTime
}

// feedWorld is a world whose API is the stand-in in opt.Mode, read by DEFENDER_FEED=feed.
func feedWorld(t *testing.T, n int, feed string, opt defendertest.Options) *world {
	t.Helper()
	w := newWorldOpts(t, n, true, opt)
	w.extra = []string{"DEFENDER_FEED=" + feed}
	if feed == "graph-alerts" {
		w.extra = append(w.extra, "DEFENDER_GRAPH_URL="+w.api.URL)
	}
	return w
}

// Scenario 12: the graph-alerts feed against a hostile Graph: no stable list order, alerts
// changing while it pages, versions visible late, a 3-calls-per-3s quota (429 with
// Retry-After), failures and cut-off replies, tokens that expire every second: first without
// kills (nothing missing, nothing twice), then with SIGKILLs mid-drain and a last run
// (nothing missing; each kill re-sends the request it cut short).
func TestFaultGraphFeed(t *testing.T) {
	started := time.Now()
	n := pick(600, 10000)
	// The quota: 20 calls per 2 s in the quick form (CI), 3 per 3 s in the long one.
	w := feedWorld(t, n, "graph-alerts", defendertest.Options{Mode: defendertest.GraphMode, TokenLifetime: time.Second,
		SkipTokenLifetime: 500 * time.Millisecond, PerMinute: pick(20, 3), Minute: time.Duration(pick(2, 3)) * time.Second})
	w.api.SetOrder(defendertest.Shuffled)
	w.api.UpdatesPerCall(3)
	w.api.SetVisibilityDelay(func(r *mrand.Rand) time.Duration { return time.Duration(r.Int64N(int64(time.Second))) })
	w.api.Throttle(3, time.Second)
	w.api.SetFailures(0.03, 0.03)
	w.extra = append(w.extra, "DEFENDER_OVERLAP=5s", "DEFENDER_HEC_ACK_TIMEOUT=20s")
	hostileNoKills(t, w, "12 graph-alerts, hostile Graph, no kills", 3)
	addBacklog(w, n)
	kills := runsKilled(t, w, pick(1, 8), n)
	if kills == 0 {
		t.Error("no kill landed during the drain")
	}
	w.api.UpdatesPerCall(0)
	time.Sleep(1500 * time.Millisecond) // every version is visible now
	cmd, out := w.start(t, "run", "--once")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("final run: %v\n%s", err, out)
	}
	// A kill re-sends the request it cut short (about 220 alerts at the default batch size):
	// in the quick form's 600 alerts that is a large share.
	report(t, fmt.Sprintf("12 graph-alerts, hostile Graph, %d kills", kills), w, started)
	st := w.api.Stats()
	line := fmt.Sprintf("FAULT    hostile Graph: %d calls, 401 %d, 429 %d, 5xx %d, cut-offs %d, calls before Retry-After %d",
		st.APICalls, st.ByStatus[401], st.ByStatus[429], st.ByStatus[500]+st.ByStatus[503], st.CutOff, st.Violations)
	fmt.Println(line)
	t.Log(line)
	// A process started after a kill does not know the killed one's Retry-After: its first
	// call may come early, once per kill.
	if st.ByStatus[429] == 0 || st.Violations > kills {
		t.Errorf("429s %d (want some), calls before Retry-After %d (want at most one per kill, %d)", st.ByStatus[429], st.Violations, kills)
	}
}

// Scenario 12b: the graph-alerts feed following @odata.nextLink. Graph lists newest update
// first and some alerts were updated after they were created (the sign the collector needs
// before it follows links), alerts change while it pages (a link that counts by position then
// passes alerts over), versions show late, skip tokens expire within a second, 429s, failures
// and cut-off replies: without kills nothing missing and nothing twice, then SIGKILLs mid-drain
// (along the links) and a last run: nothing missing.
func TestFaultGraphFeedLinks(t *testing.T) {
	started := time.Now()
	n := pick(3000, 20000)
	w := feedWorld(t, n, "graph-alerts", defendertest.Options{Mode: defendertest.GraphMode, TokenLifetime: time.Second,
		SkipTokenLifetime: 800 * time.Millisecond, PerMinute: pick(40, 20), Minute: 2 * time.Second})
	w.api.Revisit(20, time.Now().Add(-time.Second))
	w.api.UpdatesPerCall(3)
	w.api.SetVisibilityDelay(func(r *mrand.Rand) time.Duration { return time.Duration(r.Int64N(int64(time.Second))) })
	w.api.Throttle(2, time.Second)
	w.api.SetFailures(0.02, 0.02)
	w.extra = append(w.extra, "DEFENDER_OVERLAP=5s", "DEFENDER_HEC_ACK_TIMEOUT=20s")
	hostileNoKills(t, w, "12b graph-alerts along links, no kills", 3)
	// A backlog of the last 3 s (inside the overlap), every 20th alert updated a second after
	// it was created: the sign each new process needs before it follows links.
	now := time.Now()
	ids := w.api.AddAlerts(n, func(i int) time.Time {
		return now.Add(-3 * time.Second).Add(time.Duration(i) * 2 * time.Second / time.Duration(n))
	})
	for i := 0; i < len(ids); i += 20 {
		w.api.UpdateAt(ids[i:i+1], now.Add(-3*time.Second).Add(time.Duration(i)*2*time.Second/time.Duration(n)+time.Second))
	}
	kills := runsKilled(t, w, pick(1, 6), n)
	w.api.UpdatesPerCall(0)
	time.Sleep(1500 * time.Millisecond) // every version is visible now
	cmd, out := w.start(t, "run", "--once")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("final run: %v\n%s", err, out)
	}
	report(t, fmt.Sprintf("12b graph-alerts along links, %d kills", kills), w, started)
	st := w.api.Stats()
	line := fmt.Sprintf("FAULT    Graph along links: %d calls, %d followed links, %d expired, 429 %d, cut-offs %d",
		st.APICalls, st.Links, st.LinksExpired, st.ByStatus[429], st.CutOff)
	fmt.Println(line)
	t.Log(line)
	if st.Links == 0 {
		t.Error("no link was followed: the scenario did not test what it is for")
	}
}

// hostileNoKills runs run --once three times while the API changes as it pages (updates per
// call, as set), with new versions between the runs, then lets late versions show and runs
// once more: nothing may be missing and nothing indexed twice (only kills may repeat).
func hostileNoKills(t *testing.T, w *world, name string, updatesPerCall int) {
	t.Helper()
	started := time.Now()
	for run := range 3 {
		if run > 0 {
			w.api.Update(pick(50, 500))
		}
		cmd, out := w.start(t, "run", "--once")
		if err := cmd.Wait(); err != nil {
			t.Fatalf("run %d: %v\n%s", run+1, err, lastLines(out.String(), 30))
		}
	}
	w.api.UpdatesPerCall(0)
	time.Sleep(1500 * time.Millisecond)
	cmd, out := w.start(t, "run", "--once")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("settling run: %v\n%s", err, lastLines(out.String(), 30))
	}
	report(t, name, w, started)
	if d := w.hec.Stats().Duplicates; d != 0 {
		t.Errorf("%s: %d events indexed twice with no kill", name, d)
	}
	w.api.UpdatesPerCall(updatesPerCall)
}

// addBacklog adds n items updated over the last 3 seconds (inside the 5 s overlap: a real API
// shows nothing that much older than what was read before): a drain for the kills to land in.
func addBacklog(w *world, n int) {
	now := time.Now()
	w.api.AddAlerts(n, func(i int) time.Time {
		return now.Add(-3 * time.Second).Add(time.Duration(i) * 3 * time.Second / time.Duration(n))
	})
}

// runsKilled starts run --once again and again, SIGKILLing each at a random moment once HEC
// holds more, until kills have landed or a run ends by itself; it returns the kills landed.
func runsKilled(t *testing.T, w *world, kills, n int) int {
	t.Helper()
	r := mrand.New(mrand.NewPCG(uint64(time.Now().UnixNano()), 3))
	landed := 0
	for landed < kills {
		before := w.hec.Stats().Indexed
		cmd, out := w.start(t, "run", "--once")
		target := before + 50 + r.IntN(max(n/(kills+1), 100))
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		for deadline := time.Now().Add(2 * time.Minute); ; {
			select {
			case err := <-exited:
				if err != nil {
					t.Fatalf("run --once failed: %v\n%s", err, lastLines(out.String(), 30))
				}
				return landed
			case <-time.After(2 * time.Millisecond):
			}
			if w.hec.Stats().Indexed >= target {
				_ = cmd.Process.Signal(syscall.SIGKILL)
				<-exited
				landed++
				break
			}
			if time.Now().After(deadline) {
				stalled(t, cmd, exited, out, fmt.Sprintf("run --once neither exited nor indexed %d more in 2 minutes", target-before))
			}
		}
	}
	return landed
}

// Scenario 13: the incidents feed against a hostile XDR API: incidents updated while it
// pages (some with one nested alert changed, some with none), versions visible late, 429s
// and failures, 1 s tokens, SIGKILLs mid-drain; in the long form no stable list order. Then
// a last run. Every current incident version and every alert version it shows must be
// indexed; nested alerts sent again are counted (a kill re-sends the request it cut short:
// with incidents' small events, several hundred of them).
func TestFaultIncidentsFeed(t *testing.T) {
	started := time.Now()
	n := pick(300, 3000)
	w := feedWorld(t, n, "incidents", defendertest.Options{Mode: defendertest.IncidentsMode, TokenLifetime: time.Second})
	w.extra = append(w.extra, "DEFENDER_INCIDENTS_URL="+w.api.URL, "DEFENDER_OVERLAP=5s", "DEFENDER_HEC_ACK_TIMEOUT=20s")
	if full() {
		w.api.SetOrder(defendertest.Shuffled)
	}
	w.api.UpdatesPerCall(2)
	w.api.SetVisibilityDelay(func(r *mrand.Rand) time.Duration { return time.Duration(r.Int64N(int64(time.Second))) })
	w.api.Throttle(2, time.Second)
	w.api.SetFailures(0.03, 0.03)
	hostileNoKills(t, w, "13 incidents, hostile XDR API, no kills", 2)
	addBacklog(w, n)
	kills := runsKilled(t, w, pick(1, 5), n*3)
	if kills == 0 {
		t.Error("no kill landed during the drain")
	}
	w.api.UpdatesPerCall(0)
	time.Sleep(1500 * time.Millisecond)
	cmd, out := w.start(t, "run", "--once")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("final run: %v\n%s", err, lastLines(out.String(), 30))
	}
	report(t, fmt.Sprintf("13 incidents, hostile XDR API, %d kills", kills), w, started)
	now := w.now()
	alerts, missing, twice := 0, 0, 0
	for id, v := range w.api.Current(now) {
		for _, a := range w.api.NestedAlerts(id, v.LastUpdate) {
			alerts++
			switch c := w.hec.Count(a.AlertID + "@" + defendertest.FormatTime(a.LastUpdated)); {
			case c == 0:
				missing++
			case c > 1:
				twice++
			}
		}
	}
	line := fmt.Sprintf("FAULT    incidents' alerts: %d alert versions shown, missing %d, sent more than once %d", alerts, missing, twice)
	fmt.Println(line)
	t.Log(line)
	if missing > 0 {
		t.Errorf("%d nested alert versions missing", missing)
	}

	// One update of a 50-alert incident that leaves its alerts alone: the incident is sent
	// again, its alerts are not.
	big := ""
	for id, v := range w.api.Current(now) {
		if len(w.api.NestedAlerts(id, v.LastUpdate)) == defendertest.IncidentBigSize {
			big = id
			break
		}
	}
	if big == "" {
		t.Fatal("no 50-alert incident in the stand-in")
	}
	mark := len(w.hec.Events())
	w.api.UpdateIncident(big, time.Now().Add(-2*time.Second), -1)
	cmd, out = w.start(t, "run", "--once")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("run after the update: %v\n%s", err, lastLines(out.String(), 30))
	}
	bySourcetype := map[string]int{}
	for _, e := range w.hec.Events()[mark:] {
		bySourcetype[e.Sourcetype]++
	}
	line = fmt.Sprintf("FAULT    incidents: one update of a 50-alert incident, alerts unchanged, sent %d incident event(s) and %d alert events",
		bySourcetype["ms365:defender:incident"], bySourcetype["ms365:defender:incident:alerts"])
	fmt.Println(line)
	t.Log(line)
	if bySourcetype["ms365:defender:incident"] != 1 || bySourcetype["ms365:defender:incident:alerts"] != 0 {
		t.Errorf("want 1 incident event and 0 alert events")
	}

	// The same for every incident: the memory of alerts sent must have come through the
	// kills whole (a kill used to forget up to 30 s of it, and a batch a restart proved
	// indexed was never in it), else some incident's update sends its alerts again. Long form
	// only: the short form's one kill comes early, so the runs after it send everything again
	// and remember it; and this run often waits out the XDR API's minute quota (50 s).
	if !full() {
		return
	}
	now = w.now()
	incidents := 0
	for id := range w.api.Current(now) {
		w.api.UpdateIncident(id, time.Now().Add(-2*time.Second), -1)
		incidents++
	}
	mark = len(w.hec.Events())
	cmd, out = w.start(t, "run", "--once")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("run after updating every incident: %v\n%s", err, lastLines(out.String(), 30))
	}
	clear(bySourcetype)
	for _, e := range w.hec.Events()[mark:] {
		bySourcetype[e.Sourcetype]++
	}
	line = fmt.Sprintf("FAULT    incidents: one update of each of %d incidents after %d kills, alerts unchanged, sent %d incident events and %d alert events",
		incidents, kills, bySourcetype["ms365:defender:incident"], bySourcetype["ms365:defender:incident:alerts"])
	fmt.Println(line)
	t.Log(line)
	if bySourcetype["ms365:defender:incident"] != incidents || bySourcetype["ms365:defender:incident:alerts"] != 0 {
		t.Errorf("want %d incident events and 0 alert events", incidents)
	}
}

// check verifies the incidents feed like the others: its own token scope, its permission and
// one call; without Incident.Read.All it says which permission to grant.
func TestCheckIncidentsFeed(t *testing.T) {
	for _, perm := range []bool{true, false} {
		w := feedWorld(t, 3, "incidents", defendertest.Options{Mode: defendertest.IncidentsMode, NoPermission: !perm})
		w.extra = append(w.extra, "DEFENDER_INCIDENTS_URL="+w.api.URL)
		for _, kv := range w.env()[1:] {
			if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "DEFENDER_") {
				t.Setenv(k, v)
			}
		}
		var out, errb bytes.Buffer
		code := run(context.Background(), []string{"check"}, nil, &out, &errb)
		want := []string{"✓ incidents: Entra ID token", "✓ incidents: Defender XDR incidents API"}
		if !perm {
			want = []string{"✓ incidents: Entra ID token", "✗ incidents: Defender XDR incidents API", "Incident.Read.All"}
		}
		if (code == 0) != perm {
			t.Errorf("permission %v: exit %d\n%s", perm, code, out.String())
		}
		for _, s := range want {
			if !strings.Contains(out.String(), s) {
				t.Errorf("permission %v: missing %q in:\n%s", perm, s, out.String())
			}
		}
	}
}
