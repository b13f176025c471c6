package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"ta-defender-alerts/app/config"
	"ta-defender-alerts/app/defendertest"
	"ta-defender-alerts/app/hectest"
	"ta-defender-alerts/app/splunkdtest"
)

// TestMain lets the test binary run as the real program (for crash and signal tests).
func TestMain(m *testing.M) {
	if os.Getenv("DEFENDER_ALERTS_BE_MAIN") == "1" {
		main()
		return
	}
	// collect sets GOMAXPROCS to one per feed (app/procs); tests that call it here keep the
	// test process's own, and the processes they start (w.env) the product's default.
	if _, set := os.LookupEnv("GOMAXPROCS"); !set {
		os.Setenv("GOMAXPROCS", strconv.Itoa(runtime.GOMAXPROCS(0)))
		testsOwnProcs = true
	}
	os.Exit(m.Run())
}

// testsOwnProcs: TestMain set GOMAXPROCS for this process alone.
var testsOwnProcs bool

const (
	tenant   = "6c2a4e1b-3f0d-4a8e-9b7c-2d5e8f1a0b3c"
	client   = "0f9e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f"
	secretV  = "Zx8Q~s3cr3t.Value_for-tests"
	hecToken = "8a3f2b1c-4d5e-6f70-8192-a3b4c5d6e7f8"
)

type world struct {
	api   *defendertest.Server
	hec   *hectest.Server
	state string
	extra []string         // more environment
	clock func() time.Time // the API's clock
}

// now is the API's time: what is current is judged on its clock.
func (w *world) now() time.Time {
	if w.clock != nil {
		return w.clock()
	}
	return time.Now()
}

func newWorld(t *testing.T, n int, ack bool) *world {
	return newWorldOpts(t, n, ack, defendertest.Options{})
}

func newWorldOpts(t *testing.T, n int, ack bool, opt defendertest.Options) *world {
	t.Helper()
	opt.TenantID, opt.ClientID, opt.ClientSecret = tenant, client, secretV
	api := defendertest.New(opt)
	t.Cleanup(api.Close)
	now := time.Now()
	api.AddAlerts(n, func(i int) time.Time {
		return now.Add(-23 * time.Hour).Add(time.Duration(i) * 22 * time.Hour / time.Duration(n))
	})
	h := hectest.New(hectest.Options{Token: hecToken, Ack: ack, Key: anyVersionKey})
	t.Cleanup(h.Close)
	return &world{api: api, hec: h, state: t.TempDir(), clock: opt.Now}
}

func (w *world) env() []string {
	env := []string{"DEFENDER_ALERTS_BE_MAIN=1"}
	for _, e := range os.Environ() {
		if testsOwnProcs && strings.HasPrefix(e, "GOMAXPROCS=") {
			continue
		}
		if !strings.HasPrefix(e, "DEFENDER_") && !strings.HasPrefix(e, "HTTPS_PROXY") && !strings.HasPrefix(e, "HTTP_PROXY") {
			env = append(env, e)
		}
	}
	env = append(env,
		"DEFENDER_TENANT_ID="+tenant, "DEFENDER_CLIENT_ID="+client, "DEFENDER_CLIENT_SECRET="+secretV,
		"DEFENDER_API_URL="+w.api.URL, "DEFENDER_LOGIN_URL="+w.api.URL,
		"DEFENDER_HEC_URL="+w.hec.URL, "DEFENDER_HEC_TOKEN="+hecToken, "DEFENDER_HEC_ACK_INTERVAL=20ms",
		"DEFENDER_STATE_DIR="+w.state, "DEFENDER_INPUT=tenant1", "DEFENDER_LOG_LEVEL=debug", "DEFENDER_INTERVAL=1s")
	return append(env, w.extra...)
}

func (w *world) start(t *testing.T, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = w.env()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &out
}

func (w *world) lost() int {
	n := 0
	for id, v := range w.api.Current(w.now()) {
		if w.hec.Count(id+"@"+defendertest.FormatTime(v.LastUpdate)) == 0 {
			n++
		}
	}
	return n
}

