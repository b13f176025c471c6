//go:build unix

// Command benchrun is ./build.sh bench: it runs bin/defender_alerts run --once as a user
// would, against the stand-ins in a process of their own, for backlogs of several sizes with
// HEC acks on and off, next to the raw relay (bin/rawrelay) on the same data, and prints a
// table of alerts/s, MB/s, wall and CPU time, peak RSS, API calls and HEC requests.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type standin struct {
	cmd  *exec.Cmd
	urls struct{ API, HEC, Control string }
}

func startStandin(bin string, n int, ack bool, extra ...string) (*standin, error) {
	return startStandinOn(nil, bin, n, ack, extra...)
}

// startStandinOn starts the stand-in behind a command prefix (pin.go).
func startStandinOn(prefix []string, bin string, n int, ack bool, extra ...string) (*standin, error) {
	name, args := command(prefix, bin, append([]string{"-alerts", strconv.Itoa(n), "-ack=" + strconv.FormatBool(ack)}, extra...)...)
	s := &standin{cmd: exec.Command(name, args...)}
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	s.cmd.Stderr = os.Stderr
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(out).ReadBytes('\n')
	if err != nil {
		return nil, fmt.Errorf("stand-in did not start: %w", err)
	}
	var u map[string]string
	if err := json.Unmarshal(line, &u); err != nil {
		return nil, err
	}
	s.urls.API, s.urls.HEC, s.urls.Control = u["api"], u["hec"], u["control"]
	return s, nil
}

func (s *standin) stats() (map[string]any, error) {
	resp, err := http.Get(s.urls.Control + "/stats")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var m map[string]any
	return m, json.NewDecoder(resp.Body).Decode(&m)
}

func (s *standin) stop() { _ = s.cmd.Process.Signal(syscall.SIGTERM); _ = s.cmd.Wait() }

// cpu is the CPU time the stand-in used, once stopped.
func (s *standin) cpu() time.Duration {
	cpu, _ := usage(s.cmd.ProcessState)
	return cpu
}

// usage is an ended process's CPU time (user and system) and peak RSS (0s if unknown).
func usage(ps *os.ProcessState) (cpu time.Duration, rssKiB int64) {
	if ps == nil {
		return 0, 0
	}
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), ru.Maxrss
	}
	return 0, 0
}

type measure struct {
	wall, cpu time.Duration
	rssKiB    int64
	log       string // the end of the process's stderr
}

func runMeasured(name string, env []string, args ...string) (measure, error) {
	return runMeasuredOn(nil, name, env, args...)
}

// runMeasuredOn runs the program behind a command prefix (pin.go).
func runMeasuredOn(prefix []string, name string, env []string, args ...string) (measure, error) {
	cmdName, cmdArgs := command(prefix, name, args...)
	cmd := exec.Command(cmdName, cmdArgs...)
	cmd.Env = env
	var errb tail
	cmd.Stderr = &errb
	start := time.Now()
	err := cmd.Run()
	m := measure{wall: time.Since(start), log: errb.String()}
	m.cpu, m.rssKiB = usage(cmd.ProcessState)
	if err != nil {
		last := m.log
		if len(last) > 2000 {
			last = last[len(last)-2000:]
		}
		return m, fmt.Errorf("%s: %v\n%s", name, err, last)
	}
	return m, nil
}

func env(s *standin, state string, ack bool) []string {
	e := []string{"PATH=" + os.Getenv("PATH"),
		"DEFENDER_TENANT_ID=6c2a4e1b-3f0d-4a8e-9b7c-2d5e8f1a0b3c", "DEFENDER_CLIENT_ID=0f9e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f",
		"DEFENDER_CLIENT_SECRET=bench-secret", "DEFENDER_API_URL=" + s.urls.API, "DEFENDER_LOGIN_URL=" + s.urls.API,
		"DEFENDER_HEC_URL=" + s.urls.HEC, "DEFENDER_HEC_TOKEN=8a3f2b1c-4d5e-6f70-8192-a3b4c5d6e7f8",
		"DEFENDER_STATE_DIR=" + state, "DEFENDER_START=30d", "DEFENDER_LOG_LEVEL=warn"}
	// Go's own settings pass through, for runs that compare them (GOMAXPROCS=2 against the
	// product's one processor per feed).
	for _, k := range []string{"GOMAXPROCS", "GOMEMLIMIT", "GOGC"} {
		if v, ok := os.LookupEnv(k); ok {
			e = append(e, k+"="+v)
		}
	}
	// The stand-in acknowledges at once; poll for acks often, as a fast Splunk would deserve.
	e = append(e, "DEFENDER_HEC_ACK_INTERVAL=50ms")
	if ack {
		e = append(e, "DEFENDER_HEC_ACK=on")
	} else {
		e = append(e, "DEFENDER_HEC_ACK=off")
	}
	return e
}

