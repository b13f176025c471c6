package defender_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"ta-defender-alerts/app/defender"
	"ta-defender-alerts/app/defendertest"
)

var allOrders = []defendertest.Order{
	defendertest.NewestFirst, defendertest.NewestFirstTies, defendertest.NewestCreatedFirst,
	defendertest.IDOrder, defendertest.OldestFirst, defendertest.Shuffled,
}

// The sequence: six alerts, pages of three, and the oldest alert updated a moment ago.
// An API that lists by creation time (or id) shows the three newest-created alerts first, in
// an order that looks like lastUpdateTime's; the updated old alert is on the second page with
// a lastUpdateTime above where the first page ended. Every order must still give all six.
func TestSixAlertsInAnyOrder(t *testing.T) {
	for _, order := range allOrders {
		t.Run(order.String(), func(t *testing.T) {
			srv := newServer(t, defendertest.Options{Seed: 5})
			now := time.Now().UTC().Truncate(time.Second)
			ids := srv.AddAlerts(6, func(i int) time.Time { return now.Add(-time.Hour).Add(time.Duration(i) * 10 * time.Minute) })
			// Between the 4th and 5th alert's times: above the first page's end, below its top.
			srv.UpdateAt(ids[:1], now.Add(-25*time.Minute))
			srv.SetOrder(order)
			c := newClient(t, srv, func(c *defender.Config) { c.PageSize = 3 })
			l := newLedger()
			r, err := drainWindow(t, c, time.Now, now.Add(-2*time.Hour), now, l)
			if err != nil {
				t.Fatal(err)
			}
			check(t, srv, []drainRun{r}, l)
			if len(r.read) != 6 {
				t.Errorf("read %d of 6: %v", len(r.read), r.read)
			}
			t.Logf("%s: %d calls, %d alerts returned", order, r.stats.Calls, srv.Stats().AlertsReturned)
		})
	}
}

// backlog makes n alerts created over three days, and gives a tenth of them a second version
// at a later time (an analyst's update), so that creation order and lastUpdateTime order
// differ as they do in a real tenant.
func backlog(srv *defendertest.Server, now time.Time, n int) {
	span := 72 * time.Hour
	srv.AddAlerts(n, func(i int) time.Time { return now.Add(-span).Add(time.Duration(i) * span / time.Duration(n)) })
	srv.Revisit(10, now.Add(-time.Second))
}

// The cost of completeness, at the default page size: with lastUpdateTime order one probe per
// full page at most; with creation or id order at most three times the minimum calls; each
// alert downloaded once for these three. Shuffled must only be complete.
func TestOrderCosts(t *testing.T) {
	const n = 25000
	for _, order := range allOrders {
		t.Run(order.String(), func(t *testing.T) {
			srv := newServer(t, defendertest.Options{Seed: 9})
			now := time.Now().UTC()
			backlog(srv, now, n)
			srv.SetOrder(order)
			c := newClient(t, srv, nil) // the default page size, 10,000
			l := newLedger()
			r, err := drainWindow(t, c, time.Now, now.Add(-100*time.Hour), now, l)
			if err != nil {
				t.Fatal(err)
			}
			check(t, srv, []drainRun{r}, l)
			if len(r.read) != n {
				t.Errorf("read %d, want %d", len(r.read), n)
			}
			st := srv.Stats()
			minCalls := n/defender.MaxPageSize + 1
			fullPages := n / defender.MaxPageSize
			t.Logf("%s: %d calls (minimum %d), %d alerts returned, %.1f MB", order, r.stats.Calls, minCalls, st.AlertsReturned, float64(st.BytesOut)/1e6)
			switch order {
			case defendertest.NewestFirst, defendertest.NewestFirstTies:
				if max := minCalls + fullPages; r.stats.Calls > max {
					t.Errorf("%d calls, want at most %d (the minimum plus one probe per full page)", r.stats.Calls, max)
				}
			case defendertest.NewestCreatedFirst, defendertest.IDOrder, defendertest.OldestFirst:
				if max := 3 * minCalls; r.stats.Calls > max {
					t.Errorf("%d calls, want at most %d (three times the minimum)", r.stats.Calls, max)
				}
			}
			if order != defendertest.Shuffled {
				// Every alert once; a failed probe returns one alert.
				if max := n + 3; st.AlertsReturned > max {
					t.Errorf("%d alerts downloaded, want at most %d", st.AlertsReturned, max)
				}
			}
		})
	}
}

// Item 3: more than a page of versions sharing both times, in an API that shuffles ties on
// every call. Four $skip passes used to end with a few missing and no error.
func TestTieOfBothTimesIsReadCompletely(t *testing.T) {
	srv := newServer(t, defendertest.Options{Seed: 1})
	now := time.Now().UTC().Truncate(time.Second)
	shared := now.Add(-3 * time.Hour)
	srv.AddAlerts(3000, func(int) time.Time { return shared }) // created and updated at once
	srv.AddAlerts(500, spread(now, 500))
	srv.SetOrder(defendertest.NewestFirstTies)
	c := newClient(t, srv, func(c *defender.Config) { c.PageSize = 1000 })
	l := newLedger()
	r, err := drainWindow(t, c, time.Now, now.Add(-25*time.Hour), now, l)
	if err != nil {
		t.Fatal(err)
	}
	check(t, srv, []drainRun{r}, l)
	if len(r.read) != 3500 {
		t.Errorf("read %d of 3500", len(r.read))
	}
	t.Logf("%d calls, tie groups %d", r.stats.Calls, r.stats.TieGroups)
}

