package defender_test

import (
	mrand "math/rand/v2"
	"testing"
	"time"

	"ta-defender-alerts/app/defender"
	"ta-defender-alerts/app/defendertest"
)

// The incidents feed under the stand-in's adversities at once, on the XDR API's pages of 100
// and quotas of 50 a minute and 1,500 an hour (both windows shrunk, in the same ratio): no
// stable list order, a bulk update of 250 incidents sharing one lastUpdateTime (a tie group
// larger than a page, split by createdTime), incidents changing while paged (their nested
// alerts changed or not), versions visible up to 300 ms late, 429s with Retry-After, 500s,
// replies cut off mid-body and access tokens expiring. After the adversity stops, one more
// window over the overlap: every current incident version handed on exactly once, none
// twice, every handed incident's nested alerts readable.
func TestIncidentsFeedUnderAdversity(t *testing.T) {
	lim := defender.Limits{PerMinute: 50, Minute: 50 * time.Millisecond, PerHour: 1500, Hour: 3 * time.Second}
	srv := newServer(t, defendertest.Options{Mode: defendertest.IncidentsMode, Seed: 24,
		PerMinute: lim.PerMinute, Minute: lim.Minute, PerHour: lim.PerHour, Hour: lim.Hour})
	base := time.Now().UTC().Add(-30 * time.Minute).Truncate(time.Second)
	ids := srv.AddAlerts(1500, func(i int) time.Time { return base.Add(time.Duration(i) * 1100 * time.Millisecond) })
	srv.UpdateAt(ids[100:350], base.Add(28*time.Minute)) // a bulk action: 250 incidents share one lastUpdateTime
	srv.SetOrder(defendertest.Shuffled)
	srv.UpdatesPerCall(2)
	srv.SetVisibilityDelay(func(r *mrand.Rand) time.Duration { return time.Duration(r.Int64N(int64(300 * time.Millisecond))) })
	srv.FailEvery(15)        // a 500 on every 15th call that passes the token and quota checks
	srv.SetFailures(0, 0.12) // and replies cut off mid-body
	srv.Throttle(3, 100*time.Millisecond)
	c := newClient(t, srv, func(c *defender.Config) {
		c.Feed = defender.FeedIncidents
		c.Limits = lim
		c.MaxAttempts = 20
	})
	if c.Endpoints().Scope != "https://api.security.microsoft.com/.default" {
		t.Fatalf("scope %s", c.Endpoints().Scope)
	}
	// Tokens die every 150 ms: the client must renew them on the 401 and go on.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tk := time.NewTicker(150 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				srv.ExpireTokens()
			}
		}
	}()
	l := newLedger()
	to1 := time.Now().UTC()
	r1, err := drainWindow(t, c, time.Now, base.Add(-time.Minute), to1, l)
	close(stop)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	srv.UpdatesPerCall(0)
	srv.FailEvery(0)
	srv.SetFailures(0, 0)
	time.Sleep(400 * time.Millisecond) // every version visible; the next window ends past them
	r2, err := drainWindow(t, c, time.Now, to1.Add(-2*time.Second), time.Now().UTC(), l)
	if err != nil {
		t.Fatal(err)
	}
	check(t, srv, []drainRun{r1, r2}, l)

	missing := 0
	for id, v := range srv.Current(time.Now()) {
		if n := l.seen[version{id, v.LastUpdate.UTC()}]; n != 1 {
			if missing < 5 {
				t.Errorf("incident %s@%s handed on %d times", id, defendertest.FormatTime(v.LastUpdate), n)
			}
			missing++
		}
	}
	st, cs := srv.Stats(), c.Stats()
	t.Logf("%d versions handed on (%d + %d), %d current not handed on exactly once; %d calls (%v, %d cut off), %d updates, %d tokens, %d tie groups, read by %q; %d calls before a Retry-After had passed",
		len(l.seen), len(r1.read), len(r2.read), missing, st.APICalls, st.ByStatus, st.CutOff, st.Updates, st.TokensIssued, r1.stats.TieGroups, r1.stats.By, st.Violations)
	if missing != 0 {
		t.Errorf("%d current incident versions not handed on exactly once", missing)
	}
	if st.Violations != 0 {
		t.Errorf("%d calls came before a Retry-After had passed", st.Violations)
	}
	// The scenario must have exercised what it claims.
	switch {
	case st.ByStatus[429] < 3 || st.ByStatus[500] == 0 || st.CutOff == 0:
		t.Errorf("429s %d, 500s %d, cut-off replies %d: the adversity did not happen", st.ByStatus[429], st.ByStatus[500], st.CutOff)
	case st.ByStatus[401] == 0 || st.TokensIssued < 2:
		t.Errorf("401s %d, tokens issued %d: no token expired during the drain", st.ByStatus[401], st.TokensIssued)
	case st.Updates < 250+40: // the bulk update, and 2 after each page answered
		t.Errorf("only %d updates", st.Updates)
	case r1.stats.TieGroups == 0 && r1.stats.By == "":
		t.Error("neither a tie group nor another key was read: the bulk update was not a problem to solve")
	case cs.Retries == 0:
		t.Error("no retries")
	}
}
