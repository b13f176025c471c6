package main

import (
	"bytes"
	"context"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"ta-defender-alerts/app/defendertest"
)

// full reports whether the full fault suite was asked for (./build.sh faults); otherwise the
// quick versions run, in ./build.sh test.
func full() bool { return os.Getenv("FAULTS_FULL") == "1" }

func pick(quick, long int) int {
	if full() {
		return long
	}
	return quick
}

// report prints the scenario's line and fails on any loss.
func report(t *testing.T, name string, w *world, started time.Time) {
	t.Helper()
	st := w.hec.Stats()
	expected := len(w.api.Current(w.now()))
	missing := w.lost()
	line := fmt.Sprintf("FAULT %-34s expected %7d  delivered %7d  missing %d  duplicates %6d (%.2f%%)  %5.1fs",
		name, expected, expected-missing, missing, st.Duplicates, 100*float64(st.Duplicates)/float64(max(expected, 1)), time.Since(started).Seconds())
	fmt.Println(line)
	t.Log(line)
	if missing > 0 {
		t.Errorf("%d alert versions missing", missing)
	}
}

// Scenario 1: SIGKILLs at random moments of a drain, each followed by a restart; then the
// same against an API that lists in no stable order, where a restart inside a page must not
// trust the interrupted reply's order (issue 9).
func TestFaultSIGKILL(t *testing.T) {
	t.Run("lastupdate", func(t *testing.T) { faultSIGKILL(t, defendertest.NewestFirst, pick(20000, 50000), pick(10, 20)) })
	t.Run("shuffled", func(t *testing.T) { faultSIGKILL(t, defendertest.Shuffled, pick(6000, 30000), pick(5, 15)) })
}

func faultSIGKILL(t *testing.T, order defendertest.Order, n, kills int) {
	started := time.Now()
	w := newWorld(t, n, true)
	w.api.SetOrder(order)
	// A kill just after the killed run read an ack it had not yet saved leaves a ticket HEC
	// will never answer true again (ack ids answer once): the next run asks about it until
	// the ack timeout, which is shrunk here as the other times are.
	w.extra = append(w.extra, "DEFENDER_HEC_ACK_TIMEOUT=20s")
	r := mrand.New(mrand.NewPCG(uint64(time.Now().UnixNano()), 1))
	landed := 0
	for landed < kills {
		before := w.hec.Stats().Indexed
		cmd, out := w.start(t, "run", "--once")
		target := before + 100 + r.IntN(max(n/(kills+1), 200))
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		killed, ended := false, false
	wait:
		for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); {
			select {
			case err := <-exited:
				if err != nil {
					t.Fatalf("run --once failed: %v\n%s", err, out)
				}
				ended = true
				break wait
			case <-time.After(time.Millisecond):
			}
			if w.hec.Stats().Indexed >= target {
				_ = cmd.Process.Signal(syscall.SIGKILL)
				<-exited
				killed = true
				break
			}
		}
		if !killed {
			if !ended {
				stalled(t, cmd, exited, out, fmt.Sprintf("run --once neither exited nor indexed %d more alerts in 2 minutes", target-before))
			}
			break
		}
		landed++
	}
	cmd, out := w.start(t, "run", "--once")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("final run: %v\n%s", err, out)
	}
	name := fmt.Sprintf("1 SIGKILL x%d", landed)
	if order != defendertest.NewestFirst {
		name += " (" + order.String() + ")"
	}
	report(t, name, w, started)
	if landed < kills {
		t.Errorf("only %d of %d kills landed during the drain", landed, kills)
	}
}

