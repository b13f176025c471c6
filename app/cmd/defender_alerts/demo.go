package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"ta-defender-alerts/app/bridge"
	"ta-defender-alerts/app/config"
	"ta-defender-alerts/app/defendertest"
	"ta-defender-alerts/app/hectest"
	"ta-defender-alerts/app/secret"
	"ta-defender-alerts/app/syslog"
	"ta-defender-alerts/app/wiring"
)

// demo runs the real pipeline between a simulated tenant and a simulated Splunk (or, with
// --output syslog, an in-process syslog receiver), on loopback.
func demo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dur := fs.Duration("duration", 20*time.Second, "how long the demo runs")
	orderName := fs.String("order", "lastupdate", "the simulated API's list order: lastupdate, lastupdate-ties, oldest, shuffled, created or id")
	feed := fs.String("feed", config.DefaultFeed, "the feed read: "+strings.Join(config.FeedNames(), " or "))
	output := fs.String("output", "hec", "where the alerts go: hec (a simulated Splunk) or syslog (a receiver on this machine)")
	format := fs.String("format", "cef", "with --output syslog: cef or leef")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *output != "hec" && *output != "syslog" {
		fmt.Fprintf(stderr, "demo: --output: %q is not hec or syslog\n", *output)
		return 2
	}
	if *output == "syslog" && ((*format != "cef" && *format != "leef") || *feed != "endpoint-alerts") {
		fmt.Fprintf(stderr, "demo: --output syslog takes --format cef or leef, and the endpoint-alerts feed (detections are made from Alert API alerts)\n")
		return 2
	}
	order, err := defendertest.ParseOrder(*orderName)
	if err != nil {
		fmt.Fprintln(stderr, "demo: -order:", err)
		return 2
	}
	mode, err := defendertest.ParseMode(*feed)
	if err != nil || config.FeedSourcetype(*feed) == "" {
		fmt.Fprintf(stderr, "demo: -feed: %q is not one of %s\n", *feed, strings.Join(config.FeedNames(), ", "))
		return 2
	}
	const (
		tenant = "00000000-0000-4000-8000-00000000d3m0"
		client = "00000000-0000-4000-8000-0000000c11e7"
	)
	demoSecret := "demo-secret-" + fmt.Sprint(time.Now().UnixNano())
	dir, err := os.MkdirTemp("", "defender-alerts-demo-")
	if err != nil {
		fmt.Fprintln(stderr, "demo:", err)
		return 1
	}

	// A simulated tenant: 300 alerts over the last six hours, changing as the demo runs;
	// new versions become visible up to 3 s late, as the real API's do.
	api := defendertest.New(defendertest.Options{TenantID: tenant[:8] + "-0000-4000-8000-000000000000", ClientID: client[:8] + "-0000-4000-8000-000000000001", ClientSecret: demoSecret, TokenLifetime: 15 * time.Second, Mode: mode})
	defer api.Close()
	now := time.Now()
	api.AddAlerts(300, func(i int) time.Time { return now.Add(-6 * time.Hour).Add(time.Duration(i) * 6 * time.Hour / 300) })
	api.SetVisibilityDelay(func(r *mrand.Rand) time.Duration { return time.Duration(r.Int64N(int64(3 * time.Second))) })
	api.SetOrder(order)
	stopUpdates := api.StartUpdates(3)
	splunk := hectest.New(hectest.Options{Token: "8a3f2b1c-4d5e-6f70-8192-a3b4c5d6e7f8", Ack: true})
	defer splunk.Close()
	var recv *demoReceiver
	if *output == "syslog" {
		if recv, err = newDemoReceiver(); err != nil {
			fmt.Fprintln(stderr, "demo:", err)
			return 1
		}
		defer recv.Close()
	}

	logFile, err := os.OpenFile(filepath.Join(dir, "defender_alerts.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		fmt.Fprintln(stderr, "demo:", err)
		return 1
	}
	defer logFile.Close()
	log := slog.New(slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// The demo's settings, as an admin would give them (small pages and batches, so that a
	// few hundred alerts take several calls and batches).
	cfg := &config.Config{Output: "hec", Input: "demo-tenant", Feed: *feed, StateDir: filepath.Join(dir, "state"),
		Start: 7 * time.Hour, Overlap: 30 * time.Second, Linger: 300 * time.Millisecond}
	d, h := &cfg.Defender, &cfg.HEC
	d.TenantID, d.ClientID = tenant[:8]+"-0000-4000-8000-000000000000", client[:8]+"-0000-4000-8000-000000000001"
	d.ClientSecret, d.APIURL, d.LoginURL, d.PageSize, d.Feed = secret.String(demoSecret), api.URL, api.URL, 100, *feed
	h.Sourcetype = config.FeedSourcetype(*feed)
	cfg.NestedSourcetype = config.FeedNestedSourcetype(*feed)
	h.URLs, h.Token, h.Host = []string{splunk.URL}, "8a3f2b1c-4d5e-6f70-8192-a3b4c5d6e7f8", "demo-collector"
	h.BatchBytes, h.AckInterval = 128<<10, 200*time.Millisecond
	if recv != nil {
		cfg.Output, cfg.SyslogFormat = "syslog", *format
		cfg.Syslog = syslog.Options{URL: "tcp://" + recv.Addr(), Hostname: "demo-collector"}
	}
	c, err := wiring.New(cfg, log, nil)
	if err != nil {
		fmt.Fprintln(stderr, "demo:", err)
		return 1
	}
	defer c.Close()
	p, rd := c.Pump, c.Defender

	dest := "a simulated Splunk HEC with indexer acknowledgement"
	if recv != nil {
		dest = "a syslog receiver (RFC 5425 over TCP) taking " + strings.ToUpper(*format) + " detections"
	}
	fmt.Fprintf(stdout, "defender_alerts demo (feed %s: the %s): a simulated Defender tenant (300 alerts,\n"+
		"3 updates a second, new alerts now and then) and %s,\n"+
		"on this machine. The real collector runs between them, polling every 2 s. Ctrl-C stops it early.\n\n", *feed, config.FeedTitle(*feed), dest)
	runCtx, cancel := context.WithTimeout(ctx, *dur)
	defer cancel()
	started := time.Now()
	// New alerts keep arriving.
	go func() {
		for i := 0; runCtx.Err() == nil; i++ {
			select {
			case <-runCtx.Done():
				return
			case <-time.After(700 * time.Millisecond):
				api.AddAlerts(1, func(int) time.Time { return time.Now() })
			}
		}
	}()
	polls := make(chan error, 1)
	go func() {
		for runCtx.Err() == nil {
			if err := p.Drain(runCtx); err != nil && runCtx.Err() == nil {
				polls <- err
				return
			}
			select {
			case <-runCtx.Done():
			case <-time.After(2 * time.Second):
			}
		}
		polls <- nil
	}()
	tty := isTerminal(stdout)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	var pollErr error
	lastLine := time.Time{}
loop:
	for {
		select {
		case pollErr = <-polls:
			break loop
		case m := <-recv.Shown():
			if tty {
				fmt.Fprint(stdout, "\r\x1b[K")
			}
			fmt.Fprintf(stdout, "received: %s\n", m)
			continue
		case <-tick.C:
		}
		arrived, where := splunk.Stats().Indexed, "in Splunk"
		if recv != nil {
			arrived, where = recv.Count(), "at syslog"
		}
		line := progress(p.Stats(), rd.Stats().Calls, arrived, where, started)
		if tty {
			fmt.Fprintf(stdout, "\r%s\x1b[K", line)
		} else if time.Since(lastLine) >= 2*time.Second {
			fmt.Fprintln(stdout, line)
			lastLine = time.Now()
		}
	}
	if tty {
		fmt.Fprintln(stdout)
	}
	if pollErr != nil {
		fmt.Fprintf(stdout, "\nthe collector stopped: %v\n", pollErr)
		return 1
	}
	// Let the tenant settle, then one last poll, as a stopped-and-restarted collector would.
	stopUpdates()
	time.Sleep(3 * time.Second)
	finalCtx, cancelFinal := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancelFinal()
	if err := p.Drain(finalCtx); err != nil {
		fmt.Fprintf(stdout, "the final poll failed: %v\n", err)
		return 1
	}
	if recv != nil {
		return recv.summary(stdout, dir, api, p.Stats(), rd.Stats().Calls, c.Store.Path())
	}
	return summary(stdout, dir, api, splunk, p.Stats(), rd.Stats().Calls, c.Store.Path(), h.Sourcetype)
}

func progress(ps bridge.Stats, apiCalls, arrived int, where string, started time.Time) string {
	el := time.Since(started)
	cp := "—"
	if !ps.LastCommit.IsZero() {
		cp = fmt.Sprintf("%s (watermark lag %.0fs)", ps.LastCommit.Format("15:04:05"), time.Since(ps.Watermark).Seconds())
	}
	return fmt.Sprintf("%5.1fs  read %4d  confirmed %4d  %s %4d  API calls %3d  checkpoint %s",
		el.Seconds(), ps.Read, ps.Confirmed, where, arrived, apiCalls, cp)
}

func summary(w io.Writer, dir string, api *defendertest.Server, splunk *hectest.Server, ps bridge.Stats, apiCalls int, cpPath, sourcetype string) int {
	events := splunk.Events()
	seen := map[string]int{}
	for _, e := range events {
		var a struct {
			ID       string          `json:"id"`
			Incident json.RawMessage `json:"incidentId"`         // incidents
			AlertID  string          `json:"alertId"`            // an incident's alert
			Alert    time.Time       `json:"lastUpdateTime"`     // endpoint-alerts, incidents
			Graph    time.Time       `json:"lastUpdateDateTime"` // graph-alerts
			Nested   time.Time       `json:"lastUpdatedTime"`    // an incident's alert
		}
		_ = json.Unmarshal(e.Raw, &a)
		switch {
		case a.AlertID != "":
			a.ID, a.Alert = a.AlertID, a.Nested
		case a.ID == "":
			a.ID = string(a.Incident)
		}
		if a.Alert.IsZero() {
			a.Alert = a.Graph
		}
		seen[a.ID+"@"+a.Alert.UTC().Format(time.RFC3339Nano)]++
	}
	current := api.Current(time.Now())
	missing, nested, nestedMissing := 0, 0, 0
	for id, v := range current {
		if seen[id+"@"+v.LastUpdate.UTC().Format(time.RFC3339Nano)] == 0 {
			missing++
		}
		if sourcetype != "ms365:defender:incident" {
			continue
		}
		for _, na := range api.NestedAlerts(id, v.LastUpdate) {
			nested++
			if seen[na.AlertID+"@"+na.LastUpdated.UTC().Format(time.RFC3339Nano)] == 0 {
				nestedMissing++
			}
		}
	}
	dups := len(events) - len(seen)
	path := filepath.Join(dir, "events.jsonl")
	var buf bytes.Buffer
	for _, e := range events {
		line, _ := json.Marshal(map[string]any{"_time": e.Time, "host": e.Host, "source": e.Source, "sourcetype": e.Sourcetype, "index": or(e.Index, "main"), "event": e.Raw})
		buf.Write(line)
		buf.WriteByte('\n')
	}
	_ = os.WriteFile(path, buf.Bytes(), 0o600)

	fmt.Fprintf(w, "\nSummary\n")
	items := "alerts"
	if sourcetype == "ms365:defender:incident" {
		items = "incidents"
	}
	fmt.Fprintf(w, "  %-31s %d (each update is a new version, and a new event)\n", items+" in the tenant now", len(current))
	fmt.Fprintf(w, "  events indexed in Splunk        %d\n", len(events))
	fmt.Fprintf(w, "  current versions missing        %d\n", missing)
	if sourcetype == "ms365:defender:incident" {
		fmt.Fprintf(w, "  their alerts' versions          %d (each sent once, as ms365:defender:incident:alerts; missing %d)\n", nested, nestedMissing)
	}
	fmt.Fprintf(w, "  duplicates                      %d\n", dups)
	fmt.Fprintf(w, "  API calls                       %d\n", apiCalls)
	fmt.Fprintf(w, "  checkpoint                      %s (watermark %s)\n", cpPath, ps.Watermark.Format(time.RFC3339))
	fmt.Fprintf(w, "\nTwo events as Splunk indexed them (sourcetype %s):\n", sourcetype)
	for i, e := range events {
		if i != 0 && i != len(events)-1 {
			continue
		}
		fmt.Fprintf(w, "\n  _time=%s host=%s source=%s sourcetype=%s index=%s\n", epochToTime(e.Time), e.Host, e.Source, e.Sourcetype, or(e.Index, "main"))
		var pretty bytes.Buffer
		_ = json.Indent(&pretty, e.Raw, "  ", "  ")
		lines := strings.Split(pretty.String(), "\n")
		if len(lines) > 24 {
			lines = append(lines[:24], fmt.Sprintf("  … (%d more lines: evidence, comments)", len(lines)-24))
		}
		fmt.Fprintf(w, "  %s\n", strings.Join(lines, "\n"))
	}
	fmt.Fprintf(w, "\nEvery indexed event is in %s\nThe collector's log is in %s\n", path, filepath.Join(dir, "defender_alerts.log"))
	if missing > 0 {
		return 1
	}
	return 0
}

func epochToTime(n json.Number) string {
	f, err := n.Float64()
	if err != nil {
		return n.String()
	}
	return time.Unix(0, int64(f*1e9)).UTC().Format("2006-01-02 15:04:05.000 UTC")
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