type row struct {
	n                        int
	mode                     string
	m                        measure
	calls, hecReqs, dups     int
	distinct                 int
	bytes                    float64
	relayCPUPerAlert, ratio  float64
	minCalls                 int
	alertsPerS, mbPerS, usPA float64
}

func num(m map[string]any, k string) int {
	f, _ := m[k].(float64)
	return int(f)
}

func main() {
	sizes := flag.String("sizes", "10000,100000,1000000", "backlog sizes")
	bin := flag.String("bin", "bin", "folder with defender_alerts, standin and rawrelay")
	out := flag.String("out", "", "also write the table to this Markdown file")
	inFlight := flag.String("in-flight", "1", "DEFENDER_HEC_MAX_IN_FLIGHT for the product")
	orders := flag.String("orders", "", "also run these API list orders (stand-in names: lastupdate, created, id, shuffled, …), acks off")
	orderSizes := flag.String("order-sizes", "25000,100000", "backlog sizes for -orders")
	feeds := flag.String("feeds", "", "also run these feeds against endpoint-alerts on the same alerts, acks off (graph-alerts)")
	feedSize := flag.Int("feed-size", 100000, "alerts for -feeds")
	feedRounds := flag.Int("feed-rounds", 3, "rounds of -feeds (the feeds alternate)")
	feedPin := flag.String("feed-pin", "auto", "-feeds: the stand-in on one CPU and the product on the others (auto: where Linux, 2 CPUs and taskset allow; on; off)")
	var acks ackFlags
	acks.register(flag.CommandLine)
	flag.Parse()
	var rows []row
	for _, f := range strings.Split(*sizes, ",") {
		if strings.TrimSpace(f) == "" {
			continue // -sizes "": no main table
		}
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			fail(err)
		}
		// The baseline first: the bare minimum on the same data.
		s, err := startStandin(*bin+"/standin", n, false)
		if err != nil {
			fail(err)
		}
		relay, err := runMeasured(*bin+"/rawrelay", env(s, "", false))
		rs, _ := s.stats()
		s.stop()
		if err != nil {
			fail(err)
		}
		if num(rs, "distinct") != n {
			fail(fmt.Errorf("the raw relay delivered %d of %d", num(rs, "distinct"), n))
		}
		relayPA := float64(relay.cpu.Microseconds()) / float64(n)
		for _, ack := range []bool{false, true} {
			s, err := startStandin(*bin+"/standin", n, ack)
			if err != nil {
				fail(err)
			}
			state, _ := os.MkdirTemp("", "bench-state-")
			e := append(env(s, state, ack), "DEFENDER_HEC_MAX_IN_FLIGHT="+*inFlight)
			m, err := runMeasured(*bin+"/defender_alerts", e, "run", "--once")
			st, _ := s.stats()
			s.stop()
			os.RemoveAll(state)
			if err != nil {
				fail(err)
			}
			r := row{n: n, mode: map[bool]string{false: "off", true: "on"}[ack], m: m, calls: num(st, "api_calls"),
				hecReqs: num(st, "hec_requests"), dups: num(st, "duplicates"), distinct: num(st, "distinct"),
				bytes: float64(num(st, "api_bytes")), minCalls: n/10000 + 1}
			if r.distinct != n {
				fail(fmt.Errorf("delivered %d of %d alerts", r.distinct, n))
			}
			r.alertsPerS = float64(n) / m.wall.Seconds()
			r.mbPerS = r.bytes / 1e6 / m.wall.Seconds()
			r.usPA = float64(m.cpu.Microseconds()) / float64(n)
			r.relayCPUPerAlert = relayPA
			r.ratio = r.usPA / relayPA
			rows = append(rows, r)
			fmt.Fprintf(os.Stderr, "done: %d alerts, acks %s\n", n, r.mode)
		}
	}
	var table string
	if len(rows) > 0 {
		table = render(rows)
		fmt.Print(table)
	}
	var orderTable string
	if *orders != "" {
		orderTable = renderOrders(runOrders(*bin, *orders, *orderSizes, *inFlight))
		fmt.Print("\n" + orderTable)
	}
	var feedTable string
	feedsOK := true
	if *feeds != "" {
		feedTable, feedsOK = renderFeeds(runFeeds(*bin, *feeds, *feedSize, *feedRounds, *feedPin))
		fmt.Print("\n" + feedTable)
	}
	var ackDoc string
	acksOK := true
	if acks.on {
		ackDoc, acksOK = runAcks(*bin, &acks)
	}
	if *out != "" {
		host, _ := os.Hostname()
		doc := "# Benchmarks\n\nFrom `./build.sh bench` (`app/cmd/benchrun`): `bin/defender_alerts run --once` against the Defender and HEC stand-ins in a process of their own on loopback (quotas lifted, alerts of 2–5 KB with evidence, `lastUpdateTime` spread over 3 days, made on demand), and the raw relay (`app/cmd/rawrelay`: fetch, split, wrap, gzip, post; no checkpoint, retries, limiter or acks) on the same data. CPU is user + system time of the product's process alone; peak RSS is its `ru_maxrss`. The stand-ins share the machine's cores, so wall-clock figures depend on them; CPU per alert is the figure to compare.\n\n" +
			fmt.Sprintf("Machine: %s, %d cores (%s), %s/%s, %s, %s. One batch in flight (the default).\n\n", cpuModel(), runtime.NumCPU(), host, runtime.GOOS, runtime.GOARCH, runtime.Version(), time.Now().UTC().Format("2006-01-02")) + table
		if orderTable != "" {
			doc += "\n" + ordersIntro + orderTable
		}
		if feedTable != "" {
			doc += "\n## Feeds: graph-alerts against endpoint-alerts (issue 13)\n\n" +
				"The same alerts, acks off, the feeds one after the other: API calls against the minimum at the feed's page size (10,000 and 500), CPU per alert against the endpoint feed's in the same round. The Graph feed keeps to 150 calls a minute, which sets its wall time.\n\n" + feedTable
		}
		if ackDoc != "" {
			doc += "\n" + ackDoc
		}
		if err := os.WriteFile(*out, []byte(doc), 0o644); err != nil {
			fail(err)
		}
	}
	if !feedsOK {
		fail(fmt.Errorf("the graph-alerts feed made more than twice the minimum of API calls (see above)"))
	}
	if !acksOK {
		fail(fmt.Errorf("the acknowledgement section lost alerts, failed a run or missed a kill (see above)"))
	}
}