// Item 3: when the group cannot be proven complete (here: an API that ignores $skip, so every
// pass sees the same page), the drain stops with an error naming the window instead of
// reporting success.
func TestTieOfBothTimesUnprovableIsAnError(t *testing.T) {
	srv := newServer(t, defendertest.Options{Seed: 1})
	now := time.Now().UTC().Truncate(time.Second)
	shared := now.Add(-3 * time.Hour)
	srv.AddAlerts(1500, func(int) time.Time { return shared })
	srv.IgnoreSkip(true)
	c := newClient(t, srv, func(c *defender.Config) { c.PageSize = 1000 })
	from, to := now.Add(-25*time.Hour), now
	var last defender.Position
	n := 0
	// A drain that keeps paging instead of giving up is a failure too, not a hang.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := c.ReadWindow(ctx, defender.Window{From: from, To: to}, func(a defender.Alert, p *defender.Progress) error {
		n++
		last = p.Position()
		return nil
	})
	if err == nil || ctx.Err() != nil {
		t.Fatalf("read %d of 1500; err = %v", n, err)
	}
	if !strings.Contains(err.Error(), defender.FilterTime(from)) || !strings.Contains(err.Error(), defender.FilterTime(to)) {
		t.Errorf("the error does not name the window [%v, %v): %v", from, to, err)
	}
	if !needsFix(err) {
		t.Errorf("%v: classified as clearing by itself, want a refusal that needs a fix", err)
	}
	// The last position must not claim the group done: a resume reads it again.
	if last.Page.Upper.Before(shared) || (last.Page.Upper.Equal(shared) && !last.Page.Inclusive) {
		t.Errorf("the position moved past the unproven group: %+v", last.Page)
	}
	t.Logf("%d handed on; err: %v", n, err)
}

// Item 4: a drain stopped inside a tie group or a bisection and resumed from the last Position
// taken re-sends only what came after that position, as in ordered paging.
func TestResumeInsideTieGroupAndBisection(t *testing.T) {
	tests := []struct {
		name  string
		order defendertest.Order
		tie   bool // 3,000 alerts updated at one time, created apart
	}{
		{"tie group", defendertest.NewestFirstTies, true},
		{"shuffled", defendertest.Shuffled, false},
		{"creation order", defendertest.NewestCreatedFirst, false},
		{"id order", defendertest.IDOrder, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, defendertest.Options{Seed: 4})
			now := time.Now().UTC()
			ids := srv.AddAlerts(6000, spread(now, 6000))
			if tt.tie {
				srv.UpdateAt(ids[1000:4000], now.Add(-2*time.Hour).Truncate(time.Second))
			} else {
				for i := 0; i < 6000; i += 7 {
					srv.UpdateAt(ids[i:i+1], now.Add(-time.Duration(i%97+1)*time.Minute))
				}
			}
			srv.SetOrder(tt.order)
			from, to := now.Add(-25*time.Hour), now
			for _, stopAt := range []int{1500, 2600, 4100} {
				c := newClient(t, srv, func(c *defender.Config) { c.PageSize = 1000 })
				seen := map[version]int{}
				const batch = 300
				saved := crashEvery(t, c, defender.Window{From: from, To: to}, stopAt, batch, seen, nil)
				st, err := resumeStats(c, defender.Window{From: from, To: to}, saved, seen)
				if err != nil {
					t.Fatal(err)
				}
				dups := repeats(seen)
				if len(seen) != 6000 {
					t.Errorf("stop at %d: read %d distinct, want 6000", stopAt, len(seen))
				}
				t.Logf("stop at %d: %d re-sent after the resume (position size %d bytes, resume %d calls)", stopAt, dups, len(saved), st.Calls)
				if want := stopAt % batch; dups != want {
					t.Errorf("stop at %d: %d re-sent after the resume, want %d (the alerts after the last position)", stopAt, dups, want)
				}
			}
		})
	}
}

