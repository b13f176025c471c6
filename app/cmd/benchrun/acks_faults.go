//go:build unix

package main

// The acknowledgement section (issue 11): delivery against a HEC whose acks come late, with a
// long tail, get lost, or whose channels are forgotten, and a collector killed mid-drain.
// Each part runs bin/defender_alerts as a user runs it (environment settings only) against
// bin/standin in its own process, and prints a Markdown table.

import (
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"ta-defender-alerts/app/checkpoint"
)

// crashTable kills the product f.kills times during one drain, spread over the alerts (each
// kill at a random moment within a second of HEC holding k/(kills+1) of them), each time
// starting it again, then lets a last run finish; once with HEC keeping its channels, once
// with HEC forgetting every channel at each kill.
func crashTable(bin string, f *ackFlags) (string, bool) {
	var b strings.Builder
	good := true
	b.WriteString("| HEC at each kill | kills landed | duplicates | per crash | % of alerts (goal ≤ 2%) | re-sent (last run) | ack ids asked on forgotten channels | missing | wall s |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, forget := range []bool{false, true} {
		r, landed, err := crashDrain(bin, f, forget)
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchrun:", err)
			good = false
		}
		good = good && r.missing == 0 && landed == f.kills
		what := "keeps its channels (recovery possible)"
		if forget {
			what = "forgets every channel (no recovery)"
		}
		dups := num(r.st, "duplicates")
		pct := 100 * float64(dups) / float64(r.n)
		fmt.Fprintf(&b, "| %s | %d of %d | %d | %.0f | %.2f%% %s | %d | %d | %d | %.1f |\n", what, landed, f.kills, dups,
			float64(dups)/float64(max(landed, 1)), pct, met(pct <= 2), r.resent, num(r.st, "forgotten_ack_ids"), r.missing, r.m.wall.Seconds())
		fmt.Fprintf(os.Stderr, "done: crash drain, forget %v\n", forget)
	}
	fmt.Fprintf(&b, "\n`run --once` at the default settings, SIGKILLed at a random moment up to 1 s after HEC holds k/%d of the alerts (k = 1…%d), started again each time; a last run drains the rest (wall: the whole sequence; with HEC forgetting its channels, `DEFENDER_HEC_ACK_TIMEOUT=20s` shortens each restart's wait for acks that cannot come). Duplicates are what HEC indexed twice; re-sent is the last run's own count.\n",
		f.kills+1, f.kills)
	return b.String(), good
}

func crashDrain(bin string, f *ackFlags, forget bool) (ackRun, int, error) {
	n := f.size
	s, err := startStandin(bin+"/standin", n, true, f.standinLatency(time.Second)...)
	if err != nil {
		return ackRun{n: n}, 0, err
	}
	defer s.stop()
	state, _ := os.MkdirTemp("", "bench-state-")
	defer os.RemoveAll(state)
	env := userEnv(s, state)
	if forget {
		// HEC answers false for ids on a channel it forgot: each restart asks until the
		// batches' ack timeout. 20 s instead of the default 2 minutes keeps the run short;
		// it changes how long, not what, is sent again.
		env = append(env, "DEFENDER_HEC_ACK_TIMEOUT=20s")
	}
	started := time.Now()
	landed := 0
	rng := mrand.New(mrand.NewPCG(11, uint64(f.kills)))
	for k := 1; k <= f.kills; k++ {
		target := k * n / (f.kills + 1)
		cmd := exec.Command(bin+"/defender_alerts", "run", "--once")
		cmd.Env = env
		var out tail
		cmd.Stderr = &out
		if err := cmd.Start(); err != nil {
			return ackRun{n: n}, landed, err
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		// A random moment after HEC holds the target: right after a request was indexed, a
		// kill would always come before its reply, the worst moment rather than a typical one.
		delay := time.Duration(rng.Int64N(int64(time.Second)))
		killed, err := killAt(s, cmd, exited, target, delay)
		if err != nil {
			return ackRun{n: n}, landed, fmt.Errorf("%w\n%s", err, out.String())
		}
		if !killed {
			break // the drain ended before this kill's turn
		}
		landed++
		if forget {
			if err := s.post("/forget"); err != nil {
				return ackRun{n: n}, landed, err
			}
		}
	}
	m, err := runMeasured(bin+"/defender_alerts", env, "run", "--once")
	m.wall = time.Since(started)
	st, _ := s.stats()
	return ackRun{n: n, m: m, st: st, resent: resent(m.log), missing: n - num(st, "distinct")}, landed, err
}

// killAt SIGKILLs cmd delay after HEC has indexed target distinct alerts; false if it exited
// first.
func killAt(s *standin, cmd *exec.Cmd, exited chan error, target int, delay time.Duration) (bool, error) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-exited:
			if err != nil {
				return false, fmt.Errorf("run --once failed: %w", err)
			}
			return false, nil
		case <-tick.C:
		}
		st, err := s.stats()
		if err != nil {
			return false, err
		}
		if num(st, "distinct") >= target {
			select {
			case err := <-exited:
				if err != nil {
					return false, fmt.Errorf("run --once failed: %w", err)
				}
				return false, nil
			case <-time.After(delay):
			}
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-exited
			return true, nil
		}
	}
}

