package defender_test

import (
	"context"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"testing"
	"time"

	"ta-defender-alerts/app/defender"
	"ta-defender-alerts/app/defendertest"
)

// graphWorld is a Graph stand-in holding n alerts of the last day, every 20th updated since
// it was created (as analysts do), listed newest update first, and a graph-alerts client
// reading it.
func graphWorld(t *testing.T, n int, seed uint64) (*defendertest.Server, *defender.Client, defender.Window) {
	return graphWorldRevisit(t, n, seed, 20)
}

// graphWorldRevisit is graphWorld with every revisit-th alert updated since (0: none).
func graphWorldRevisit(t *testing.T, n int, seed uint64, revisit int) (*defendertest.Server, *defender.Client, defender.Window) {
	t.Helper()
	now := time.Now().UTC()
	srv := newServer(t, defendertest.Options{Mode: defendertest.GraphMode, Seed: seed})
	srv.AddAlerts(n, spread(now, n))
	if revisit > 0 {
		srv.Revisit(revisit, now.Add(-time.Minute))
	}
	c := newClient(t, srv, func(c *defender.Config) { c.Feed = defender.FeedGraphAlerts })
	return srv, c, defender.Window{From: now.Add(-25 * time.Hour), To: now}
}

// Each case does something to the tenant when the drain has handed on its n-th alert (the
// first page holds 500): what it does, and what the drain must then show.
func TestLinksFollowedWithoutLoss(t *testing.T) {
	cases := []struct {
		name string
		n    int // alerts in the tenant: 5,000 when 0
		at   int
		do   func(srv *defendertest.Server, firstPage []string)
		// want checks the drain's counts.
		want func(st defender.WindowStats) error
	}{
		{"quiet tenant", 0, 0, nil, func(st defender.WindowStats) error {
			// Ten pages of 500: the tenth names a link to an empty one.
			if st.Links != 10 || st.LinkFallbacks != 0 || st.Pages != 11+st.Proofs || st.Probes != 1 || st.Proofs > 3 {
				return fmt.Errorf("want 1 page and its probe, then 10 links and at most 3 proofs")
			}
			return nil
		}},
		// An alert of the first page changes before its link is read: a link that counts by
		// position then starts one alert late, and only the proof reads the one passed over.
		{"an alert of the first page changes before its link", 0, 500, func(srv *defendertest.Server, page []string) {
			srv.UpdateAt(page[:1], time.Now().UTC())
		}, func(st defender.WindowStats) error {
			if st.Links != 9 || st.LinkFallbacks != 0 || st.Proofs == 0 {
				return fmt.Errorf("want the links followed and proven")
			}
			return nil
		}},
		{"three change", 0, 500, func(srv *defendertest.Server, page []string) {
			srv.UpdateAt(page[100:103], time.Now().UTC())
		}, nil},
		// Alerts show up late above the progress: the listing moves down, and the next
		// linked page begins with the end of the last one, which is not handed on twice.
		// (They are visible from now on only: a later window's overlap reads them.)
		{"alerts show up late above the progress", 0, 700, func(srv *defendertest.Server, page []string) {
			srv.SetVisibilityDelay(func(*mrand.Rand) time.Duration { return time.Hour })
			srv.AddAlerts(3, func(int) time.Time { return time.Now().UTC().Add(-time.Hour) })
			srv.SetVisibilityDelay(nil)
		}, func(st defender.WindowStats) error {
			if st.LinkFallbacks != 0 || st.Repeats == 0 {
				return fmt.Errorf("want the links followed, and the repeats dropped")
			}
			return nil
		}},
		// Alerts show up late at the top after the first page was proven and before its link
		// is read: the link starts among the first page's alerts, which are not handed on
		// twice.
		{"alerts show up late before the first link", 0, 1, func(srv *defendertest.Server, _ []string) {
			srv.ShowOnNextLink(2, func(int) time.Time { return time.Now().UTC().Add(-time.Minute) })
		}, func(st defender.WindowStats) error {
			if st.LinkFallbacks != 0 || st.Repeats < 2 {
				return fmt.Errorf("want the links followed, and the repeats dropped")
			}
			return nil
		}},
		// The same right after a proof (the eighth linked page, alerts 4,001 to 4,500, ends
		// with one, as the fourth does): the link starts among the alerts the proof covered,
		// no longer listed as handed on.
		{"alerts show up late right after a proof", 0, 4100, func(srv *defendertest.Server, _ []string) {
			srv.ShowOnNextLink(2, func(int) time.Time { return time.Now().UTC().Add(-time.Minute) })
		}, func(st defender.WindowStats) error {
			if st.LinkFallbacks != 0 || st.Repeats < 2 || st.Proofs < 3 {
				return fmt.Errorf("want the links followed and proven (after the 4th and 8th pages, and at the end), and the repeats dropped")
			}
			return nil
		}},
		// So many alerts show up late at the top after a proof (the 16th linked page, alerts
		// 8,001 to 8,500, ends with one) that the next link, counting by position, goes back
		// 5,000 alerts, to those the proofs before it covered (alerts 4,001 on): they are still
		// repeats. Four linked pages of nothing but repeats then end the chain, and filter
		// pages read the rest.
		{"alerts show up late, a link goes back past earlier proofs", 10000, 8600, func(srv *defendertest.Server, _ []string) {
			srv.ShowOnNextLink(5000, func(int) time.Time { return time.Now().UTC().Add(-time.Minute) })
		}, func(st defender.WindowStats) error {
			if st.Repeats < 2000 || st.Proofs < 4 || st.LinkFallbacks != 1 {
				return fmt.Errorf("want four proofs, the four linked pages the link went back to dropped as repeats, and one fall-back")
			}
			return nil
		}},
		// An alert shows up late above the first page's lowest version while the page is
		// read, so its count probe finds one more than the page held. The API still lists
		// by update time: the page is read again (the late one at its top), and the links
		// are followed, rather than the rest of the window bisected as if in no order.
		{"an alert shows up late inside the first page before its probe", 0, 1, func(srv *defendertest.Server, _ []string) {
			showLate(srv, time.Now().UTC().Add(-30*time.Second))
		}, func(st defender.WindowStats) error {
			if st.Unordered || st.Links < 9 || st.Calls > 20 {
				return fmt.Errorf("want the first page read again and the links followed, in at most 20 calls")
			}
			return nil
		}},
		// The link's $skiptoken expires: the rest is read by filter pages.
		{"the skip tokens expire", 0, 1200, func(srv *defendertest.Server, _ []string) {
			srv.ExpireSkipTokens()
		}, func(st defender.WindowStats) error {
			if st.LinkFallbacks != 1 {
				return fmt.Errorf("want one fall-back to filter pages")
			}
			return nil
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := tc.n
			if n == 0 {
				n = 5000
			}
			srv, c, w := graphWorld(t, n, 7)
			l := newLedger()
			run := drainActingAt(t, c, w, l, tc.at, func(first []string) {
				if tc.do != nil {
					tc.do(srv, first)
				}
			})
			t.Logf("%+v", run.stats)
			check(t, srv, []drainRun{run}, l)
			if tc.want != nil {
				if err := tc.want(run.stats); err != nil {
					t.Errorf("%v: %+v", err, run.stats)
				}
			}
		})
	}
}