// A position saved by the previous version (page and at only) still resumes: nothing lost,
// nothing re-sent that it covers.
func TestOldPositionFormatResumes(t *testing.T) {
	srv := newServer(t, defendertest.Options{})
	now := time.Now().UTC().Truncate(time.Second)
	srv.AddAlerts(3000, spread(now, 3000))
	from, to := now.Add(-25*time.Hour), now
	c := newClient(t, srv, func(c *defender.Config) { c.PageSize = 1000 })
	// Read the first 1,200 (newest first) to know where the old format would have stood.
	var got []version
	errStop := errors.New("stop")
	_, _ = c.ReadWindow(context.Background(), defender.Window{From: from, To: to}, func(a defender.Alert, p *defender.Progress) error {
		got = append(got, version{a.ID, a.LastUpdate})
		if len(got) == 1200 {
			return errStop
		}
		return nil
	})
	// The old writer: page = where the second page began, at = the 1,200th alert.
	pageStart, at := got[999], got[1199]
	old := fmt.Sprintf(`{"page":{"upper":%q,"inclusive":true,"done":[%q]},"at":{"upper":%q,"inclusive":true,"done":[%q]}}`,
		pageStart.t.Format(time.RFC3339Nano), pageStart.id, at.t.Format(time.RFC3339Nano), at.id)
	seen := map[version]int{}
	for _, v := range got {
		seen[v]++
	}
	if err := resumeFrom(c, defender.Window{From: from, To: to}, []byte(old), seen); err != nil {
		t.Fatal(err)
	}
	if dups := repeats(seen); len(seen) != 3000 || dups != 0 {
		t.Errorf("read %d distinct with %d repeats, want 3000 and 0", len(seen), repeats(seen))
	}
}

// A resumed drain drops what the saved progress covers only while the reply comes in the
// order that progress rested on. Here the API lists by creation time and its first page looked
// newest-updated first; the drain stopped after two alerts. By the resume, updates have made
// the page short, so no probe checks it: the old alert updated into the range above the saved
// bound comes after a lower time, and must still be read.
func TestResumeWithShortReplyInAnotherOrder(t *testing.T) {
	srv := newServer(t, defendertest.Options{})
	now := time.Now().UTC().Truncate(time.Second)
	// a (oldest), b, c, d: created ten minutes apart; a was updated between c and d.
	ids := srv.AddAlerts(4, func(i int) time.Time { return now.Add(-time.Hour).Add(time.Duration(i) * 10 * time.Minute) })
	a, b, d := ids[0], ids[1], ids[3]
	srv.UpdateAt([]string{a}, now.Add(-time.Hour).Add(25*time.Minute))
	srv.SetOrder(defendertest.NewestCreatedFirst)
	from, to := now.Add(-2*time.Hour), now.Add(-time.Minute)
	c := newClient(t, srv, func(c *defender.Config) { c.PageSize = 3 })
	var saved defender.Position
	var got []string
	errStop := errors.New("crash")
	_, err := c.ReadWindow(context.Background(), defender.Window{From: from, To: to}, func(al defender.Alert, p *defender.Progress) error {
		got = append(got, al.ID)
		saved = p.Position()
		if len(got) == 2 {
			return errStop
		}
		return nil
	})
	if !errors.Is(err, errStop) || len(got) != 2 || got[0] != d {
		t.Fatalf("first run: %v, read %v", err, got)
	}
	// b and d change: their new versions lie beyond the window, which now holds c and a only.
	srv.UpdateAt([]string{b, d}, now)
	_, err = c.ReadWindow(context.Background(), defender.Window{From: from, To: to, Resume: &saved}, func(al defender.Alert, _ *defender.Progress) error {
		got = append(got, al.ID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(got, a) {
		t.Errorf("the updated old alert %s was never read: %v", a, got)
	}
}

// A crash inside a window's first page, then a resume, when the API has no stable order: the
// first reply had a version below the saved bound before one above it ([a, c, b] with b's time
// between a's and c's), the drain stopped after c, and the resumed reply lists [a, b, c]. The
// saved progress says "everything above c's time was handed on", which held only for the
// first reply's prefix: b must still be read. Every seed and stop point of a shuffled API.
func TestResumeInFirstPageOfUnstableOrder(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	from, to := now.Add(-2*time.Hour), now
	lost, resumes, dupTotal := 0, 0, 0
	for seed := uint64(1); seed <= 150; seed++ {
		for stopAt := 1; stopAt <= 3; stopAt++ {
			srv := newServer(t, defendertest.Options{Seed: seed})
			srv.AddAlerts(7, func(i int) time.Time { return now.Add(-time.Hour).Add(time.Duration(i) * 5 * time.Minute) })
			srv.SetOrder(defendertest.Shuffled)
			c := newClient(t, srv, func(c *defender.Config) { c.PageSize = 4 })
			seen := map[version]int{}
			saved := crashAt(t, c, defender.Window{From: from, To: to}, stopAt, seen, nil)
			resumes++
			if err := resumeFrom(c, defender.Window{From: from, To: to}, saved, seen); err != nil {
				t.Fatalf("seed %d stop %d: resume: %v", seed, stopAt, err)
			}
			if len(seen) != 7 {
				lost++
				t.Errorf("seed %d, stop after %d: read %d of 7 after the resume (position %s)", seed, stopAt, len(seen), saved)
			}
			for _, k := range seen {
				dupTotal += k - 1
			}
		}
	}
	t.Logf("%d resumes: %d lost an alert, %d re-sent in all", resumes, lost, dupTotal)
}
