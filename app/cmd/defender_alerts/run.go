package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"time"

	"ta-defender-alerts/app/bridge"
	"ta-defender-alerts/app/config"
	"ta-defender-alerts/app/memlimit"
	"ta-defender-alerts/app/metrics"
	"ta-defender-alerts/app/procs"
	"ta-defender-alerts/app/retry"
	"ta-defender-alerts/app/splunkapp"
	"ta-defender-alerts/app/version"
	"ta-defender-alerts/app/wait"
	"ta-defender-alerts/app/wiring"
)

const usage = `defender_alerts pulls Microsoft Defender for Endpoint alerts into Splunk's HTTP Event Collector.

Usage:
  defender_alerts run          collect continuously, every DEFENDER_INTERVAL
  defender_alerts run --once   collect everything up to now, deliver, confirm, commit, exit
  defender_alerts check        check the configuration, the Entra app and HEC (or the syslog receiver), with fixes
  defender_alerts demo         watch it work against a simulated tenant and Splunk (no setup);
                               demo --output syslog [--format leef]: into a syslog receiver, as CEF or LEEF
  defender_alerts version      print the version
  defender_alerts help         print this help

Settings come from DEFENDER_* environment variables (see README.md), for example:
  DEFENDER_TENANT_ID, DEFENDER_CLIENT_ID, DEFENDER_CLIENT_SECRET (or _FILE) or DEFENDER_CERT_FILE,
  DEFENDER_HEC_URL, DEFENDER_HEC_TOKEN (or _FILE), DEFENDER_STATE_DIR.

Run with no arguments, defender_alerts is a Splunk modular input and reads its configuration
from standard input, as splunkd provides it.
`

// run is the whole program behind main, so tests can drive it in-process.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return noArgs(ctx, stdin, stdout, stderr)
	}
	switch args[0] {
	case "--scheme":
		if err := splunkapp.WriteScheme(stdout); err != nil {
			return 1
		}
		return 0
	case "--validate-arguments":
		return splunkapp.Validate(ctx, stdin, stdout)
	case "version", "--version":
		fmt.Fprint(stdout, version.Describe())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	case "run":
		fs := flag.NewFlagSet("run", flag.ContinueOnError)
		fs.SetOutput(stderr)
		once := fs.Bool("once", false, "collect up to now, then exit")
		if err := fs.Parse(args[1:]); err != nil {
			return 2
		}
		return collect(ctx, *once, stderr)
	case "check":
		return check(ctx, stdout, stderr)
	case "demo":
		return demo(ctx, args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "defender_alerts: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

// noArgs is splunkd's way of starting a modular input: configuration XML on stdin.
func noArgs(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) int {
	if f, ok := stdin.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			fmt.Fprint(stdout, usage) // a person at a terminal
			return 0
		}
	}
	br := bufio.NewReaderSize(stdin, 4096)
	head, _ := br.Peek(4096)
	if !looksLikeInput(head) {
		fmt.Fprintln(stderr, "ERROR defender_alerts: no modular input configuration on standard input (splunkd provides it when it runs this app's input). To run the collector yourself, use: defender_alerts run (see defender_alerts help)")
		return 2
	}
	return splunkapp.Run(ctx, br, stdout, stderr)
}

// looksLikeInput finds "<input" in UTF-8 or UTF-16 text.
func looksLikeInput(b []byte) bool {
	if strings.Contains(string(b), "<input") {
		return true
	}
	var ascii []byte
	for _, c := range b {
		if c != 0 && c != 0xFF && c != 0xFE {
			ascii = append(ascii, c)
		}
	}
	return strings.Contains(string(ascii), "<input")
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	opts.ReplaceAttr = splunkQuotes
	return slog.New(slog.NewTextHandler(w, opts))
}

// splunkQuotes turns the double quotes inside a text line's values into single ones: Splunk's
// automatic key=value extraction ends a quoted value at the next double quote and honours no
// backslash escape, so an error quoting HEC's text would be cut short on the dashboard.
func splunkQuotes(_ []string, a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch {
	case v.Kind() == slog.KindString && strings.Contains(v.String(), `"`):
		return slog.String(a.Key, strings.ReplaceAll(v.String(), `"`, `'`))
	case v.Kind() == slog.KindAny:
		if err, ok := v.Any().(error); ok && strings.Contains(err.Error(), `"`) {
			return slog.String(a.Key, strings.ReplaceAll(err.Error(), `"`, `'`))
		}
	}
	return a
}

