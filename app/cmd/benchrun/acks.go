//go:build unix

package main

// The acknowledgement section (issue 11): delivery against a HEC whose acks come late, with a
// long tail, get lost, or whose channels are forgotten, and a collector killed mid-drain.
// Each part runs bin/defender_alerts as a user runs it (environment settings only) against
// bin/standin in its own process, and prints a Markdown table.

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ackFlags are the section's settings; ./build.sh bench fills them from BENCH_ACK_* variables.
type ackFlags struct {
	on             bool
	parts          string
	size, goalSize int
	latencies      string
	goalLatencies  string
	goalRounds     int
	windows        string
	kills          int
	p99, tail      float64 // the tail's shape, as multiples of the median
	tailShare      float64
	lostLatency    time.Duration
	poll           time.Duration
	caughtLatency  time.Duration
	caughtBacklog  int
	caughtSamples  int
}

func (f *ackFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&f.on, "acks", false, "run the acknowledgement section (issue 11)")
	fs.StringVar(&f.parts, "ack-parts", "latency,goals,crash,lost,caughtup", "which parts of the acknowledgement section to run")
	fs.IntVar(&f.size, "ack-size", 20000, "alerts for the latency x window table, the crash and the lost-ack runs")
	fs.IntVar(&f.goalSize, "ack-goal-size", 100000, "alerts for the goal rows")
	fs.StringVar(&f.latencies, "ack-latencies", "300ms,1s,3s", "median ack latencies of the latency x window table")
	fs.StringVar(&f.goalLatencies, "ack-goal-latencies", "1s,3s", "median ack latencies of the goal rows")
	fs.IntVar(&f.goalRounds, "ack-goal-rounds", 3, "rounds of the goal rows (acks off, then each latency); the CPU ratio is judged on the medians")
	fs.StringVar(&f.windows, "ack-windows", "fixed:1,fixed:8,adaptive:64", "windows of the latency table: fixed:N, adaptive:N (upper bound) or default")
	fs.IntVar(&f.kills, "ack-kills", 8, "SIGKILLs during the crash drain")
	fs.Float64Var(&f.p99, "ack-p99", 3, "the ack latency's 99th percentile, as a multiple of its median")
	fs.Float64Var(&f.tail, "ack-tail", 10, "the longest ack latency of the tail, as a multiple of the median")
	fs.Float64Var(&f.tailShare, "ack-tail-share", 0.005, "share of acks in the tail (between the p99 and the longest)")
	fs.DurationVar(&f.lostLatency, "ack-lost-latency", 300*time.Millisecond, "median ack latency of the lost-ack run")
	fs.DurationVar(&f.poll, "ack-poll", 5*time.Second, "DEFENDER_INTERVAL of the caught-up daemon")
	fs.DurationVar(&f.caughtLatency, "ack-caughtup-latency", time.Second, "ack latency (constant) of the caught-up run")
	fs.IntVar(&f.caughtBacklog, "ack-caughtup-backlog", 1000, "backlog the daemon catches up on before new alerts come")
	fs.IntVar(&f.caughtSamples, "ack-caughtup-samples", 5, "new alerts timed one after the other in the caught-up run")
}

func (f *ackFlags) want(part string) bool {
	return slices.Contains(strings.Split(f.parts, ","), part)
}

// standinLatency is the stand-in's flags for an ack latency with this median and the tail's shape.
func (f *ackFlags) standinLatency(median time.Duration) []string {
	mult := func(x float64) string { return time.Duration(float64(median) * x).String() }
	return []string{"-ack-median", median.String(), "-ack-p99", mult(f.p99), "-ack-tail", mult(f.tail),
		"-ack-tail-share", strconv.FormatFloat(f.tailShare, 'g', -1, 64)}
}

// tailNote says which distribution the latencies stand for.
func (f *ackFlags) tailNote() string {
	return fmt.Sprintf("Ack latency: log-normal with the median shown and a 99th percentile of %g× it; %.1f%% of acks take between %g× and %g× the median instead (a long tail).",
		f.p99, 100*f.tailShare, f.p99, f.tail)
}

