package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"ta-defender-alerts/app/splunkdtest"
)

// The health dashboard (default/data/ui/views) and the saved searches (default/savedsearches.conf)
// read the collector's own log lines. TestDashboardFieldsAreLogged runs the real collector, the
// modular input and the daemon, through a throttle, a HEC retry, a re-send, a dead letter and an
// error that needs a fix, takes the lines it writes (the modular input's as splunkd.log holds
// them), extracts fields from them as Splunk's automatic key=value extraction does, and checks
// that every field, value and phrase the searches name occurs.

const (
	dashboardFile     = "../../../default/data/ui/views/defender_alerts_health.xml"
	savedSearchesFile = "../../../default/savedsearches.conf"
	// exePath is where splunkd runs the input from; it is in every line splunkd.log holds for it.
	exePath = "/opt/splunk/etc/apps/TA-defender-alerts/linux_x86_64/bin/defender_alerts"
)

func TestDashboardFieldsAreLogged(t *testing.T) {
	lines := collectorLines(t)
	searches := append(dashboardSearches(t, mustRead(t, dashboardFile)), savedSearches(t, mustRead(t, savedSearchesFile))...)
	if len(searches) < 9 {
		t.Fatalf("%d searches found, want the dashboard's 7 and the 2 saved searches", len(searches))
	}
	// The dashboard's default reads the modular input's lines alone (splunkd.log): they must
	// carry the window's fields and the needs-fix mark themselves, not only the daemon's lines.
	var fromSplunkd []string
	for _, l := range lines {
		if strings.Contains(l, " ExecProcessor ") {
			fromSplunkd = append(fromSplunkd, l)
		}
	}
	for _, want := range []string{"input", "delivered", "dead_lettered", "resent", "calls", "lag_s", "watermark", "needs_fix", "interval_s"} {
		found := false
		for _, l := range fromSplunkd {
			found = found || len(extract(l)[want]) > 0
		}
		if !found {
			t.Errorf("no modular input line in splunkd.log carries %s", want)
		}
	}
	if problems := checkSearches(searches, lines); len(problems) > 0 {
		t.Errorf("the searches name what no log line carries:\n%s\nlines:\n%s", strings.Join(problems, "\n"), strings.Join(lines, "\n"))
	}

	// The check can fail: a search that names a field, a value or a phrase no line has.
	for _, bad := range []struct{ name, from, to string }{
		{"field", "max(lag_s)", "max(lag_seconds)"},
		{"value", "needs_fix=true", "needs_fix=yes"},
		{"phrase", `"window delivered"`, `"window committed"`},
		{"eval field", "1 + retries_not_logged", "1 + retries_unlogged"},
	} {
		var changed []search
		for _, s := range searches {
			if q := strings.ReplaceAll(s.query, bad.from, bad.to); q != s.query {
				changed = append(changed, search{s.name, q})
			}
		}
		if len(changed) == 0 {
			t.Errorf("%s: no search has %q to change", bad.name, bad.from)
			continue
		}
		if problems := checkSearches(changed, lines); len(problems) == 0 {
			t.Errorf("%s: %q in place of %q went unnoticed", bad.name, bad.to, bad.from)
		}
	}
}