func render(rows []row) string {
	var b strings.Builder
	b.WriteString("| alerts | acks | alerts/s | MB/s | wall s | CPU s | CPU µs/alert | relay µs/alert | ratio | peak RSS MiB | API calls (min) | HEC requests | duplicates |\n")
	b.WriteString("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %d | %s | %.0f | %.1f | %.1f | %.2f | %.1f | %.1f | %.2f× | %.1f | %d (%d) | %d | %d |\n",
			r.n, r.mode, r.alertsPerS, r.mbPerS, r.m.wall.Seconds(), r.m.cpu.Seconds(), r.usPA, r.relayCPUPerAlert, r.ratio,
			float64(r.m.rssKiB)/1024, r.calls, r.minCalls, r.hecReqs, r.dups)
	}
	return b.String()
}

// ordersIntro heads the table of list orders in the -out document.
const ordersIntro = `## The API's list order

The Alert API documents no order for its pages, so the client proves each full page with a
count probe (` + "`$skip=k&$top=1`" + ` on the range the page covered) and, when the API lists by
something else, pages along the key a probe confirms or bisects the window (README, "How alerts
are read"). The same run (` + "`BENCH_ORDERS`, `BENCH_ORDER_SIZES`" + `) against the stand-in
listing in each order, at the default page size (10,000), with every tenth alert updated later
(so that creation order and lastUpdateTime order differ), acks off. Minimum calls: one per
10,000 alerts, plus the short page that ends the window. Alerts downloaded counts every alert in
every reply (probes included); MB are the alert bytes the stand-in sent.

`

type orderRow struct {
	order                    string
	n, calls, minCalls, dups int
	alerts                   int
	bytes                    float64
	m                        measure
}

func runOrders(bin, orders, sizes, inFlight string) []orderRow {
	var rows []orderRow
	for _, f := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			fail(err)
		}
		for _, o := range strings.Split(orders, ",") {
			o = strings.TrimSpace(o)
			s, err := startStandin(bin+"/standin", n, false, "-order", o, "-revisit", "10")
			if err != nil {
				fail(err)
			}
			state, _ := os.MkdirTemp("", "bench-state-")
			m, err := runMeasured(bin+"/defender_alerts", append(env(s, state, false), "DEFENDER_HEC_MAX_IN_FLIGHT="+inFlight), "run", "--once")
			st, _ := s.stats()
			s.stop()
			os.RemoveAll(state)
			if err != nil {
				fail(err)
			}
			if num(st, "distinct") != n {
				fail(fmt.Errorf("order %s: delivered %d of %d alerts", o, num(st, "distinct"), n))
			}
			rows = append(rows, orderRow{order: o, n: n, calls: num(st, "api_calls"), minCalls: n/10000 + 1,
				dups: num(st, "duplicates"), alerts: num(st, "api_alerts"), bytes: float64(num(st, "api_bytes")), m: m})
			fmt.Fprintf(os.Stderr, "done: %d alerts, order %s\n", n, o)
		}
	}
	return rows
}

func renderOrders(rows []orderRow) string {
	var b strings.Builder
	b.WriteString("| order | alerts | API calls (min) | alerts downloaded | API MB | wall s | CPU µs/alert | duplicates |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %d | %d (%d) | %d | %.1f | %.1f | %.1f | %d |\n", r.order, r.n, r.calls, r.minCalls,
			r.alerts, r.bytes/1e6, r.m.wall.Seconds(), float64(r.m.cpu.Microseconds())/float64(r.n), r.dups)
	}
	return b.String()
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "benchrun:", err)
	os.Exit(1)
}