func (s *standin) post(path string) error {
	resp, err := http.Post(s.urls.Control+path, "application/json", nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("stand-in %s: %s", path, resp.Status)
	}
	return nil
}

// lostTable: lost acks and busy replies at the default settings (the ack timeout included).
func lostTable(bin string, f *ackFlags) (string, bool) {
	args := append(f.standinLatency(f.lostLatency), "-ack-lost", "0.05", "-busy", "0.10")
	r, err := drain(bin, f.size, args, nil)
	good := err == nil && r.missing == 0
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchrun:", err)
	}
	var b strings.Builder
	b.WriteString("| alerts | wall s (goal < 60) | missing | duplicates | re-sent (product's count) | acks lost (HEC) | busy replies | HEC requests | alerts/s |\n")
	b.WriteString("|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	fmt.Fprintf(&b, "| %d | %.1f %s | %d | %d | %d | %d | %d | %d | %.0f |\n", r.n, r.m.wall.Seconds(), met(r.m.wall < time.Minute),
		r.missing, num(r.st, "duplicates"), r.resent, num(r.st, "acks_lost"), num(r.st, "hec_busy"), num(r.st, "hec_requests"),
		float64(r.n)/r.m.wall.Seconds())
	fmt.Fprintf(os.Stderr, "done: lost acks\n")
	return b.String(), good
}

// caughtUpTable runs the daemon over a small backlog until it is caught up, then adds one alert
// at a time (spread over the poll cycle) and times it to HEC and to the checkpoint (confirmed:
// acknowledged and committed).
func caughtUpTable(bin string, f *ackFlags) (string, bool) {
	toHEC, toCommit, err := caughtUp(bin, f)
	good := err == nil && len(toCommit) == f.caughtSamples
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchrun:", err)
	}
	goal := f.poll + f.caughtLatency
	indexed := make([]time.Duration, len(toHEC))
	for i, d := range toHEC {
		indexed[i] = d + f.caughtLatency // the ack (a constant latency) turns true then
	}
	var b strings.Builder
	b.WriteString("| poll interval | ack latency | new alerts | to HEC: median, max | indexed (ack true): median, max | confirmed (checkpoint): median, max | goal: indexed within |\n")
	b.WriteString("|---:|---:|---:|---|---|---|---|\n")
	fmt.Fprintf(&b, "| %v | %v (constant) | %d | %s | %s | %s | %v %s |\n", f.poll, f.caughtLatency, len(toHEC), medMax(toHEC), medMax(indexed),
		medMax(toCommit), goal, met(len(indexed) > 0 && slices.Max(indexed) <= goal))
	fmt.Fprintf(&b, "\n`bin/defender_alerts run` (the daemon), `DEFENDER_INTERVAL=%v`, caught up on %d alerts; then each new alert a set time after the previous one was confirmed, spread over the poll cycle. To HEC: from the alert's appearance in the API to HEC receiving it; indexed: that plus the ack latency (the stand-in's ack turns true then); confirmed: until the alert's key is in the checkpoint file or its quick save.\n",
		f.poll, f.caughtBacklog)
	fmt.Fprintf(os.Stderr, "done: caught up\n")
	return b.String(), good
}