func TestSIGTERMExitsZeroAndCommits(t *testing.T) {
	w := newWorld(t, 20000, true)
	cmd, out := w.start(t, "run")
	deadline := time.Now().Add(30 * time.Second)
	for w.hec.Stats().Indexed < 3000 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, out)
	}
	if el := time.Since(start); el > 8*time.Second {
		t.Errorf("took %v to stop", el)
	}
	if !strings.Contains(out.String(), "stopped") {
		t.Errorf("no stop message:\n%s", out)
	}
	cmd, out = w.start(t, "run", "--once")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("run after SIGTERM: %v\n%s", err, out)
	}
	if lost := w.lost(); lost > 0 {
		t.Errorf("%d lost", lost)
	}
	t.Logf("duplicates after SIGTERM and restart: %d", w.hec.Stats().Duplicates)
}

func TestCorruptCheckpointStopsTheProgram(t *testing.T) {
	w := newWorld(t, 10, false)
	path := filepath.Join(w.state, "tenant1.json")
	if err := os.WriteFile(path, []byte("{oops"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd, out := w.start(t, "run", "--once")
	err := cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); err == nil || code != 1 {
		t.Fatalf("exit %d (%v), want 1\n%s", code, err, out)
	}
	if !strings.Contains(out.String(), path) || !strings.Contains(out.String(), "corrupt") {
		t.Errorf("message does not name the file:\n%s", out)
	}
	if b, _ := os.ReadFile(path); string(b) != "{oops" {
		t.Error("the checkpoint was changed")
	}
}

func TestCheck(t *testing.T) {
	w := newWorld(t, 5, true)
	var out, errb bytes.Buffer
	for _, kv := range w.env()[1:] {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "DEFENDER_") {
			t.Setenv(k, v)
		}
	}
	if code := run(context.Background(), []string{"check"}, nil, &out, &errb); code != 0 {
		t.Fatalf("check: %d\n%s%s", code, out.String(), errb.String())
	}
	for _, want := range []string{"✓ configuration", "✓ endpoint-alerts: Entra ID token", "✓ endpoint-alerts: Defender Alert API", "✓ HEC at"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("missing %q in:\n%s", want, out.String())
		}
	}
	t.Setenv("DEFENDER_CLIENT_SECRET", "wrong")
	t.Setenv("DEFENDER_HEC_TOKEN", "11111111-2222-3333-4444-555555555555")
	out.Reset()
	if code := run(context.Background(), []string{"check"}, nil, &out, &errb); code != 1 {
		t.Fatalf("check with bad secrets: exit %d", code)
	}
	for _, want := range []string{"✗ endpoint-alerts: Entra ID token", "Secret ID", "✗ HEC token", "not valid"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("missing %q in:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "11111111-2222-3333-4444-555555555555") {
		t.Error("check printed the HEC token")
	}
}

func TestNoArguments(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), nil, strings.NewReader(""), &out, &errb); code == 0 || !strings.Contains(errb.String(), "defender_alerts run") {
		t.Errorf("empty stdin: exit %d, %q", code, errb.String())
	}
}

func TestDemo(t *testing.T) {
	for _, feed := range config.FeedNames() {
		t.Run(feed, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), []string{"demo", "--duration", "3s", "-feed", feed}, nil, &out, &errb)
			if code != 0 {
				t.Fatalf("demo exit %d\n%s%s", code, out.String(), errb.String())
			}
			wants := []string{"current versions missing        0", "duplicates                      0", "sourcetype=" + config.FeedSourcetype(feed), "events.jsonl"}
			if n := config.FeedNestedSourcetype(feed); n != "" {
				wants = append(wants, "sent once, as "+n+"; missing 0)")
			}
			for _, want := range wants {
				if !strings.Contains(out.String(), want) {
					t.Errorf("demo output lacks %q:\n%s", want, out.String())
				}
			}
		})
	}
}