// Scenario 2: HEC at its worst: busy replies, dropped connections, replies lost after
// indexing, acks that never come.
func TestFaultHEC(t *testing.T) {
	started := time.Now()
	w := newWorld(t, pick(3000, 50000), true)
	w.hec.SetFailures(0.10, 0.05, 0.05, 0.05)
	// Batches of ~18 alerts: a few hundred requests, so that every kind of fault happens.
	w.extra = []string{"DEFENDER_HEC_ACK_TIMEOUT=500ms", "DEFENDER_HEC_MAX_IN_FLIGHT=4", "DEFENDER_HEC_BATCH_BYTES=65536"}
	cmd, out := w.start(t, "run", "--once")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	report(t, "2 HEC busy/drops/lost replies+acks", w, started)
	if st := w.hec.Stats(); st.Dropped == 0 || st.LostReply == 0 || st.AcksLost == 0 || st.ByStatus[503] == 0 {
		t.Errorf("not every HEC fault happened: %+v", st)
	}
}

// Scenario 3: the Defender API at its worst (issue 16's hostile API, time shrunk): tokens
// that live a second, a quota of 3 calls per 3 s answered with 429 and Retry-After (the
// client's own limiter is set for Microsoft's real quota, so it runs into the 429s), a 500 on
// every third call that passes, cut-off bodies and a 429 storm. Every wait outlives a token.
// run --once must finish each time; in the full suite it runs five times, then the daemon
// runs through the same API and must still be running when it is stopped.
func TestFaultDefender(t *testing.T) {
	started := time.Now()
	runs := pick(1, 5)
	w := newWorldOpts(t, pick(3000, 60000), true, defendertest.Options{TokenLifetime: time.Second, PerMinute: 3, Minute: 3 * time.Second})
	w.api.Throttle(3, 1500*time.Millisecond)
	w.api.FailEvery(3)
	w.api.SetFailures(0, 0.05)
	w.extra = []string{"DEFENDER_PAGE_SIZE=" + fmt.Sprint(pick(1000, 10000))}
	for run := range runs {
		if run > 0 {
			w.api.Update(pick(300, 6000)) // new versions for this run to read
		}
		cmd, out := w.start(t, "run", "--once")
		if err := cmd.Wait(); err != nil {
			t.Fatalf("run %d of %d: %v\n%s", run+1, runs, err, out)
		}
	}
	if full() {
		w.api.Update(2000)
		cmd, out := w.start(t, "run")
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case err := <-exited:
			t.Fatalf("the daemon stopped by itself on a hostile API: %v\n%s", err, out)
		case <-time.After(20 * time.Second):
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		if err := <-exited; err != nil {
			t.Fatalf("daemon: %v\n%s", err, out)
		}
		runs++
	}
	st := w.api.Stats()
	report(t, fmt.Sprintf("3 hostile API x%d (1s tokens, 3/3s quota)", runs), w, started)
	line := fmt.Sprintf("FAULT    hostile API: %d calls, 401 %d, 429 %d, 500 %d, cut-offs %d, tokens issued %d, calls before Retry-After %d",
		st.APICalls, st.ByStatus[401], st.ByStatus[429], st.ByStatus[500], st.CutOff, st.TokensIssued, st.Violations)
	fmt.Println(line)
	t.Log(line)
	if st.ByStatus[429] < 3 || st.ByStatus[500] == 0 || st.Violations != 0 || st.TokensIssued < 2 {
		t.Errorf("429s %d, 500s %d, calls before Retry-After %d, tokens %d", st.ByStatus[429], st.ByStatus[500], st.Violations, st.TokensIssued)
	}
}