// window is a window setting of the product: DEFENDER_HEC_WINDOW and DEFENDER_HEC_MAX_IN_FLIGHT.
type window struct {
	mode string // fixed, adaptive, or default (neither variable set)
	n    int
}

func parseWindows(s string) ([]window, error) {
	var ws []window
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "default" {
			ws = append(ws, window{mode: "default"})
			continue
		}
		mode, n, ok := strings.Cut(f, ":")
		k, err := strconv.Atoi(n)
		if !ok || err != nil || k < 1 || (mode != "fixed" && mode != "adaptive") {
			return nil, fmt.Errorf("-ack-windows: %q is not fixed:N, adaptive:N or default", f)
		}
		ws = append(ws, window{mode: mode, n: k})
	}
	return ws, nil
}

// env is the window's settings. DEFENDER_HEC_WINDOW is passed even to a binary that does not
// know it: the configuration reads only the DEFENDER_ variables it knows and ignores others.
func (w window) env() []string {
	if w.mode == "default" {
		return nil
	}
	return []string{"DEFENDER_HEC_WINDOW=" + w.mode, "DEFENDER_HEC_MAX_IN_FLIGHT=" + strconv.Itoa(w.n)}
}

// label names the window as the binary under test runs it: without DEFENDER_HEC_WINDOW, every
// window is fixed at DEFENDER_HEC_MAX_IN_FLIGHT.
func (w window) label(knowsWindow bool) string {
	switch {
	case w.mode == "default":
		return "default settings"
	case w.mode == "adaptive" && !knowsWindow:
		return fmt.Sprintf("adaptive ≤ %d (this build: fixed %d)", w.n, w.n)
	case w.mode == "adaptive":
		return fmt.Sprintf("adaptive ≤ %d", w.n)
	}
	return fmt.Sprintf("fixed %d", w.n)
}

// knowsSetting reports whether the binary names this setting (its settings table holds every
// variable's name).
func knowsSetting(bin, name string) bool {
	b, err := os.ReadFile(bin)
	return err == nil && bytes.Contains(b, []byte(name))
}

// userEnv is the product's environment as a user sets it: credentials, URLs, a state folder,
// acks required; nothing tuned. Log level info, for the "done" line's resent count.
func userEnv(s *standin, state string) []string {
	return []string{"PATH=" + os.Getenv("PATH"),
		"DEFENDER_TENANT_ID=6c2a4e1b-3f0d-4a8e-9b7c-2d5e8f1a0b3c", "DEFENDER_CLIENT_ID=0f9e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f",
		"DEFENDER_CLIENT_SECRET=bench-secret", "DEFENDER_API_URL=" + s.urls.API, "DEFENDER_LOGIN_URL=" + s.urls.API,
		"DEFENDER_HEC_URL=" + s.urls.HEC, "DEFENDER_HEC_TOKEN=8a3f2b1c-4d5e-6f70-8192-a3b4c5d6e7f8",
		"DEFENDER_STATE_DIR=" + state, "DEFENDER_INPUT=bench", "DEFENDER_START=30d", "DEFENDER_LOG_LEVEL=info",
		"DEFENDER_HEC_ACK=on"}
}

var resentRE = regexp.MustCompile(`msg=done .*\bresent=(\d+)`)

// resent is the "resent" count of the product's last "done" line, -1 when there is none.
func resent(log string) int {
	m := resentRE.FindAllStringSubmatch(log, -1)
	if len(m) == 0 {
		return -1
	}
	n, _ := strconv.Atoi(m[len(m)-1][1])
	return n
}

// ackRun is one run --once of the product to the end, with what the stand-in saw.
type ackRun struct {
	n       int
	m       measure
	st      map[string]any
	resent  int
	missing int
}

// drain runs the product once over a fresh stand-in of n alerts.
func drain(bin string, n int, standinArgs, extraEnv []string) (ackRun, error) {
	s, err := startStandin(bin+"/standin", n, true, standinArgs...)
	if err != nil {
		return ackRun{}, err
	}
	defer s.stop()
	state, _ := os.MkdirTemp("", "bench-state-")
	defer os.RemoveAll(state)
	m, err := runMeasured(bin+"/defender_alerts", append(userEnv(s, state), extraEnv...), "run", "--once")
	st, _ := s.stats()
	r := ackRun{n: n, m: m, st: st, resent: resent(m.log), missing: n - num(st, "distinct")}
	return r, err
}