// The binary as splunkd runs it: --scheme, --validate-arguments with items on stdin, and no
// arguments with the input configuration on stdin.
func TestAsSplunkdRunsIt(t *testing.T) {
	w := newWorld(t, 30, false)
	sp := splunkdtest.New("session-key-1", "TA-defender-alerts")
	defer sp.Close()
	home := t.TempDir()
	if err := sp.InstallCACert(home); err != nil { // as on a Splunk host: splunkd's CA in etc/auth/cacert.pem
		t.Fatal(err)
	}
	exe := func(stdin string, args ...string) (string, string, int) {
		cmd := exec.Command(os.Args[0], args...)
		cmd.Env = []string{"DEFENDER_ALERTS_BE_MAIN=1", "SPLUNK_HOME=" + home, "PATH=" + os.Getenv("PATH")}
		cmd.Stdin = strings.NewReader(stdin)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		_ = cmd.Run()
		return out.String(), errb.String(), cmd.ProcessState.ExitCode()
	}
	out, _, code := exe("", "--scheme")
	golden, err := os.ReadFile("../../splunkapp/testdata/scheme.golden")
	if err != nil || code != 0 || out != string(golden) {
		t.Fatalf("--scheme: exit %d, differs from the golden file: %v", code, err)
	}
	params := fmt.Sprintf(`<param name="tenant_id">%s</param><param name="client_id">%s</param><param name="client_secret">%s</param><param name="api_url">%s</param><param name="login_url">%s</param><param name="index">default</param>`,
		tenant, client, secretV, w.api.URL, w.api.URL)
	items := fmt.Sprintf(`<items><server_uri>%s</server_uri><session_key>session-key-1</session_key><checkpoint_dir>%s</checkpoint_dir><item name="tenant1">%s</item></items>`, sp.URL, w.state, params)
	if out, _, code := exe(items, "--validate-arguments"); code != 0 {
		t.Fatalf("valid settings refused: %s", out)
	}
	badItems := strings.Replace(items, `<param name="client_id">`+client, `<param name="client_id">not-a-guid`, 1)
	if out, _, code := exe(badItems, "--validate-arguments"); code == 0 || !strings.Contains(out, "<error><message>client_id") {
		t.Errorf("a bad client id: exit %d, %s", code, out)
	}
	sp.SetInput("defender_alerts", "tenant1", map[string]string{"tenant_id": tenant, "client_id": client, "client_secret": secretV, "api_url": w.api.URL, "login_url": w.api.URL})
	input := fmt.Sprintf(`<input><server_host>sh1</server_host><server_uri>%s</server_uri><session_key>session-key-1</session_key><checkpoint_dir>%s</checkpoint_dir><configuration><stanza name="defender_alerts://tenant1" app="TA-defender-alerts">%s</stanza></configuration></input>`, sp.URL, w.state, params)
	out, errOut, code := exe(input)
	if code != 0 || strings.Count(out, "<event ") != 30 || !strings.HasPrefix(out, "<stream>") {
		t.Fatalf("run: exit %d, %d events\n%s", code, strings.Count(out, "<event "), errOut)
	}
	if sp.Input("defender_alerts", "tenant1")["client_secret"] != "********" {
		t.Error("the secret was not masked in the input")
	}
	for _, line := range strings.Split(strings.TrimSpace(errOut), "\n") {
		if !strings.HasPrefix(line, "INFO ") {
			t.Errorf("log line %q", line)
		}
	}
}

// The daemon stops for what a person must fix, and says what: here a wrong client secret.
// (What clears by itself is ridden out: see TestFaultDefender and bridge.TestNeedsFix.)
func TestDaemonStopsForAWrongSecret(t *testing.T) {
	w := newWorld(t, 10, false)
	w.extra = []string{"DEFENDER_CLIENT_SECRET=not-the-secret"}
	cmd, out := w.start(t, "run")
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("the daemon kept running with a wrong secret:\n%s", out)
	}
	if code := cmd.ProcessState.ExitCode(); code != 1 {
		t.Errorf("exit %d, want 1\n%s", code, out)
	}
	if s := out.String(); !strings.Contains(s, "needs a fix") || !strings.Contains(s, "client secret") || strings.Contains(s, "not-the-secret") {
		t.Errorf("the message does not say what to fix, or shows the secret:\n%s", s)
	}
}