// onceGiveUp is how long run --once lets one batch wait for delivery (retries, a URL set
// aside, an ack that does not come) before it stops with an error. Tests shrink it.
var onceGiveUp = 5 * time.Minute

// daemonGiveUp is how long the daemon lets one batch wait for delivery (HEC busy or down)
// before the poll fails with HEC's last error: the daemon logs it and tries again later from
// the checkpoint, which stays before the batch. Tests shrink it.
var daemonGiveUp = 10 * time.Minute

// daemonRetryMin is the daemon's first wait after a failed poll; it doubles up to ten
// intervals, each wait jittered (retry.Delay). Tests shrink it.
var daemonRetryMin = 5 * time.Second

// collect is run and run --once: one pump per feed of DEFENDER_FEED, each on its own
// checkpoint, limiter and failure domain, in one process. The exit code is the worst feed's.
func collect(ctx context.Context, once bool, stderr io.Writer) int {
	cfg, err := config.FromEnv()
	if err != nil {
		fmt.Fprintf(stderr, "defender_alerts: configuration: %v\n", err)
		return 2
	}
	// Every line names the input, as in the modular input, for the health dashboard.
	log := newLogger(cfg, stderr).With("input", cfg.InputName())
	if path := os.Getenv("DEFENDER_CPUPROFILE"); path != "" { // a debugging aid: where the CPU goes
		if f, err := os.Create(path); err == nil {
			defer f.Close() // runs after StopCPUProfile has flushed the profile
			if pprof.StartCPUProfile(f) == nil {
				defer pprof.StopCPUProfile()
			}
		}
	}
	memlimit.Set(os.LookupEnv, len(cfg.Feeds), cfg.HECWindow())
	procs.Set(os.LookupEnv, len(cfg.Feeds))
	var runs []*feedRun
	defer func() {
		for _, r := range runs {
			r.c.Close()
		}
	}()
	for _, name := range cfg.Feeds {
		r, code := newFeedRun(cfg.ForFeed(name), once, log.With("feed", name))
		if r == nil {
			return code
		}
		r.others = len(cfg.Feeds) > 1
		runs = append(runs, r)
	}
	if cfg.MetricsAddr != "" {
		var srcs []metrics.Sources
		for _, r := range runs {
			src := metrics.Sources{Feed: r.cfg.Feed, Pump: r.c.Pump.Stats, Defender: r.c.Defender.Stats, Interval: cfg.Interval, Started: time.Now()}
			if r.c.HEC != nil { // nil with output syslog
				src.HEC = r.c.HEC.Stats
			}
			srcs = append(srcs, src)
		}
		addr, err := metrics.Serve(ctx, cfg.MetricsAddr, metrics.Handler(srcs...))
		if err != nil {
			log.Error("cannot serve metrics", "err", err)
			return 2
		}
		log.Info("serving /metrics and /healthz", "addr", addr.String())
	}
	codes := make([]int, len(runs))
	var wg sync.WaitGroup
	for i, r := range runs {
		r.log.Info("defender_alerts starting", "version", version.Version, "once", once, "interval_s", int64(cfg.Interval/time.Second),
			"api", r.c.Defender.Endpoints().API.String(), "hec_urls", len(r.cfg.HEC.URLs), "checkpoint", r.c.Store.Path())
		wg.Go(func() {
			if once {
				codes[i] = r.once(ctx)
			} else {
				codes[i] = r.daemon(ctx)
			}
		})
	}
	wg.Wait()
	return slices.Max(codes)
}

// feedRun is one feed's collection in run and run --once.
type feedRun struct {
	cfg    *config.Config
	c      *wiring.Collector
	log    *slog.Logger
	others bool // other feeds run in the same process
}

// needsFixRetry is the shortest wait before a feed that needs a fix tries again while other
// feeds keep the process running. Tests shrink it.
var needsFixRetry = 10 * time.Minute