// runAcks runs the parts asked for and returns their tables, each under a heading.
func runAcks(bin string, f *ackFlags) (string, bool) {
	var doc strings.Builder
	ok := true
	knows := knowsSetting(bin+"/defender_alerts", "DEFENDER_HEC_WINDOW")
	fmt.Fprintf(&doc, "## Indexer acknowledgement: windows, crashes, lost acks\n\n%s\n", f.tailNote())
	if !knows {
		doc.WriteString("This build has no `DEFENDER_HEC_WINDOW`: it ignores the variable, and every window is fixed at `DEFENDER_HEC_MAX_IN_FLIGHT` (its default: 1).\n")
	}
	doc.WriteString("Every run: `bin/defender_alerts run --once` with `DEFENDER_HEC_ACK=on` and, unless a row says otherwise, the default settings; CPU and peak RSS are the product's process alone.\n\n")
	section := func(title, table string, good bool) {
		fmt.Fprintf(&doc, "### %s\n\n%s\n", title, table)
		fmt.Printf("\n### %s\n\n%s", title, table)
		ok = ok && good
	}
	if f.want("latency") {
		t, good := latencyTable(bin, f, knows)
		section(fmt.Sprintf("%d alerts: ack latency × window", f.size), t, good)
	}
	if f.want("goals") {
		t, good := goalTable(bin, f)
		section(fmt.Sprintf("Goals: %d alerts at the default settings", f.goalSize), t, good)
	}
	if f.want("crash") {
		t, good := crashTable(bin, f)
		section(fmt.Sprintf("%d SIGKILLs during a %d-alert drain, acks after 1 s, HEC up", f.kills, f.size), t, good)
	}
	if f.want("lost") {
		t, good := lostTable(bin, f)
		section(fmt.Sprintf("%d alerts, 5%% of acks lost, 10%% busy replies, acks after %v, default settings", f.size, f.lostLatency), t, good)
	}
	if f.want("caughtup") {
		t, good := caughtUpTable(bin, f)
		section("Caught up, one new alert", t, good)
	}
	return doc.String(), ok
}

func durations(s string) ([]time.Duration, error) {
	var ds []time.Duration
	for _, f := range strings.Split(s, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(f))
		if err != nil {
			return nil, err
		}
		ds = append(ds, d)
	}
	return ds, nil
}

func mib(kib int64) float64 { return float64(kib) / 1024 }

func latencyTable(bin string, f *ackFlags, knows bool) (string, bool) {
	lats, err := durations(f.latencies)
	if err != nil {
		fail(fmt.Errorf("-ack-latencies: %w", err))
	}
	ws, err := parseWindows(f.windows)
	if err != nil {
		fail(err)
	}
	var b strings.Builder
	good := true
	b.WriteString("| ack latency (median) | window | alerts/s | wall s | CPU µs/alert | peak RSS MiB | HEC requests | ack ids polled | duplicates | missing |\n")
	b.WriteString("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, lat := range lats {
		for _, w := range ws {
			r, err := drain(bin, f.size, f.standinLatency(lat), w.env())
			if err != nil {
				fmt.Fprintln(os.Stderr, "benchrun:", err)
				good = false
			}
			good = good && r.missing == 0
			fmt.Fprintf(&b, "| %v | %s | %.0f | %.1f | %.1f | %.1f | %d | %d | %d | %d |\n", lat, w.label(knows),
				float64(r.n)/r.m.wall.Seconds(), r.m.wall.Seconds(), float64(r.m.cpu.Microseconds())/float64(r.n), mib(r.m.rssKiB),
				num(r.st, "hec_requests"), num(r.st, "ack_ids"), num(r.st, "duplicates"), r.missing)
			fmt.Fprintf(os.Stderr, "done: acks after %v, window %s\n", lat, w.label(knows))
		}
	}
	return b.String(), good
}

func met(ok bool) string {
	if ok {
		return "(met)"
	}
	return "(**not met**)"
}
