package defender_test

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"ta-defender-alerts/app/defender"
	"ta-defender-alerts/app/defendertest"
	"ta-defender-alerts/app/defendertest/dtest"
	"ta-defender-alerts/app/retry"
	"ta-defender-alerts/app/secret"
)

const (
	tenantID = "6c2a4e1b-3f0d-4a8e-9b7c-2d5e8f1a0b3c"
	clientID = "0f9e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f"
	secretV  = "Zx8Q~s3cr3t.Value_for-tests"
)

func newServer(t *testing.T, opt defendertest.Options) *defendertest.Server {
	t.Helper()
	if opt.TenantID == "" {
		opt.TenantID = tenantID
	}
	if opt.ClientID == "" {
		opt.ClientID = clientID
	}
	if opt.ClientSecret == "" && opt.Certificate == nil {
		opt.ClientSecret = secretV
	}
	srv := defendertest.New(opt)
	t.Cleanup(srv.Close)
	return srv
}

func newClient(t *testing.T, srv *defendertest.Server, mod func(*defender.Config)) *defender.Client {
	t.Helper()
	cfg := defender.Config{
		TenantID:       tenantID,
		ClientID:       clientID,
		ClientSecret:   secret.String(secretV),
		APIURL:         srv.URL,
		LoginURL:       srv.URL,
		BackoffInitial: 5 * time.Millisecond,
		BackoffMax:     100 * time.Millisecond,
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := defender.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type version struct {
	id string
	t  time.Time
}

func (v version) String() string { return v.id + "@" + defendertest.FormatTime(v.t) }

// drainRun is one read of a window, with what the tenant looked like around it.
type drainRun struct {
	from, to   time.Time
	start, end time.Time // tenant clock
	read       []version
	stats      defender.WindowStats
}

// ledger holds every version handed on, across runs: the Delivered predicate and the
// "never twice" check.
type ledger struct {
	mu   sync.Mutex
	seen map[version]int
}

func (l *ledger) delivered(id string, t time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seen[version{id, t.UTC()}] > 0
}

func drainWindow(t *testing.T, c *defender.Client, now func() time.Time, from, to time.Time, l *ledger) (drainRun, error) {
	t.Helper()
	r := drainRun{from: from, to: to, start: now()}
	st, err := c.ReadWindow(context.Background(), defender.Window{From: from, To: to, Delivered: l.delivered},
		func(a defender.Alert, _ *defender.Progress) error {
			incident := strings.HasPrefix(string(a.Raw), `{"incidentId":`+a.ID+`,`)
			if !strings.Contains(string(a.Raw), `"id":"`+a.ID+`"`) && !incident {
				return fmt.Errorf("raw bytes of %s do not hold its id", a.ID)
			}
			if incident { // the raw incident keeps its nested alerts whole
				if nested, err := defender.IncidentAlerts(a.Raw); err != nil || len(nested) == 0 {
					return fmt.Errorf("incident %s: %d nested alerts, %v", a.ID, len(nested), err)
				}
			}
			v := version{a.ID, a.LastUpdate.UTC()}
			r.read = append(r.read, v)
			l.mu.Lock()
			l.seen[v]++
			l.mu.Unlock()
			return nil
		})
	r.end, r.stats = now(), st
	return r, err
}

// check is the oracle: in each run, every alert whose version current at the run's end was
// already visible at its start, with lastUpdateTime in the window, was read in that version
// (in that run or before); every version read is real and inside the window; none twice.
func check(t *testing.T, srv *defendertest.Server, runs []drainRun, l *ledger) {
	t.Helper()
	pm, ph := srv.QuotaPeaks()
	qm, qh := srv.Quotas()
	if pm > qm || ph > qh {
		t.Errorf("calls broke the quota: %d in a minute window (max %d), %d in an hour window (max %d)", pm, qm, ph, qh)
	}
	for v, n := range l.seen {
		if n > 1 {
			t.Errorf("%v handed on %d times", v, n)
		}
	}
	for i, r := range runs {
		for _, v := range r.read {
			if v.t.Before(r.from) || !v.t.Before(r.to) {
				t.Errorf("run %d: %v is outside the window [%v, %v)", i, v, r.from, r.to)
			}
			found := false
			for _, hv := range srv.Versions(v.id) {
				found = found || hv.LastUpdate.Equal(v.t)
			}
			if !found {
				t.Errorf("run %d: %v is not a version the tenant ever had", i, v)
			}
		}
		atStart := srv.Current(r.start)
		missing := 0
		for id, cur := range srv.Current(r.end) {
			if cur.LastUpdate.Before(r.from) || !cur.LastUpdate.Before(r.to) {
				continue
			}
			if s, ok := atStart[id]; !ok || !s.LastUpdate.Equal(cur.LastUpdate) {
				continue // changed during the run: the next run's window covers it
			}
			if l.seen[version{id, cur.LastUpdate}] == 0 {
				if missing < 5 {
					t.Errorf("run %d: missed %s@%s", i, id, defendertest.FormatTime(cur.LastUpdate))
				}
				missing++
			}
		}
		if missing > 0 {
			t.Errorf("run %d: %d alerts missed", i, missing)
		}
	}
}

func newLedger() *ledger { return &ledger{seen: map[version]int{}} }

// spread places n alerts over the day before now, some sharing timestamps.
func spread(now time.Time, n int) func(int) time.Time {
	return func(i int) time.Time {
		return now.Add(-24 * time.Hour).Add(time.Duration(i) * 24 * time.Hour / time.Duration(n))
	}
}

func TestDrain25000With3000SharingOneTime(t *testing.T) {
	for _, pageSize := range []int{10000, 1000} {
		t.Run(fmt.Sprintf("page %d", pageSize), func(t *testing.T) {
			srv := newServer(t, defendertest.Options{})
			now := time.Now().UTC()
			ids := srv.AddAlerts(25000, spread(now, 25000))
			// An analyst resolves 3,000 alerts at once: they share one lastUpdateTime.
			srv.UpdateAt(ids[5000:8000], now.Add(-7*time.Hour).Truncate(time.Second))
			srv.SetOrder(defendertest.NewestFirstTies)
			c := newClient(t, srv, func(c *defender.Config) { c.PageSize = pageSize })
			l := newLedger()
			r, err := drainWindow(t, c, time.Now, now.Add(-25*time.Hour), now, l)
			if err != nil {
				t.Fatal(err)
			}
			check(t, srv, []drainRun{r}, l)
			if len(r.read) != 25000 {
				t.Errorf("read %d alerts, want 25000", len(r.read))
			}
			floor := 25000/pageSize + 1
			t.Logf("page %d: %d calls (minimum %d), %d repeats dropped, tie groups %d, unordered %v",
				pageSize, r.stats.Calls, floor, r.stats.Repeats, r.stats.TieGroups, r.stats.Unordered)
			if r.stats.Unordered {
				t.Error("the stand-in's newest-first order was not used")
			}
			if pageSize == 1000 && r.stats.TieGroups == 0 {
				t.Error("3,000 alerts at one time with 1,000-alert pages must be read as a tie group")
			}
			// The old bound, plus one count probe per full page (the proof of each page).
			if max := floor*3/2 + 2 + 25000/pageSize; r.stats.Calls > max {
				t.Errorf("%d calls, want at most %d", r.stats.Calls, max)
			}
		})
	}
}

func TestDrainWhileAlertsChange(t *testing.T) {
	for _, order := range []defendertest.Order{defendertest.NewestFirstTies, defendertest.Shuffled} {
		t.Run(fmt.Sprint("order ", order), func(t *testing.T) {
			srv := newServer(t, defendertest.Options{})
			now := time.Now().UTC()
			srv.AddAlerts(25000, spread(now, 25000))
			srv.SetOrder(order)
			c := newClient(t, srv, func(c *defender.Config) { c.PageSize = 2000 })
			l := newLedger()
			// 20 updates a second in the background, and 40 more between any two pages so that
			// every page sees the window shift under it.
			stop := srv.StartUpdates(20)
			srv.UpdatesPerCall(40)
			r1, err := drainWindow(t, c, time.Now, now.Add(-25*time.Hour), now, l)
			stop()
			srv.UpdatesPerCall(0)
			if err != nil {
				t.Fatal(err)
			}
			// The next read covers what changed during the first.
			now2 := time.Now().UTC()
			r2, err := drainWindow(t, c, time.Now, now.Add(-10*time.Minute), now2, l)
			if err != nil {
				t.Fatal(err)
			}
			check(t, srv, []drainRun{r1, r2}, l)
			st := srv.Stats()
			t.Logf("%d updates during the read; run 1 read %d in %d calls (unordered %v), run 2 read %d",
				st.Updates, len(r1.read), r1.stats.Calls, r1.stats.Unordered, len(r2.read))
			if st.Updates < 200 {
				t.Errorf("only %d updates happened during the drain", st.Updates)
			}
			// Everything current now was read in its current version.
			for id, v := range srv.Current(time.Now()) {
				if !l.delivered(id, v.LastUpdate) {
					t.Errorf("%s@%v never read", id, v.LastUpdate)
				}
			}
		})
	}
}

// fakeClock is the tenant's simulated time.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func TestLateVisibility(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)}
	srv := newServer(t, defendertest.Options{Now: clock.Now, Seed: 3})
	// Versions become visible up to 5 (simulated) minutes after their lastUpdateTime.
	srv.SetVisibilityDelay(func(r *mrand.Rand) time.Duration { return time.Duration(r.Int64N(int64(5 * time.Minute))) })
	c := newClient(t, srv, nil)
	l := newLedger()
	const overlap = 10 * time.Minute
	var runs []drainRun
	watermark := clock.Now().Add(-time.Hour)
	for step := 0; step < 40; step++ {
		// A minute of tenant life: new alerts and updates.
		base := clock.Now()
		srv.AddAlerts(40, func(i int) time.Time { return base.Add(time.Duration(i) * time.Minute / 40) })
		clock.Advance(time.Minute)
		srv.Update(15)
		if step%2 == 1 { // poll every two minutes
			to := clock.Now()
			r, err := drainWindow(t, c, clock.Now, watermark.Add(-overlap), to, l)
			if err != nil {
				t.Fatal(err)
			}
			runs = append(runs, r)
			watermark = to
		}
	}
	clock.Advance(6 * time.Minute) // everything is visible now
	r, err := drainWindow(t, c, clock.Now, watermark.Add(-overlap), clock.Now(), l)
	if err != nil {
		t.Fatal(err)
	}
	runs = append(runs, r)
	check(t, srv, runs, l)
	late := 0
	for _, r := range runs[1:] {
		for _, v := range r.read {
			if v.t.Before(r.from.Add(overlap)) {
				late++ // found only thanks to the overlap
			}
		}
	}
	for id, v := range srv.Current(clock.Now()) {
		if !l.delivered(id, v.LastUpdate) {
			t.Errorf("final version of %s never read", id)
		}
	}
	t.Logf("%d runs, %d versions read, %d of them only in the overlap", len(runs), len(l.seen), late)
	if late == 0 {
		t.Error("no version was found in the overlap: the scenario did not exercise late visibility")
	}
}

func TestThrottleStormHonoursRetryAfter(t *testing.T) {
	srv := newServer(t, defendertest.Options{})
	now := time.Now().UTC()
	srv.AddAlerts(5000, spread(now, 5000))
	srv.Throttle(6, 150*time.Millisecond)
	c := newClient(t, srv, func(c *defender.Config) { c.PageSize = 1000 })
	l := newLedger()
	started := time.Now()
	r, err := drainWindow(t, c, time.Now, now.Add(-25*time.Hour), now, l)
	if err != nil {
		t.Fatal(err)
	}
	check(t, srv, []drainRun{r}, l)
	st := srv.Stats()
	if st.ByStatus[429] != 6 || st.Violations != 0 {
		t.Errorf("429s %d (want 6), calls before Retry-After passed: %d (want 0)", st.ByStatus[429], st.Violations)
	}
	if el := time.Since(started); el < 6*150*time.Millisecond {
		t.Errorf("six 429s of 150 ms were waited out in %v", el)
	}
	if len(r.read) != 5000 {
		t.Errorf("read %d, want 5000", len(r.read))
	}
}

// With the quotas shrunk (8 per second, 20 per 4 s), the client's own limiter keeps every
// call within them: the stand-in never has to answer 429.
func TestCallsStayWithinQuotas(t *testing.T) {
	lim := defender.Limits{PerMinute: 8, Minute: time.Second, PerHour: 20, Hour: 4 * time.Second}
	srv := newServer(t, defendertest.Options{PerMinute: lim.PerMinute, Minute: lim.Minute, PerHour: lim.PerHour, Hour: lim.Hour})
	now := time.Now().UTC()
	srv.AddAlerts(5000, spread(now, 5000))
	c := newClient(t, srv, func(c *defender.Config) { c.PageSize = 200; c.Limits = lim })
	l := newLedger()
	r, err := drainWindow(t, c, time.Now, now.Add(-25*time.Hour), now, l)
	if err != nil {
		t.Fatal(err)
	}
	check(t, srv, []drainRun{r}, l)
	st := srv.Stats()
	perMin, perHour := srv.MaxCalls(lim.Minute), srv.MaxCalls(lim.Hour)
	t.Logf("%d calls; at most %d in any %v and %d in any %v; limiter waits %d", st.APICalls, perMin, lim.Minute, perHour, lim.Hour, c.Stats().LimiterWaits)
	if st.APICalls < 21 {
		t.Fatalf("only %d calls: the scenario did not reach the quotas", st.APICalls)
	}
	if perMin > lim.PerMinute || perHour > lim.PerHour || st.ByStatus[429] != 0 {
		t.Errorf("quota broken: %d per short window, %d per long window, %d 429s", perMin, perHour, st.ByStatus[429])
	}
}

func TestFailuresAreRetried(t *testing.T) {
	srv := newServer(t, defendertest.Options{Seed: 11})
	now := time.Now().UTC()
	srv.AddAlerts(20000, spread(now, 20000))
	srv.SetFailures(0.2, 0.25)
	srv.SetStalls(0.1, 4*time.Second)
	c := newClient(t, srv, func(c *defender.Config) {
		c.PageSize = 2000
		c.MaxAttempts = 30
		c.RequestTimeout = 2 * time.Second // a 2,000-alert page under -race on a busy machine takes a while
	})
	l := newLedger()
	r, err := drainWindow(t, c, time.Now, now.Add(-25*time.Hour), now, l)
	if err != nil {
		t.Fatal(err)
	}
	check(t, srv, []drainRun{r}, l)
	st, cs := srv.Stats(), c.Stats()
	t.Logf("500s %d, cut-off bodies %d, retries %d, repeats dropped %d, calls %d", st.ByStatus[500], st.CutOff, cs.Retries, r.stats.Repeats, cs.Calls)
	if st.ByStatus[500] == 0 || st.CutOff == 0 || cs.CallsByStatus[0] == 0 {
		t.Errorf("the scenario produced no 500 (%d), cut-off (%d) or timeout (%d)", st.ByStatus[500], st.CutOff, cs.CallsByStatus[0])
	}
	if len(r.read) != 20000 {
		t.Errorf("read %d, want 20000", len(r.read))
	}
}

func TestTransientFailuresAreBounded(t *testing.T) {
	srv := newServer(t, defendertest.Options{})
	srv.AddAlerts(10, spread(time.Now(), 10))
	srv.SetFailures(1, 0)
	c := newClient(t, srv, func(c *defender.Config) { c.MaxAttempts = 4 })
	_, err := c.ReadWindow(context.Background(), defender.Window{From: time.Now().Add(-48 * time.Hour), To: time.Now()},
		func(defender.Alert, *defender.Progress) error { return nil })
	var ae *defender.APIError
	if !errors.As(err, &ae) || ae.Status != 500 || !strings.Contains(err.Error(), "giving up after 4 attempts") {
		t.Fatalf("err = %v", err)
	}
	if n := srv.Stats().APICalls; n != 4 {
		t.Errorf("%d calls, want 4", n)
	}
}

func TestExpiredTokenIsRenewed(t *testing.T) {
	srv := newServer(t, defendertest.Options{})
	now := time.Now().UTC()
	srv.AddAlerts(8000, spread(now, 8000))
	c := newClient(t, srv, func(c *defender.Config) {
		c.PageSize = 1000
		c.Limits = defender.Limits{PerMinute: 4, Minute: time.Second}
	})
	l := newLedger()
	n := 0
	_, err := c.ReadWindow(context.Background(), defender.Window{From: now.Add(-25 * time.Hour), To: now, Delivered: l.delivered},
		func(a defender.Alert, _ *defender.Progress) error {
			// The token dies early (it would live an hour): the next call (the first page's
			// probe) gets 401 and must renew it.
			if n++; n == 1000 {
				srv.ExpireTokens()
			}
			l.seen[version{a.ID, a.LastUpdate}]++
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	st, cs := srv.Stats(), c.Stats()
	t.Logf("tokens issued %d, 401s %d, renewals after 401 %d", st.TokensIssued, st.ByStatus[401], cs.Renewals)
	if st.ByStatus[401] < 1 || cs.Renewals < 1 {
		t.Error("the expired token was not seen and renewed")
	}
	if st.TokensIssued != 2 {
		t.Errorf("tokens issued %d: want the first and one renewal", st.TokensIssued)
	}
	if len(l.seen) != 8000 {
		t.Errorf("read %d, want 8000", len(l.seen))
	}
}

func TestTokenErrorsSayWhatToFix(t *testing.T) {
	_, cert, err := defendertest.SelfSigned(time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	otherPEM, _, err := defendertest.SelfSigned(time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		opt    defendertest.Options
		mod    func(*defender.Config)
		reason defender.TokenReason
		want   string
	}{
		{"wrong secret", defendertest.Options{ClientSecret: "the-real-one"}, nil, defender.WrongSecret, "Value (not its Secret ID)"},
		{"expired secret", defendertest.Options{SecretExpired: true}, nil, defender.ExpiredSecret, "create a new one"},
		{"unknown client", defendertest.Options{ClientID: "11111111-2222-3333-4444-555555555555"}, nil, defender.UnknownClient, "client (application) id"},
		{"unknown tenant", defendertest.Options{TenantID: "99999999-2222-3333-4444-555555555555"}, nil, defender.UnknownTenant, "tenant id"},
		{"certificate not registered", defendertest.Options{Certificate: cert}, func(c *defender.Config) {
			c.ClientSecret = ""
			c.CertificatePEM = secret.String(otherPEM)
		}, defender.BadCertificate, "upload this certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, tt.opt)
			c := newClient(t, srv, tt.mod)
			_, err := c.ReadWindow(context.Background(), defender.Window{From: time.Now().Add(-time.Hour), To: time.Now()},
				func(defender.Alert, *defender.Progress) error { return nil })
			var te *defender.TokenError
			if !errors.As(err, &te) || te.Reason != tt.reason {
				t.Fatalf("err = %v, want a %q token error", err, tt.reason)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) {
				t.Errorf("message %q does not say %q", msg, tt.want)
			}
			for _, leak := range []string{secretV, "Trace ID", "Correlation", "\n"} {
				if strings.Contains(msg, leak) {
					t.Errorf("message leaks %q: %q", leak, msg)
				}
			}
			if !needsFix(err) {
				t.Errorf("%v: classified as clearing by itself, want a refusal that needs a fix", err)
			}
			if n := srv.Stats().APICalls; n != 0 {
				t.Errorf("%d API calls without a token", n)
			}
		})
	}
}

func TestCertificateLogin(t *testing.T) {
	pemDoc, cert, err := defendertest.SelfSigned(time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(t, defendertest.Options{Certificate: cert, TokenLifetime: 600 * time.Millisecond})
	now := time.Now().UTC()
	srv.AddAlerts(3000, spread(now, 3000))
	c := newClient(t, srv, func(c *defender.Config) {
		c.ClientSecret = ""
		c.CertificatePEM = secret.String(pemDoc)
		c.PageSize = 500
		c.Limits = defender.Limits{PerMinute: 3, Minute: 500 * time.Millisecond}
	})
	l := newLedger()
	r, err := drainWindow(t, c, time.Now, now.Add(-25*time.Hour), now, l)
	if err != nil {
		t.Fatal(err)
	}
	check(t, srv, []drainRun{r}, l)
	st := srv.Stats()
	if len(r.read) != 3000 || st.TokenRejected != 0 || st.TokensIssued < 2 {
		t.Errorf("read %d, tokens issued %d (want ≥ 2: each renewal signs a fresh assertion), rejected %d", len(r.read), st.TokensIssued, st.TokenRejected)
	}

	// An expired certificate is refused before Entra ID is asked.
	oldPEM, _, err := defendertest.SelfSigned(time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	_, err = defender.New(defender.Config{TenantID: tenantID, ClientID: clientID, CertificatePEM: secret.String(oldPEM)})
	var fe *defender.FieldError
	if !errors.As(err, &fe) || fe.Field != "CertificatePEM" || !strings.Contains(err.Error(), "expired on") {
		t.Errorf("expired certificate: err = %v", err)
	}
}

func TestMissingPermission(t *testing.T) {
	srv := newServer(t, defendertest.Options{NoPermission: true})
	c := newClient(t, srv, nil)
	_, err := c.ReadWindow(context.Background(), defender.Window{From: time.Now().Add(-time.Hour), To: time.Now()},
		func(defender.Alert, *defender.Progress) error { return nil })
	var ae *defender.APIError
	if !errors.As(err, &ae) || ae.Status != 403 || ae.Retryable() {
		t.Fatalf("err = %v, want a permanent 403", err)
	}
	if !strings.Contains(err.Error(), "the app lacks the Alert.Read.All application permission or admin consent") {
		t.Errorf("message does not explain: %v", err)
	}
	if n := srv.Stats().APICalls; n != 1 {
		t.Errorf("%d calls: a 403 must not be retried", n)
	}
}

func TestUnorderedAPIStaysComplete(t *testing.T) {
	for _, order := range []defendertest.Order{defendertest.OldestFirst, defendertest.Shuffled} {
		t.Run(fmt.Sprint(order), func(t *testing.T) {
			srv := newServer(t, defendertest.Options{})
			now := time.Now().UTC()
			ids := srv.AddAlerts(12500, spread(now, 12500))
			srv.UpdateAt(ids[:1500], now.Add(-3*time.Hour)) // more than a page at one time
			srv.SetOrder(order)
			c := newClient(t, srv, func(c *defender.Config) { c.PageSize = 1000 })
			l := newLedger()
			r, err := drainWindow(t, c, time.Now, now.Add(-25*time.Hour), now, l)
			if err != nil {
				t.Fatal(err)
			}
			check(t, srv, []drainRun{r}, l)
			t.Logf("%d calls, %d repeats, tie groups %d", r.stats.Calls, r.stats.Repeats, r.stats.TieGroups)
			if !r.stats.Unordered || len(r.read) != 12500 {
				t.Errorf("unordered %v, read %d (want true, 12500)", r.stats.Unordered, len(r.read))
			}
		})
	}
}

// A drain stopped part-way (a crash) and resumed from the last Position taken re-reads
// nothing that position covers.
func TestResumeFromPosition(t *testing.T) {
	now := time.Now().UTC()
	shared := now.Add(-5 * time.Hour)
	from, to := now.Add(-25*time.Hour), now
	for _, stopAt := range []int{1, 2999, 3000, 5000, 7777} {
		t.Run(fmt.Sprint(stopAt), func(t *testing.T) {
			// A tenant each: with a probe per full page, five drains and their resumes would
			// exceed one tenant's 100 calls a minute and wait out a 429.
			srv := newServer(t, defendertest.Options{})
			srv.AddAlerts(9000, spread(now, 9000))
			srv.AddAlerts(700, func(int) time.Time { return shared })
			c := newClient(t, srv, func(c *defender.Config) { c.PageSize = 1000 })
			seen := map[version]int{}
			const batch = 300
			// a batch boundary: what a checkpoint would hold (none before the first batch)
			saved := crashEvery(t, c, defender.Window{From: from, To: to}, stopAt, batch, seen, nil)
			if err := resumeFrom(c, defender.Window{From: from, To: to}, saved, seen); err != nil {
				t.Fatal(err)
			}
			dups := repeats(seen)
			if len(seen) != 9700 {
				t.Errorf("read %d distinct, want 9700", len(seen))
			}
			want := stopAt % batch
			if stopAt < batch {
				want = stopAt
			}
			if dups != want {
				t.Errorf("%d repeated after the resume, want %d (the alerts after the last position)", dups, want)
			}
		})
	}
}

func TestStandInRejectsWhatTheAPIRejects(t *testing.T) {
	srv := newServer(t, defendertest.Options{})
	c := newClient(t, srv, nil)
	if err := c.CheckToken(context.Background()); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, query string
		want        int
	}{
		{"top over 10000", "$top=10001", 400},
		{"orderby", "$orderby=lastUpdateTime%20desc", 400},
		{"quoted date", "$filter=lastUpdateTime%20ge%20'2024-05-01T10:00:00Z'", 400},
		{"unknown property", "$filter=updatedAt%20ge%202024-05-01T10:00:00Z", 400},
		{"eight fractional digits", "$filter=lastUpdateTime%20ge%202024-05-01T10:00:00.12345678Z", 400},
		{"fine", "$filter=lastUpdateTime%20ge%202024-05-01T10:00:00.1234567Z&$top=10000&$skip=5&$expand=evidence", 200},
	}
	tok := dtest.TokenFor(t, srv, tenantID, clientID, secretV)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := dtest.GetStatus(t, srv.URL+"/api/alerts?"+tt.query, tok); got != tt.want {
				t.Errorf("status %d, want %d", got, tt.want)
			}
		})
	}
	if got := dtest.GetStatus(t, srv.URL+"/api/alerts", ""); got != 401 {
		t.Errorf("no token: %d, want 401", got)
	}
}

// Issue 16's sequence: tokens that live a second, a quota that answers 429 with a Retry-After
// longer than a token's life, and 500s. Every wait (Retry-After, backoff) outlasts the token
// taken before it, so a client that takes its token before waiting sends it expired, renews
// it, waits again and sends the renewed one expired too. The drain must ride all of that out:
// a token refused after a wait is never "a fresh token refused".
func TestTokensOutlivedByWaitsAreRenewed(t *testing.T) {
	for run := range 1 {
		t.Run(fmt.Sprint("run", run), func(t *testing.T) {
			srv := newServer(t, defendertest.Options{Seed: uint64(run + 1), TokenLifetime: time.Second,
				PerMinute: 2, Minute: 1500 * time.Millisecond})
			now := time.Now().UTC()
			srv.AddAlerts(400, spread(now, 400))
			srv.FailEvery(3)
			c := newClient(t, srv, func(c *defender.Config) {
				c.PageSize = 100
				c.MaxAttempts = 30
				c.BackoffInitial = 300 * time.Millisecond
				c.BackoffMax = 1200 * time.Millisecond
			})
			l := newLedger()
			_, err := drainWindow(t, c, time.Now, now.Add(-25*time.Hour), now, l)
			st, cs := srv.Stats(), c.Stats()
			t.Logf("calls %d (401 %d, 429 %d, 500 %d), tokens issued %d, renewals %d", st.APICalls, st.ByStatus[401],
				st.ByStatus[429], st.ByStatus[500], st.TokensIssued, cs.Renewals)
			if err != nil {
				t.Fatalf("the drain stopped: %v", err)
			}
			// (check's quota test does not apply: this stand-in is meant to answer 429s.)
			for v, n := range l.seen {
				if n > 1 {
					t.Errorf("%v handed on %d times", v, n)
				}
			}
			if len(l.seen) != 400 {
				t.Errorf("read %d versions, want 400", len(l.seen))
			}
			if st.ByStatus[401] != 0 || st.TokensIssued < 3 {
				t.Errorf("401s %d, tokens issued %d: a token should be renewed before it expires, never sent expired", st.ByStatus[401], st.TokensIssued)
			}
			if st.ByStatus[429] == 0 || st.ByStatus[500] == 0 {
				t.Errorf("the scenario produced no 429 (%d) or 500 (%d)", st.ByStatus[429], st.ByStatus[500])
			}
		})
	}
}

// The same sequence, scripted: two 429s whose Retry-After outlives a token. A token taken
// before the first wait is sent expired (401); the renewed one, if also taken before its wait,
// is sent expired as well, and must still not be taken for "a fresh token refused".
func TestTokenTakenAfterEveryWait(t *testing.T) {
	srv := newServer(t, defendertest.Options{TokenLifetime: time.Second})
	now := time.Now().UTC()
	srv.AddAlerts(10, spread(now, 10))
	srv.Throttle(2, 1200*time.Millisecond)
	c := newClient(t, srv, nil)
	l := newLedger()
	r, err := drainWindow(t, c, time.Now, now.Add(-25*time.Hour), now, l)
	if err != nil {
		t.Fatalf("the drain stopped: %v", err)
	}
	st := srv.Stats()
	if len(r.read) != 10 || st.ByStatus[429] != 2 {
		t.Errorf("read %d (want 10), 429s %d (want 2)", len(r.read), st.ByStatus[429])
	}
	if st.ByStatus[401] != 0 {
		t.Errorf("%d calls went out with an expired token: the token was taken before a wait", st.ByStatus[401])
	}
}

// A token the API refuses although it was issued just before the call is a configuration
// problem: reported as such after one renewal, not retried for ever.
func TestFreshTokenRefusedIsPermanent(t *testing.T) {
	srv := newServer(t, defendertest.Options{})
	srv.AddAlerts(10, spread(time.Now(), 10))
	srv.RefuseTokens(true)
	c := newClient(t, srv, nil)
	_, err := c.ReadWindow(context.Background(), defender.Window{From: time.Now().Add(-48 * time.Hour), To: time.Now()},
		func(defender.Alert, *defender.Progress) error { return nil })
	if err == nil || !needsFix(err) || !strings.Contains(err.Error(), "freshly issued token") {
		t.Fatalf("err = %v (needs a fix: %v)", err, needsFix(err))
	}
	if st := srv.Stats(); st.ByStatus[401] != 2 || st.TokensIssued != 2 {
		t.Errorf("401s %d, tokens %d: want one renewal (2 and 2)", st.ByStatus[401], st.TokensIssued)
	}
}

// A give-up time bounds one call's retries and waits: an API that throttles with an hour's
// Retry-After ends a run --once (or a modular input run) at its give-up time, not after 30
// hour-long waits.
func TestGiveUpBoundsThrottling(t *testing.T) {
	srv := newServer(t, defendertest.Options{})
	srv.AddAlerts(10, spread(time.Now(), 10))
	srv.Throttle(100, time.Hour)
	c := newClient(t, srv, func(c *defender.Config) { c.GiveUpAfter = 300 * time.Millisecond })
	begun := time.Now()
	_, err := c.Probe(context.Background(), time.Now())
	var ae *defender.APIError
	if err == nil || !strings.Contains(err.Error(), "gave up after") || !errors.As(err, &ae) || ae.Status != http.StatusTooManyRequests || !ae.Retryable() {
		t.Fatalf("err = %v, want the last 429, which clears by itself", err)
	}
	if d := time.Since(begun); d > 5*time.Second {
		t.Errorf("gave up after %v", d)
	}
}

// needsFix reports whether err is classified (retry.Classified) as not clearing by itself.
func needsFix(err error) bool {
	retryable, known := retry.Retryable(err)
	return known && !retryable
}