// newFeedRun assembles a feed's collection; on failure it returns nil and the exit code.
func newFeedRun(cfg *config.Config, once bool, log *slog.Logger) (*feedRun, int) {
	cfg.Defender.OnRetryAfter = bridge.LogRetryAfter(log)
	if once {
		// --once ends with an error rather than waiting forever, a throttled read too.
		cfg.Defender.GiveUpAfter, cfg.HEC.GiveUpAfter = onceGiveUp, onceGiveUp
	} else {
		// The daemon rides out a HEC that is busy or down for hours, but not inside one batch:
		// the poll fails with HEC's error, which is logged, and the next one tries again.
		cfg.HEC.GiveUpAfter, cfg.HEC.NoAckFails = daemonGiveUp, true
	}
	cfg.HEC.OnRetry = bridge.LogHECRetry(log)
	c, err := wiring.New(cfg, log, nil)
	if err != nil {
		var se *wiring.SettingError
		if errors.As(err, &se) {
			log.Error("configuration", "err", cfg.Explain(err), "needs_fix", true)
			return nil, 2
		}
		log.Error("cannot start", "err", err, "needs_fix", bridge.NeedsFix(err))
		return nil, 1
	}
	return &feedRun{cfg: cfg, c: c, log: log}, 0
}

// once drains the feed up to now.
func (r *feedRun) once(ctx context.Context) int {
	p, log := r.c.Pump, r.log
	err := p.Drain(ctx)
	st := p.Stats()
	switch {
	case ctx.Err() != nil:
		log.Info("stopped; what was confirmed is committed", "confirmed", st.Confirmed)
		return 0
	case err != nil:
		log.Error("collection failed; the checkpoint holds what was confirmed", "err", err, "confirmed", st.Confirmed, "needs_fix", bridge.NeedsFix(err))
		return 1
	}
	log.Info("done", "read", st.Read, "confirmed", st.Confirmed, "rejected", st.Rejected, "resent", st.Resent, "recovered", st.Recovered, "watermark", st.Watermark)
	return 0
}

// daemon polls the feed every interval until ctx ends or a failure needs a fix; the other
// feeds go on either way.
func (r *feedRun) daemon(ctx context.Context) int {
	p, log, interval := r.c.Pump, r.log, r.cfg.Interval
	fails := 0 // failed polls in a row
	for {
		started := time.Now()
		err := p.Drain(ctx)
		if ctx.Err() != nil {
			log.Info("stopped; what was confirmed is committed", "confirmed", p.Stats().Confirmed)
			return 0
		}
		next := untilNextPoll(interval, time.Since(started))
		switch {
		case err == nil:
			fails = 0
			st := p.Stats()
			log.Debug("poll done", "confirmed_total", st.Confirmed, "watermark", st.Watermark)
		case bridge.NeedsFix(err) && !r.others:
			log.Error("stopping: this needs a fix before collection can go on", "err", err, "needs_fix", true)
			return 1
		case bridge.NeedsFix(err):
			// The other feeds keep the process up, so no supervisor restarts it after the
			// fix: this feed tries again now and then, and picks the fix up itself.
			next = max(needsFixRetry, interval)
			log.Error("this feed needs a fix before it can go on; the other feeds go on, and this one tries again", "err", err, "needs_fix", true, "in", next)
		default:
			fails++
			next = retry.Delay(daemonRetryMin, 10*interval, fails)
			if bridge.Alarming(err) {
				// Not a passing outage: someone should look at the load balancer or HEC.
				log.Error("HEC never acknowledged a batch; it is not committed and will be sent again", "err", err, "in", next)
			} else {
				log.Warn("collection failed; will try again", "err", err, "in", next)
			}
		}
		if wait.Sleep(ctx, next) != nil {
			log.Info("stopped", "confirmed", p.Stats().Confirmed)
			return 0
		}
	}
}

// untilNextPoll is the wait after a poll that took took: polls start every interval, so an
// alert waits at most one interval (plus the poll's own time) for the poll that finds it,
// however long the poll before it waited for acks. A poll that took an interval or more is
// followed at once by the next.
func untilNextPoll(interval, took time.Duration) time.Duration {
	return max(interval-took, 0)
}