// collectorLines runs the collector and returns its log lines: the modular input's as splunkd
// writes them to splunkd.log, the daemon's (text) as it writes them.
func collectorLines(t *testing.T) []string {
	oldGiveUp, oldRetry := daemonGiveUp, daemonRetryMin
	daemonGiveUp, daemonRetryMin = 2*time.Second, 100*time.Millisecond
	t.Cleanup(func() { daemonGiveUp, daemonRetryMin = oldGiveUp, oldRetry })

	w := newWorld(t, 0, true)
	now := time.Now()
	ids := w.api.AddAlerts(30, func(i int) time.Time { return now.Add(-2 * time.Hour).Add(time.Duration(i) * time.Minute) })

	// The modular input, as splunkd runs it: a run that delivers, later one that needs a fix.
	sp := splunkdtest.New("session-key-1", "TA-defender-alerts")
	t.Cleanup(sp.Close)
	home := t.TempDir()
	if err := sp.InstallCACert(home); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SPLUNK_HOME", home)
	sp.SetInput("defender_alerts", "tenant_si", map[string]string{"tenant_id": tenant, "client_id": client, "client_secret": secretV, "api_url": w.api.URL, "login_url": w.api.URL})
	input := fmt.Sprintf(`<input><server_host>sh1</server_host><server_uri>%s</server_uri><session_key>session-key-1</session_key><checkpoint_dir>%s</checkpoint_dir>`+
		`<configuration><stanza name="defender_alerts://tenant_si" app="TA-defender-alerts"><param name="tenant_id">%s</param><param name="client_id">%s</param>`+
		`<param name="client_secret">%s</param><param name="api_url">%s</param><param name="login_url">%s</param><param name="index">default</param><param name="interval">300</param></stanza></configuration></input>`,
		sp.URL, t.TempDir(), tenant, client, secretV, w.api.URL, w.api.URL)
	var splunkd []string
	modinput := func(wantCode int) {
		var out, errb bytes.Buffer
		if code := run(context.Background(), nil, strings.NewReader(input), &out, &errb); code != wantCode {
			t.Fatalf("the modular input exited %d, want %d:\n%s", code, wantCode, errb.String())
		}
		for _, l := range strings.Split(strings.TrimSpace(errb.String()), "\n") {
			splunkd = append(splunkd, splunkdLine(l))
		}
	}
	modinput(0)

	// The daemon: HEC busy at first (a retry), an alert HEC refuses (a dead letter), the API
	// throttling (a Retry-After); then new alerts whose replies are lost (a re-send); then the API
	// refusing every token (needs a fix).
	w.extra = []string{"DEFENDER_HEC_BATCH_BYTES=4096", "DEFENDER_LOG_LEVEL=info"}
	for _, kv := range w.env()[1:] {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "DEFENDER_") {
			t.Setenv(k, v)
		}
	}
	w.api.Throttle(1, time.Second)
	w.hec.SetFailures(1, 0, 0, 0)
	refused := `"id":"` + ids[15] + `"`
	w.hec.Reject(func(ev []byte) bool { return bytes.Contains(ev, []byte(refused)) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var log lockedBuffer
	exited := make(chan int, 1)
	go func() { exited <- run(ctx, []string{"run"}, nil, &log, &log) }()
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !ok() {
			select {
			case code := <-exited:
				t.Fatalf("the daemon exited %d waiting for %s:\n%s", code, what, log.String())
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %s in 30s:\n%s", what, log.String())
			}
		}
	}
	has := func(s string) func() bool { return func() bool { return strings.Contains(log.String(), s) } }
	waitFor("HEC retry", has("HEC did not take a batch"))
	w.hec.SetFailures(0, 0, 0, 0)
	waitFor("dead letter", has("dead-letter file\" input=tenant1"))
	waitFor("window delivered", has("window delivered"))

	w.hec.SetFailures(0, 0, 1, 0)
	w.api.AddAlerts(10, func(i int) time.Time { return time.Now().Add(-time.Second) })
	waitFor("a lost reply", func() bool { return w.hec.Stats().LostReply > 0 })
	w.hec.SetFailures(0, 0, 0, 0)
	resent := regexp.MustCompile(`window delivered.* resent=[1-9]`)
	waitFor("a window with alerts re-sent", func() bool { return resent.MatchString(log.String()) })

	w.api.RefuseTokens(true)
	select {
	case code := <-exited:
		if code != 1 {
			t.Fatalf("the daemon exited %d with every token refused, want 1:\n%s", code, log.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the daemon ran on with every token refused:\n%s", log.String())
	}
	modinput(1)

	daemon := strings.Split(strings.TrimSpace(log.String()), "\n")
	return append(splunkd, daemon...)
}

// splunkdLine is a line the modular input wrote to stderr as splunkd.log holds it: splunkd's
// time, the level it read from the line, the ExecProcessor component, the program's path.
func splunkdLine(l string) string {
	level, _, _ := strings.Cut(l, " ")
	return fmt.Sprintf(`12-02-2026 10:00:00.000 +0000 %-5s ExecProcessor [4242 ExecProcessorSchedulerThread] - message from "%s" %s`, level, exePath, l)
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

type search struct{ name, query string }

// dashboardSearches returns the queries of a Dashboard Studio view, its tokens replaced by their
// inputs' defaults and the time range's by values.
func dashboardSearches(t *testing.T, view string) []search {
	t.Helper()
	var x struct {
		XMLName    xml.Name `xml:"dashboard"`
		Version    string   `xml:"version,attr"`
		Definition string   `xml:"definition"`
	}
	if err := xml.Unmarshal([]byte(view), &x); err != nil || x.Version != "2" {
		t.Fatalf("the view is not a Dashboard Studio view (version 2): %v", err)
	}
	var def struct {
		Inputs map[string]struct {
			Options struct {
				Token        string `json:"token"`
				DefaultValue string `json:"defaultValue"`
			} `json:"options"`
		} `json:"inputs"`
		DataSources map[string]struct {
			Type    string `json:"type"`
			Options struct {
				Query string `json:"query"`
			} `json:"options"`
		} `json:"dataSources"`
		Visualizations map[string]struct {
			DataSources map[string]string `json:"dataSources"`
		} `json:"visualizations"`
	}
	if err := json.Unmarshal([]byte(x.Definition), &def); err != nil {
		t.Fatalf("the view's definition is not JSON: %v", err)
	}
	tokens := map[string]string{}
	for _, in := range def.Inputs {
		tokens[in.Options.Token] = in.Options.DefaultValue
	}
	used := map[string]bool{}
	for name, v := range def.Visualizations {
		for _, ds := range v.DataSources {
			if _, ok := def.DataSources[ds]; !ok {
				t.Errorf("visualization %s shows data source %s, which is not defined", name, ds)
			}
			used[ds] = true
		}
	}
	var out []search
	for name, ds := range def.DataSources {
		if ds.Type != "ds.search" {
			t.Errorf("data source %s is %s, want ds.search", name, ds.Type)
		}
		if !used[name] {
			t.Errorf("data source %s is shown by no visualization", name)
		}
		q := regexp.MustCompile(`\$([A-Za-z_][\w.]*)\$`).ReplaceAllStringFunc(ds.Options.Query, func(m string) string {
			v, ok := tokens[strings.Trim(m, "$")]
			if !ok {
				t.Errorf("data source %s uses token %s, which no input sets", name, m)
			}
			return v
		})
		out = append(out, search{"dashboard " + name, q})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// savedSearches returns the search of every stanza of savedsearches.conf (continued lines
// joined), and checks that each is disabled.
func savedSearches(t *testing.T, conf string) []search {
	t.Helper()
	conf = strings.ReplaceAll(conf, "\\\n", "\n")
	var out []search
	stanza, disabled := "", map[string]bool{}
	for _, l := range strings.Split(conf, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, "["):
			stanza = strings.Trim(l, "[]")
			disabled[stanza] = false
		case strings.HasPrefix(l, "search ="):
			out = append(out, search{"saved search " + stanza, strings.TrimSpace(strings.TrimPrefix(l, "search ="))})
		case strings.HasPrefix(l, "|") && len(out) > 0 && strings.HasSuffix(out[len(out)-1].name, stanza):
			out[len(out)-1].query += " " + l
		case l == "disabled = 1":
			disabled[stanza] = true
		}
	}
	for s, d := range disabled {
		if !d {
			t.Errorf("saved search %q is not disabled by default", s)
		}
	}
	return out
}

// logKV extracts key=value pairs as Splunk's automatic extraction (KV_MODE = auto) does: a key
// is a word before "=", its value runs to the next white space or, quoted, to the next double
// quote (a backslash does not escape one: that is KV_MODE = auto_escaped).
var logKV = regexp.MustCompile(`(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"?|[^\s"]*)`)

func extract(line string) map[string][]string {
	kv := map[string][]string{}
	for _, m := range logKV.FindAllStringSubmatch(line, -1) {
		kv[m[1]] = append(kv[m[1]], strings.Trim(m[2], `"`))
	}
	return kv
}

// splunkFields are Splunk's own: every event has them, or splunkd.log's sourcetype extracts them.
var splunkFields = set("_time", "_raw", "index", "sourcetype", "source", "host", "splunk_server", "component", "log_level")

// restFields are what | rest returns for an input.
var restFields = set("title", "interval", "disabled")

// splWords are the commands, functions, keywords and options the searches use: an identifier
// that is none of these, nor a field the search defines, must be a field some line carries.
var splWords = set("search", "rest", "eval", "where", "stats", "timechart", "chart", "convert", "table", "fields", "join",
	"by", "as", "AND", "OR", "NOT", "true", "false", "null", "type", "left", "count", "local",
	"latest", "earliest", "max", "min", "sum", "avg", "dc", "values", "round", "now", "coalesce", "tonumber", "isnull", "isnotnull",
	"if", "ctime", "span", "limit", "like", "relative_time")

func set(s ...string) map[string]bool {
	m := map[string]bool{}
	for _, x := range s {
		m[x] = true
	}
	return m
}

// checkSearches returns what the searches name that no line carries: a field, a field's value,
// a phrase or a term.
func checkSearches(searches []search, lines []string) []string {
	fields := map[string]map[string]bool{} // field → its values, lower case
	for _, l := range lines {
		for k, vs := range extract(l) {
			if fields[k] == nil {
				fields[k] = map[string]bool{}
			}
			for _, v := range vs {
				fields[k][strings.ToLower(v)] = true
			}
		}
	}
	lower := strings.ToLower(strings.Join(lines, "\n"))
	var problems []string
	for _, s := range searches {
		u := analyze(s.query)
		for _, f := range u.fields {
			if !splunkFields[f] && !(u.rest && restFields[f]) && fields[f] == nil {
				problems = append(problems, fmt.Sprintf("%s: field %s is on no line", s.name, f))
			}
		}
		for _, kv := range u.values {
			if fields[kv[0]] != nil && !fields[kv[0]][strings.ToLower(kv[1])] {
				problems = append(problems, fmt.Sprintf("%s: no line has %s=%s", s.name, kv[0], kv[1]))
			}
		}
		for _, p := range u.phrases {
			if !strings.Contains(lower, strings.ToLower(p)) {
				problems = append(problems, fmt.Sprintf("%s: no line has %q", s.name, p))
			}
		}
	}
	return problems
}

type splUse struct {
	fields  []string        // fields read that no earlier command of the search made
	defined map[string]bool // fields the search makes (eval, as, a subsearch's)
	values  [][2]string     // field=value terms of a search command
	phrases []string        // quoted phrases and bare terms of a search command
	rest    bool            // it starts with | rest
}

var (
	ident    = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*`)
	subsrch  = regexp.MustCompile(`\[([^\]]*)\]`)
	quoted   = regexp.MustCompile(`"[^"]*"`)
	callArg  = regexp.MustCompile(`[A-Za-z_]\w*\(([A-Za-z_]\w*)\)`)
	asName   = regexp.MustCompile(`\bas\s+([A-Za-z_]\w*)`)
	evalName = regexp.MustCompile(`(?:^|,)\s*([A-Za-z_]\w*)\s*=([^=])`)
	option   = regexp.MustCompile(`\b\w+=\w+`)
	term     = regexp.MustCompile(`([A-Za-z_]\w*)!?=("[^"]*"|[^\s()]*)|"([^"]*)"|[^\s()]+`)
)

// analyze reads a search the way its commands do, for what fields it reads and defines and
// what it matches in events.
func analyze(q string) splUse {
	u := splUse{defined: map[string]bool{}}
	for _, m := range subsrch.FindAllStringSubmatch(q, -1) {
		in := analyze(m[1])
		u.fields = append(u.fields, in.fields...)
		u.values = append(u.values, in.values...)
		u.phrases = append(u.phrases, in.phrases...)
		for f := range in.defined {
			u.defined[f] = true
		}
	}
	q = subsrch.ReplaceAllString(q, "")
	for i, seg := range strings.Split(q, "|") {
		seg = strings.TrimSpace(seg)
		cmd, args, _ := strings.Cut(seg, " ")
		if i == 0 && cmd != "search" {
			if seg == "" {
				continue
			}
			cmd, args = "search", seg
		}
		switch cmd {
		case "search":
			u.searchTerms(args)
		case "rest":
			u.rest = true
		case "eval":
			names := evalName.FindAllStringSubmatch(args, -1)
			u.expr(evalName.ReplaceAllString(args, ",$2"))
			for _, m := range names {
				u.defined[m[1]] = true
			}
		case "where":
			u.expr(args)
		case "stats", "timechart", "chart":
			stats, by, _ := strings.Cut(args, " by ")
			for _, m := range callArg.FindAllStringSubmatch(stats, -1) {
				u.read(m[1])
			}
			u.expr(by)
			for _, m := range asName.FindAllStringSubmatch(stats, -1) {
				u.defined[m[1]] = true
			}
		case "fillnull": // fillnull value=<v> <field>...: fills fields some lines carry
			for _, f := range strings.Fields(args) {
				if !strings.HasPrefix(f, "value=") {
					u.read(f)
				}
			}
		case "convert", "table", "fields", "join":
			u.expr(option.ReplaceAllString(args, ""))
		default:
			u.fields = append(u.fields, "(command "+cmd+", unknown to this test)")
		}
	}
	return u
}

func (u *splUse) read(f string) {
	if !u.defined[f] {
		u.fields = append(u.fields, f)
	}
}

// expr notes every identifier of an expression that is not a word of SPL as a field read.
func (u *splUse) expr(s string) {
	for _, w := range ident.FindAllString(quoted.ReplaceAllString(s, ""), -1) {
		if !splWords[w] {
			u.read(w)
		}
	}
}

// searchTerms reads a search command's terms: field=value, "phrase", bare term.
func (u *splUse) searchTerms(s string) {
	for _, m := range term.FindAllStringSubmatch(s, -1) {
		k, v := m[1], strings.Trim(m[2], `"`)
		switch {
		case k != "" && (splunkFields[k] || u.rest && restFields[k]):
		case k != "":
			u.read(k)
			if v != "*" && !u.defined[k] {
				u.values = append(u.values, [2]string{k, v})
			}
		case m[3] != "":
			u.phrases = append(u.phrases, m[3])
		case !splWords[m[0]]:
			u.phrases = append(u.phrases, m[0])
		}
	}
}