// Scenario 4: a live tenant: alerts created and updated all the time, versions visible up to
// the overlap late, the daemon polling every second, then a final --once.
func TestFaultLiveTenant(t *testing.T) {
	started := time.Now()
	w := newWorld(t, 2000, true)
	w.api.SetVisibilityDelay(func(r *mrand.Rand) time.Duration { return time.Duration(r.Int64N(int64(3 * time.Second))) })
	w.extra = []string{"DEFENDER_OVERLAP=4s", "DEFENDER_INTERVAL=1s"}
	stopUpdates := w.api.StartUpdates(20)
	stopNew := make(chan struct{})
	go func() {
		for {
			select {
			case <-stopNew:
				return
			case <-time.After(50 * time.Millisecond):
				w.api.AddAlerts(1, func(int) time.Time { return time.Now() })
			}
		}
	}()
	cmd, out := w.start(t, "run")
	time.Sleep(time.Duration(pick(6, 60)) * time.Second)
	stopUpdates()
	close(stopNew)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("daemon: %v\n%s", err, out)
	}
	time.Sleep(3 * time.Second) // every version is visible now
	cmd, out = w.start(t, "run", "--once")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("final run: %v\n%s", err, out)
	}
	report(t, "4 live tenant, late versions, daemon", w, started)
}

// Scenario 5: the state folder cannot be written part-way (it is replaced by a regular file):
// the process stops with a clear error, the old checkpoint is intact, and once the folder is
// back nothing is lost.
func TestFaultStateUnwritable(t *testing.T) {
	started := time.Now()
	w := newWorld(t, pick(20000, 50000), true)
	w.extra = []string{"DEFENDER_HEC_BATCH_BYTES=65536"}
	cp := filepath.Join(w.state, "tenant1.json")
	cmd, out := w.start(t, "run", "--once")
	// Once a checkpoint exists, take the folder away and leave a file in its place.
	for deadline := time.Now().Add(time.Minute); ; {
		if _, err := os.Stat(cp); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no checkpoint was written")
		}
		time.Sleep(time.Millisecond)
	}
	moved := w.state + ".moved"
	if err := os.Rename(w.state, moved); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(w.state, []byte("not a folder"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The folder went away after the first of many batches: a later save must fail, and the
	// process must stop and say so.
	if err := cmd.Wait(); err == nil {
		t.Errorf("the run went on although its checkpoint could not be written:\n%s", out)
	} else if !strings.Contains(out.String(), "cannot be written") || !strings.Contains(out.String(), "tenant1.json") {
		t.Errorf("the error does not say what failed:\n%s", out)
	}
	if b, err := os.ReadFile(filepath.Join(moved, "tenant1.json")); err != nil || !strings.Contains(string(b), `"version":1`) {
		t.Errorf("the old checkpoint is not intact: %v", err)
	}
	// A state folder under a regular file: a clear error at start.
	cmd2, out2 := w.start(t, "run", "--once")
	if err := cmd2.Wait(); err == nil || !strings.Contains(out2.String(), "cannot be created") {
		t.Errorf("start with the folder gone: %v\n%s", err, out2)
	}
	os.Remove(w.state)
	if err := os.Rename(moved, w.state); err != nil {
		t.Fatal(err)
	}
	cmd, out = w.start(t, "run", "--once")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("after the folder came back: %v\n%s", err, out)
	}
	report(t, "5 state folder unwritable, then back", w, started)
}