func medMax(ds []time.Duration) string {
	if len(ds) == 0 {
		return "–"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return fmt.Sprintf("%.2f s, %.2f s", s[len(s)/2].Seconds(), s[len(s)-1].Seconds())
}

func caughtUp(bin string, f *ackFlags) (toHEC, toCommit []time.Duration, err error) {
	s, err := startStandin(bin+"/standin", f.caughtBacklog, true, "-ack-median", f.caughtLatency.String())
	if err != nil {
		return nil, nil, err
	}
	defer s.stop()
	state, _ := os.MkdirTemp("", "bench-state-")
	defer os.RemoveAll(state)
	cmd := exec.Command(bin+"/defender_alerts", "run")
	cmd.Env = append(userEnv(s, state), "DEFENDER_INTERVAL="+f.poll.String())
	var out tail
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-exited
	}()
	checkpoint := filepath.Join(state, "bench.json")
	// Caught up: the backlog is at HEC and a checkpoint is on disk; one more poll to be sure.
	until := time.Now().Add(10*time.Minute + time.Duration(f.caughtBacklog)*10*time.Millisecond)
	for {
		st, err := s.stats()
		if err != nil {
			return nil, nil, err
		}
		if _, serr := os.Stat(checkpoint); serr == nil && num(st, "distinct") >= f.caughtBacklog {
			break
		}
		if err := sleepOrExit(exited, 20*time.Millisecond, &out); err != nil {
			return nil, nil, err
		}
		if time.Now().After(until) {
			return nil, nil, fmt.Errorf("caught up: the daemon did not deliver the backlog\n%s", out.String())
		}
	}
	// The first new alert only sets the phase: each later one comes a set time after the
	// previous one was confirmed, which is just after a poll, so that together they meet the
	// whole poll cycle (0, 1/k, 2/k, ... of it gone by).
	for i := -1; i < f.caughtSamples; i++ {
		if i >= 0 {
			if err := sleepOrExit(exited, time.Duration(i)*f.poll/time.Duration(f.caughtSamples), &out); err != nil {
				return toHEC, toCommit, err
			}
		}
		var added struct {
			ID    string    `json:"id"`
			Added time.Time `json:"added"`
		}
		resp, err := http.Post(s.urls.Control+"/add", "application/json", nil)
		if err != nil {
			return toHEC, toCommit, err
		}
		err = json.NewDecoder(resp.Body).Decode(&added)
		resp.Body.Close()
		if err != nil {
			return toHEC, toCommit, err
		}
		deadline := time.Now().Add(3*f.poll + 3*f.caughtLatency + time.Minute)
		var seen time.Time
		for committed := false; !committed; {
			if seen.IsZero() {
				seen = s.seen(added.ID)
			}
			if inCheckpoint(checkpoint, added.ID) {
				now := time.Now()
				if seen.IsZero() {
					seen = s.seen(added.ID)
				}
				if i >= 0 {
					toHEC = append(toHEC, seen.Sub(added.Added))
					toCommit = append(toCommit, now.Sub(added.Added))
				}
				committed = true
				continue
			}
			if time.Now().After(deadline) {
				return toHEC, toCommit, fmt.Errorf("caught up: alert %s was not confirmed within %v\n%s", added.ID, time.Since(added.Added), out.String())
			}
			if err := sleepOrExit(exited, 5*time.Millisecond, &out); err != nil {
				return toHEC, toCommit, err
			}
		}
	}
	return toHEC, toCommit, nil
}

func sleepOrExit(exited chan error, d time.Duration, out *tail) error {
	select {
	case err := <-exited:
		exited <- err // for the deferred stop
		return fmt.Errorf("the daemon stopped: %v\n%s", err, out.String())
	case <-time.After(d):
		return nil
	}
}

// seen is when HEC first indexed the added alert; zero if not yet.
func (s *standin) seen(id string) time.Time {
	resp, err := http.Get(s.urls.Control + "/seen?id=" + id)
	if err != nil {
		return time.Time{}
	}
	defer resp.Body.Close()
	var v struct {
		Seen time.Time `json:"seen"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&v) != nil {
		return time.Time{}
	}
	return v.Seen
}

// tail keeps the last 64 KiB written to it: a process's log, for errors and the done line.
type tail struct {
	mu sync.Mutex
	b  []byte
}

const tailMax = 64 << 10

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > 2*tailMax {
		t.b = append(t.b[:0], t.b[len(t.b)-tailMax:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.b) > tailMax {
		return string(t.b[len(t.b)-tailMax:])
	}
	return string(t.b)
}

// inCheckpoint reports whether the checkpoint, with the newest quick save that follows it
// (written between durable ones), holds id as confirmed: among the delivered keys, or the
// keys of a pending batch confirmed whole (one only sent and awaiting its ack is not).
func inCheckpoint(path, id string) bool {
	st, err := checkpoint.Peek(path)
	if err != nil || st == nil {
		return false
	}
	for _, k := range st.Delivered {
		if k.ID == id {
			return true
		}
	}
	for _, p := range st.Pending {
		for _, k := range p.Keys {
			if p.Confirmed && k.ID == id {
				return true
			}
		}
	}
	return false
}