// drainActingAt drains w into l, and calls do (with the ids of the first 500 alerts handed on)
// when the at-th alert is handed on. Nothing is dropped as delivered before: a version handed
// on twice within the drain shows in the ledger.
func drainActingAt(t *testing.T, c *defender.Client, w defender.Window, l *ledger, at int, do func(first []string)) drainRun {
	t.Helper()
	var first []string
	n := 0
	run := drainRun{from: w.From, to: w.To, start: time.Now()}
	st, err := c.ReadWindow(context.Background(), defender.Window{From: w.From, To: w.To},
		func(a defender.Alert, _ *defender.Progress) error {
			v := version{a.ID, a.LastUpdate.UTC()}
			run.read = append(run.read, v)
			l.seen[v]++
			if n++; n <= 500 {
				first = append(first, a.ID)
			}
			if n == at {
				do(first)
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	run.end, run.stats = time.Now(), st
	return run
}

// Alerts change all the time while the links are followed (five updates a call): across
// seeds, nothing is missed or read twice, and the calls stay near one a page.
func TestLinksUnderConstantChange(t *testing.T) {
	for seed := range uint64(6) {
		srv, c, w := graphWorld(t, 5000, seed)
		srv.UpdatesPerCall(5)
		l := newLedger()
		r, err := drainWindow(t, c, time.Now, w.From, w.To, l)
		if err != nil {
			t.Fatal(err)
		}
		check(t, srv, []drainRun{r}, l)
		if r.stats.Links == 0 || r.stats.Calls > 16 {
			t.Errorf("seed %d: %+v; want the links followed, in at most 16 calls", seed, r.stats)
		}
	}
}

// A drain stopped along a chain of links resumes from its last position: the position's
// progress is the last proven bound and it lists what the links handed on since, so the
// resumed drain reads from that bound and hands on again only what came after the position.
func TestLinksResume(t *testing.T) {
	for _, stopAt := range []int{700, 1499, 3100} {
		t.Run(fmt.Sprint(stopAt), func(t *testing.T) {
			_, c, w := graphWorld(t, 5000, 3)
			seen := map[version]int{}
			const batch = 300
			saved := crashEvery(t, c, w, stopAt, batch, seen, nil)
			var p defender.Position
			if err := json.Unmarshal(saved, &p); err != nil {
				t.Fatal(err)
			}
			if len(p.Handed) == 0 || !p.At.Upper.Equal(p.Page.Upper) {
				t.Fatalf("the position taken along the links lists nothing handed on, or trusts progress past its proven bound: %s", saved)
			}
			st, err := resumeStats(c, w, saved, seen)
			if err != nil {
				t.Fatal(err)
			}
			if len(seen) != 5000 {
				t.Errorf("read %d distinct, want 5000", len(seen))
			}
			after := stopAt % batch
			if dups := repeats(seen); dups != after {
				t.Errorf("%d repeated after the resume, want %d (after the last position)", dups, after)
			}
			if st.LinkFallbacks != 0 {
				t.Errorf("the resume fell back to filter pages: %+v", st)
			}
		})
	}
}

// Alerts show up late, after a stop along the links, in the spans the links had read: the
// resumed drain reads from the last proven bound, so it hands them on (a resume trusted the
// links' progress once, and these were lost).
func TestLinksResumeReadsFromTheProvenBound(t *testing.T) {
	srv, c, w := graphWorld(t, 5000, 4)
	seen := map[version]int{}
	saved := crashEvery(t, c, w, 1200, 300, seen, nil)
	var p defender.Position
	if err := json.Unmarshal(saved, &p); err != nil || len(p.Handed) == 0 {
		t.Fatalf("nothing handed on along links in %s (%v)", saved, err)
	}
	lo := p.Page.Upper // 600 alerts show up late between the lowest version handed on and it
	for _, v := range p.Handed {
		lo = minTime(lo, v.LastUpdate)
	}
	srv.AddAlerts(600, func(i int) time.Time { return lo.Add(time.Duration(i+1) * p.Page.Upper.Sub(lo) / 602) })
	st, err := resumeStats(c, w, saved, seen)
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 5600 || repeats(seen) != 0 {
		t.Errorf("read %d distinct (want 5600), %d twice (want 0); %+v", len(seen), repeats(seen), st)
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// A link is followed only to the API's own host and path: the bearer token goes nowhere else.
func TestLinkQueryStaysOnTheAPI(t *testing.T) {
	srv, c, _ := graphWorld(t, 0, 1)
	for link, want := range map[string]bool{
		srv.URL + "/v1.0/security/alerts_v2?$skiptoken=abc":                true,
		"https://elsewhere.example/v1.0/security/alerts_v2?$skiptoken=abc": false,
		srv.URL + "/v1.0/security/incidents?$skiptoken=abc":                false,
		srv.URL + "/v1.0/security/alerts_v2":                               false,
		"not a url\x7f":                                                    false,
	} {
		if _, ok := defender.LinkQuery(c, link); ok != want {
			t.Errorf("%q followed: %v, want %v", link, ok, want)
		}
	}
}

// A proof refused by the API (a filter it does not take) stops link following in the client:
// later windows read by filter pages, and nothing is lost.
func TestLinksOffWhenProofRefused(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	srv := newServer(t, defendertest.Options{Mode: defendertest.GraphMode, Seed: 5, GraphRefuseOr: true})
	srv.AddAlerts(5000, spread(now, 5000))
	srv.Revisit(20, now.Add(-time.Minute))
	c := newClient(t, srv, func(c *defender.Config) { c.Feed = defender.FeedGraphAlerts })
	l := newLedger()
	var runs []drainRun
	for i, w := range []defender.Window{{From: now.Add(-25 * time.Hour), To: now.Add(-12 * time.Hour)}, {From: now.Add(-12 * time.Hour), To: now}} {
		r, err := drainWindow(t, c, time.Now, w.From, w.To, l)
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, r)
		if want := 1 - i; r.stats.LinkFallbacks != want {
			t.Errorf("window %d: %+v; want %d fall-backs", i, r.stats, want)
		}
	}
	check(t, srv, runs, l)
	if runs[1].stats.Links != 0 {
		t.Errorf("links followed after the API refused a proof: %+v", runs[1].stats)
	}
}

// The linked pages come in any order from the second on, and the drain stops before it
// reads them, or after the chain broke and the window went on by filter pages: positions
// saved every 20 alerts, the resumed drain loses nothing and hands on again only what came
// after the last one.
func TestLinksResumeAfterTheOrderBreaks(t *testing.T) {
	for _, stopAt := range []int{990, 1110, 1610, 3010} {
		t.Run(fmt.Sprint(stopAt), func(t *testing.T) {
			srv, c, w := graphWorld(t, 5000, 9)
			seen := map[version]int{}
			saved, first := crashActing(t, c, w, stopAt, 20, seen, func(_ defender.Alert, n int) {
				if n == 550 {
					srv.SetOrder(defendertest.Shuffled) // the next linked pages come in any order
				}
			})
			if stopAt > 1000 && (first.Links == 0 || first.LinkFallbacks != 1) || stopAt < 1000 && first.LinkFallbacks != 0 {
				t.Fatalf("%+v: not the case this test is for", first)
			}
			st, err := resumeStats(c, w, saved, seen)
			if err != nil {
				t.Fatal(err)
			}
			if len(seen) != 5000 || repeats(seen) != stopAt%20 {
				t.Errorf("read %d distinct (want 5000), %d again (want %d); %+v", len(seen), repeats(seen), stopAt%20, st)
			}
		})
	}
}

// A tenant whose alerts were never updated gives no sign of how the API lists (creation and
// update order agree): links are not followed, and the calls are the filter pages' and probes'.
func TestLinksNeedASignOfTheOrder(t *testing.T) {
	srv, c, w := graphWorldRevisit(t, 3000, 12, 0)
	l := newLedger()
	r, err := drainWindow(t, c, time.Now, w.From, w.To, l)
	if err != nil {
		t.Fatal(err)
	}
	check(t, srv, []drainRun{r}, l)
	if r.stats.Links != 0 || r.stats.Probes < 6 {
		t.Errorf("%+v: want filter pages and their probes only", r.stats)
	}
}

// Links that lead nowhere new (each answers its query's first page again, under a new
// token) are given up after a few pages: the drain ends, complete.
func TestLinksThatGoRoundAreLeft(t *testing.T) {
	srv, c, w := graphWorld(t, 3000, 2)
	l := newLedger()
	run := drainActingAt(t, c, w, l, 600, func([]string) { srv.LinksRestart(true) })
	check(t, srv, []drainRun{run}, l)
	st := run.stats
	if st.LinkFallbacks == 0 || st.Links > 8 {
		t.Errorf("%+v: want the links left after a few pages", st)
	}
}

// An API that lists by creation time, not update time, with three old alerts updated to the
// middle of the window: the first page's probe holds (the updates lie far below it), and no
// page shows an alert listed against its creation order. Followed, the links would list those
// alerts in the last three pages, out of update order and above the bound the first proof
// moved: the first would end the chain, the other two would be lost. Links are not followed
// on such a listing, and nothing is lost.
func TestLinksNotTrustedOnAListingByCreation(t *testing.T) {
	srv, c, w := graphWorldRevisit(t, 6000, 11, 0)
	srv.SetOrder(defendertest.NewestCreatedFirst)
	ids := srv.IDs() // oldest first
	now := time.Now().UTC()
	for i, id := range []string{ids[1400], ids[900], ids[400]} { // listed 4,600th, 5,100th, 5,600th
		srv.UpdateAt([]string{id}, now.Add(-12*time.Hour).Add(time.Duration(i)*time.Second))
	}
	l := newLedger()
	r, err := drainWindow(t, c, time.Now, w.From, w.To, l)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", r.stats)
	check(t, srv, []drainRun{r}, l)
}

// The API lists by update time for the first page (which shows it: an old alert updated a
// moment ago comes first), then by creation time. Three old alerts updated to three hours ago
// then come far down, out of update order, in the span of the first linked page and not in a
// gap between pages; the first breaks the chain on the third linked page, before any proof.
// A stop before or after that page must not leave a position that trusts the links: the
// resumed drain reads from the first page's bound again, and nothing is lost or handed on
// twice. (After a proof the pages before it are not read again: see links.go.)
func TestLinksBrokenThenStopped(t *testing.T) {
	for _, stopAt := range []int{1550, 1650, 1800, 1950} {
		t.Run(fmt.Sprint(stopAt), func(t *testing.T) {
			srv, c, w := graphWorldRevisit(t, 6000, 13, 0)
			ids := srv.IDs() // oldest first
			now := time.Now().UTC()
			srv.UpdateAt(ids[100:101], now.Add(-30*time.Second))
			for i, id := range []string{ids[4400], ids[3900], ids[3600]} { // 1,600th, 2,100th and 2,400th by creation
				srv.UpdateAt([]string{id}, now.Add(-3*time.Hour).Add(time.Duration(i)*time.Second))
			}
			seen := map[version]int{}
			// Every stop is a multiple of 10: the position at the stop is saved.
			saved, first := crashActing(t, c, w, stopAt, 10, seen, func(_ defender.Alert, n int) {
				if n == 1 {
					srv.SetOrder(defendertest.NewestCreatedFirst)
				}
			})
			var p0 defender.Position
			if err := json.Unmarshal(saved, &p0); err != nil {
				t.Fatal(err)
			}
			if first.Links < 2 || first.Proofs != 0 || stopAt < 1600 && (len(p0.Handed) < 500 || first.LinkFallbacks != 0) ||
				stopAt > 1600 && first.LinkFallbacks != 1 {
				t.Fatalf("%+v, %d handed along links: not the case this test is for", first, len(p0.Handed))
			}
			st, err := resumeStats(c, w, saved, seen)
			if err != nil {
				t.Fatal(err)
			}
			if len(seen) != 6000 || repeats(seen) != 0 {
				t.Errorf("read %d distinct (want 6000), %d twice (want 0); %+v", len(seen), repeats(seen), st)
			}
		})
	}
}

// Eleven alerts share one update time across the boundary of two linked pages, and the drain
// stops twice: along the links while handing on the second page's share of them, and soon
// after its resume (which reads from the first page's bound by filter pages, where what the
// links handed on is listed). Positions are taken after every alert, so nothing is handed on
// again.
func TestLinksStoppedTwiceInATie(t *testing.T) {
	now := time.Now().UTC()
	const n = 5000
	srv := newServer(t, defendertest.Options{Mode: defendertest.GraphMode, Seed: 14})
	at := spread(now, n)
	ids := srv.AddAlerts(n, func(i int) time.Time {
		if i >= n-1005 && i <= n-995 { // the 997th to 1,007th newest, with the update below
			return at(n - 1005)
		}
		return at(i)
	})
	srv.UpdateAt(ids[100:101], now.Add(-30*time.Second)) // a sign of the order (see listsByUpdate)
	c := newClient(t, srv, func(c *defender.Config) { c.Feed = defender.FeedGraphAlerts })
	w := defender.Window{From: now.Add(-25 * time.Hour), To: now}
	seen := map[version]int{}
	saved := crashEvery(t, c, w, 1003, 1, seen, nil)
	var p defender.Position
	if err := json.Unmarshal(saved, &p); err != nil || len(p.Handed) < 500 {
		t.Fatalf("the position does not stop along links: %s (%v)", saved, err)
	}
	w.Resume = &p
	saved = crashEvery(t, c, w, 5, 1, seen, nil)
	w.Resume = nil
	st, err := resumeStats(c, w, saved, seen)
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != n {
		t.Errorf("read %d distinct, want %d", len(seen), n)
	}
	t.Logf("%d handed on again; the last resume: %+v", repeats(seen), st)
	if d := repeats(seen); d != 0 {
		t.Errorf("%d handed on again after two stops (%+v), want 0", d, st)
	}
}

// Positions taken along links list what the chain handed on (Handed), and their JSON shares one
// encoding of that list: written in any order, before and after the proofs replace the list,
// each position's list reads back as its own.
func TestPositionsAlongLinksWriteTheirOwnHanded(t *testing.T) {
	_, c, w := graphWorld(t, 5000, 21)
	var ps []defender.Position
	n := 0
	_, err := c.ReadWindow(context.Background(), w, func(a defender.Alert, p *defender.Progress) error {
		if n++; n%500 == 250 { // a caller that adds to a position's list writes its own
			q := p.Position()
			q.Handed = append(q.Handed, defender.AlertVersion{ID: "added-by-the-caller", LastUpdate: a.LastUpdate})
			if b, err := json.Marshal(q); err != nil || !strings.Contains(string(b), "added-by-the-caller") {
				return fmt.Errorf("the caller's list is not written: %v", err)
			}
		}
		if n%7 == 0 {
			ps = append(ps, p.Position())
			if n%91 == 0 { // some written at once, the rest later and backwards
				if _, err := json.Marshal(ps[len(ps)-1]); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	long := 0
	for i := len(ps) - 1; i >= 0; i-- {
		b, err := json.Marshal(ps[i])
		if err != nil {
			t.Fatal(err)
		}
		var got struct{ Handed json.RawMessage }
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(ps[i].Handed)
		if len(ps[i].Handed) == 0 {
			want = nil
		}
		if string(got.Handed) != string(want) {
			t.Fatalf("position %d writes handed %.200s…, want %.200s…", i, got.Handed, want)
		}
		if len(ps[i].Handed) > 1000 {
			long++
		}
	}
	if long == 0 {
		t.Errorf("no position along the links listed more than 1,000 versions: the case is not tested")
	}
}

// Alerts keep showing up late inside the first page, one more each time the page is read, so
// that its probe keeps failing: after a few pages read again, the rest of the window is
// bisected. Each reply still comes newest update first, so bisection cuts below it and at its
// middle: about three calls a page (cut at quantiles of the reply, as for a shuffled listing,
// it took 642 calls for these 5,000 alerts, most of them for a few alerts each).
func TestLateAlertsKeepFailingTheProbe(t *testing.T) {
	srv, c, w := graphWorld(t, 5000, 7)
	l := newLedger()
	run := drainRun{from: w.From, to: w.To, start: time.Now()}
	late, added, last := map[string]bool{}, 0, ""
	st, err := c.ReadWindow(context.Background(), w, func(a defender.Alert, _ *defender.Progress) error {
		v := version{a.ID, a.LastUpdate.UTC()}
		run.read = append(run.read, v)
		l.seen[v]++
		if (len(run.read) == 1 || late[a.ID]) && added < 12 {
			added++
			last = showLate(srv, time.Now().UTC().Add(-30*time.Second+time.Duration(added)*time.Millisecond))
			late[last] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	run.end, run.stats = time.Now(), st
	t.Logf("%+v", st)
	check(t, srv, []drainRun{run}, l)
	// check skips versions not visible when the drain began. Each late alert is made when the
	// one before it is handed on, so all but the last were read by this drain; the last may show
	// up after this drain read its range for the last time (it is then the next window's, whose
	// overlap re-reads this one's end), and a second drain must read it.
	if added < defender.MaxRereads+2 {
		t.Fatalf("only %d late alerts: the page was not read again %d times", added, defender.MaxRereads)
	}
	readIDs := map[string]bool{}
	for _, v := range run.read {
		readIDs[v.id] = true
	}
	for id := range late {
		if !readIDs[id] && id != last {
			t.Errorf("late alert %s was never read", id)
		}
	}
	if !readIDs[last] {
		again := false
		if _, err := c.ReadWindow(context.Background(), w, func(a defender.Alert, _ *defender.Progress) error {
			again = again || a.ID == last
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if !again {
			t.Errorf("the last late alert %s was read by neither drain", last)
		}
	}
	if !st.Unordered || st.Calls > 45 {
		t.Errorf("want the window bisected after %d pages read again, in at most 45 calls: %+v", defender.MaxRereads, st)
	}
}

// showLate adds an alert updated at lut that becomes visible only now, and returns its id.
func showLate(srv *defendertest.Server, lut time.Time) string {
	now := time.Now()
	srv.SetVisibilityDelay(func(*mrand.Rand) time.Duration { return now.Sub(lut) })
	defer srv.SetVisibilityDelay(nil)
	return srv.AddAlerts(1, func(int) time.Time { return lut })[0]
}