// Scenario 6 (issue 9, item 2): this host's clock is off from Microsoft's, ahead and then
// behind. The daemon polls every second while alerts are created and updated in the API's
// present; a final --once catches up. Nothing may be lost, and nothing delayed past a poll.
func TestFaultClockOff(t *testing.T) {
	for _, off := range []time.Duration{15 * time.Minute, -15 * time.Minute} {
		t.Run(fmt.Sprint(off), func(t *testing.T) {
			started := time.Now()
			apiNow := func() time.Time { return time.Now().Add(-off) }
			w := newWorldOpts(t, pick(1000, 10000), true, defendertest.Options{Now: apiNow})
			w.extra = []string{"DEFENDER_OVERLAP=3s", "DEFENDER_INTERVAL=1s"}
			stopUpdates := w.api.StartUpdates(10)
			stopNew := make(chan struct{})
			newAlerts := 0
			go func() {
				for {
					select {
					case <-stopNew:
						return
					case <-time.After(50 * time.Millisecond):
						w.api.AddAlerts(1, func(int) time.Time { return apiNow() })
						newAlerts++
					}
				}
			}()
			cmd, out := w.start(t, "run")
			time.Sleep(time.Duration(pick(5, 30)) * time.Second)
			stopUpdates()
			close(stopNew)
			// Within two polls the daemon has everything: nothing waits for the host's clock.
			time.Sleep(2500 * time.Millisecond)
			missingLive := w.lost()
			_ = cmd.Process.Signal(syscall.SIGTERM)
			if err := cmd.Wait(); err != nil {
				t.Fatalf("daemon: %v\n%s", err, out)
			}
			if !strings.Contains(out.String(), "differs from Microsoft's") {
				t.Errorf("no warning about the clock difference:\n%s", out)
			}
			if missingLive > 0 {
				t.Errorf("%d versions were still missing two polls after the last change", missingLive)
			}
			cmd, out = w.start(t, "run", "--once")
			if err := cmd.Wait(); err != nil {
				t.Fatalf("final run: %v\n%s", err, out)
			}
			report(t, fmt.Sprintf("6 host clock off by %v, daemon", off), w, started)
			line := fmt.Sprintf("FAULT    clock off by %v: %d new alerts, %d updates during the run, missing two polls after the last change: %d", off, newAlerts, w.api.Stats().Updates, missingLive)
			fmt.Println(line)
			t.Log(line)
		})
	}
}

// Scenario 7: acks stop coming part-way through run --once (a load balancer that lost its
// stickiness, a HEC that forgot its channels): the run stops within its give-up time with an
// error that says what to check, and commits nothing past what was acknowledged: the next
// run, with acks back, sends every unacknowledged alert again.
func TestFaultAcksNeverCome(t *testing.T) {
	started := time.Now()
	n := pick(3000, 20000)
	giveUp := time.Duration(pick(5, 30)) * time.Second
	old := onceGiveUp
	onceGiveUp = giveUp
	t.Cleanup(func() { onceGiveUp = old })
	w := newWorld(t, n, true)
	w.extra = []string{"DEFENDER_HEC_ACK_TIMEOUT=" + time.Duration(pick(500, 5000)*int(time.Millisecond)).String(), "DEFENDER_HEC_BATCH_BYTES=65536"}
	// In-process, so that the give-up time can be shrunk.
	for _, kv := range w.env()[1:] {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "DEFENDER_") {
			t.Setenv(k, v)
		}
	}
	var stopped time.Time
	var before map[string]int
	go func() {
		for w.hec.Stats().Indexed < n/3 {
			time.Sleep(time.Millisecond)
		}
		before = w.hec.Keys()
		stopped = time.Now()
		w.hec.SetFailures(0, 0, 0, 1) // from now on, no ack comes
	}()
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute) // a run that never gives up fails the test
	defer cancel()
	code := run(ctx, []string{"run", "--once"}, nil, &out, &out)
	took := time.Since(stopped)
	if stopped.IsZero() {
		t.Fatalf("the run ended (exit %d) before acks stopped:\n%s", code, out.String())
	}
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if took > giveUp+3*time.Second {
		t.Errorf("the run stopped %v after acks stopped; the give-up time is %v", took, giveUp)
	}
	for _, want := range []string{"gave up after " + giveUp.String(), "no indexer acknowledgement", "sticky", "restarted"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the error does not say %q:\n%s", want, lastLines(out.String(), 3))
		}
	}
	// Alerts first indexed while acks were gone were never acknowledged: the next run must
	// send each of them again.
	var unacked []string
	for k := range w.hec.Keys() {
		if before[k] == 0 {
			unacked = append(unacked, k)
		}
	}
	w.hec.SetFailures(0, 0, 0, 0)
	cmd, out2 := w.start(t, "run", "--once")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the run with acks back: %v\n%s", err, out2)
	}
	again := 0
	for _, k := range unacked {
		if w.hec.Count(k) >= 2 {
			again++
		}
	}
	if again != len(unacked) || len(unacked) == 0 {
		t.Errorf("%d of %d unacknowledged alerts were sent again: the checkpoint moved past the others", again, len(unacked))
	}
	report(t, fmt.Sprintf("7 acks never come, gave up in %.1fs", took.Seconds()), w, started)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}

// Scenario 8 (issue 9, item 1): the API lists its pages in each order a client may meet (newest lastUpdateTime
// first, newest alertCreationTime first, by id, no stable order), every tenth alert updated
// after its creation so that the orders differ. Every version arrives once; the line gives the
// API calls against the minimum (one per page of alerts, plus the short page that ends the
// window) and the alert bytes the API sent. The long form runs at the default page size.
func TestFaultAPIOrders(t *testing.T) {
	n, page := pick(3000, 25000), pick(500, 10000)
	for _, order := range []defendertest.Order{defendertest.NewestFirst, defendertest.NewestCreatedFirst, defendertest.IDOrder, defendertest.Shuffled} {
		t.Run(order.String(), func(t *testing.T) {
			started := time.Now()
			w := newWorld(t, n, false)
			w.api.Revisit(10, time.Now().Add(-time.Second))
			w.api.SetOrder(order)
			w.extra = []string{fmt.Sprintf("DEFENDER_PAGE_SIZE=%d", page)}
			cmd, out := w.start(t, "run", "--once")
			if err := cmd.Wait(); err != nil {
				t.Fatalf("run: %v\n%s", err, out)
			}
			st, hs := w.api.Stats(), w.hec.Stats()
			expected, missing := len(w.api.Current(time.Now())), w.lost()
			minCalls := n/page + 1
			line := fmt.Sprintf("FAULT %-34s expected %7d  delivered %7d  missing %d  duplicates %d  API calls %d (min %d)  %.1f MB (%d alerts)  %5.1fs",
				"8 API order "+order.String(), expected, expected-missing, missing, hs.Duplicates, st.APICalls, minCalls,
				float64(st.BytesOut)/1e6, st.AlertsReturned, time.Since(started).Seconds())
			fmt.Println(line)
			t.Log(line)
			if missing > 0 || hs.Duplicates > 0 {
				t.Errorf("%d alert versions missing, %d duplicates", missing, hs.Duplicates)
			}
			// The cost promised: one probe per full page in lastUpdateTime order, at most three
			// times the minimum in creation or id order; each alert downloaded about once.
			switch order {
			case defendertest.NewestFirst:
				if max := minCalls + n/page; st.APICalls > max {
					t.Errorf("%d API calls, want at most %d", st.APICalls, max)
				}
			case defendertest.NewestCreatedFirst, defendertest.IDOrder:
				if max := 3 * minCalls; st.APICalls > max {
					t.Errorf("%d API calls, want at most %d", st.APICalls, max)
				}
			}
			if order != defendertest.Shuffled && st.AlertsReturned > n+n/page+2 {
				t.Errorf("%d alerts downloaded for %d", st.AlertsReturned, n)
			}
		})
	}
}

// stalled ends a run that made no progress: SIGQUIT first, so that the Go runtime writes every
// goroutine's stack to the run's output, then SIGKILL if it has not gone in 10 s. The whole
// output goes to a file kept after the test (its path is in the failure), and the failure
// shows its last lines.
func stalled(t *testing.T, cmd *exec.Cmd, exited <-chan error, out *bytes.Buffer, what string) {
	t.Helper()
	_ = cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-exited
	}
	f, err := os.CreateTemp("", "stalled-*.log")
	path := "(not kept: " + fmt.Sprint(err) + ")"
	if err == nil {
		_, _ = f.Write(out.Bytes())
		_ = f.Close()
		path = f.Name()
	}
	t.Fatalf("%s: it stalled; whole output with goroutine stacks in %s\n%s", what, path, lastLines(out.String(), 60))
}
