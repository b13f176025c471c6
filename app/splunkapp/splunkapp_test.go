package splunkapp

import (
	"bytes"
	"context"
	"encoding/xml"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ta-defender-alerts/app/defendertest"
	"ta-defender-alerts/app/hectest"
	"ta-defender-alerts/app/splunkdtest"
)

var update = flag.Bool("update", false, "rewrite golden files")

const (
	tenant     = "6c2a4e1b-3f0d-4a8e-9b7c-2d5e8f1a0b3c"
	client     = "0f9e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f"
	secretV    = "Zx8Q~s3cr3t.Value_for-tests"
	sessionKey = "Sz3ssion-Key-from-splunkd"
	hecToken   = "8a3f2b1c-4d5e-6f70-8192-a3b4c5d6e7f8"
)

func TestSchemeGolden(t *testing.T) {
	var b bytes.Buffer
	if err := WriteScheme(&b); err != nil {
		t.Fatal(err)
	}
	const golden = "testdata/scheme.golden"
	if *update {
		_ = os.WriteFile(golden, b.Bytes(), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Bytes(), want) {
		t.Errorf("scheme differs from %s", golden)
	}
	var s struct {
		Args []struct {
			Name     string `xml:"name,attr"`
			DataType string `xml:"data_type"`
			Desc     string `xml:"description"`
		} `xml:"endpoint>args>arg"`
	}
	if err := xml.Unmarshal(b.Bytes(), &s); err != nil || len(s.Args) != 29 {
		t.Fatalf("scheme: %v, %d args", err, len(s.Args))
	}
}

// The spec file documents exactly the scheme's arguments.
func TestSpecMatchesScheme(t *testing.T) {
	spec, err := os.ReadFile("../../README/inputs.conf.spec")
	if err != nil {
		t.Fatal(err)
	}
	var inSpec []string
	for _, line := range strings.Split(string(spec), "\n") {
		if k, _, ok := strings.Cut(line, " = "); ok && !strings.HasPrefix(line, "#") && !strings.HasPrefix(line, " ") && !strings.HasPrefix(line, "*") {
			inSpec = append(inSpec, strings.TrimSpace(k))
		}
	}
	var inScheme []string
	for _, a := range schemeArgs {
		inScheme = append(inScheme, a.Name)
	}
	if strings.Join(inSpec, ",") != strings.Join(inScheme, ",") {
		t.Errorf("spec keys %v\nscheme args %v", inSpec, inScheme)
	}
	if !strings.Contains(string(spec), "[defender_alerts://<name>]") {
		t.Error("spec lacks the stanza")
	}
}

type rig struct {
	api    *defendertest.Server
	splunk *splunkdtest.Server
	cpDir  string
}

func newRig(t *testing.T, n int) *rig { t.Helper(); return newRigWith(t, n, secretV) }

// newRigWith makes a rig whose API accepts only clientSecret.
func newRigWith(t *testing.T, n int, clientSecret string) *rig {
	t.Helper()
	home := t.TempDir()
	t.Setenv("SPLUNK_HOME", home)
	api := defendertest.New(defendertest.Options{TenantID: tenant, ClientID: client, ClientSecret: clientSecret})
	t.Cleanup(api.Close)
	now := time.Now()
	api.AddAlerts(n, func(i int) time.Time {
		return now.Add(-3 * time.Hour).Add(time.Duration(i) * time.Hour / time.Duration(max(n, 1)))
	})
	sp := splunkdtest.New(sessionKey, appName)
	t.Cleanup(sp.Close)
	// As on a Splunk host: splunkd's certificate is signed by $SPLUNK_HOME/etc/auth/cacert.pem.
	if err := sp.InstallCACert(home); err != nil {
		t.Fatal(err)
	}
	r := &rig{api: api, splunk: sp, cpDir: t.TempDir()}
	// splunkd validates an input again whenever it is saved, the masking edit included.
	sp.Validate = func(name string, params map[string]string) error {
		return validateItem(context.Background(), sp.URL, sessionKey, name, appName, params, r.cpDir)
	}
	return r
}

func (r *rig) params(extra map[string]string) map[string]string {
	p := map[string]string{"tenant_id": tenant, "client_id": client, "client_secret": secretV,
		"api_url": r.api.URL, "login_url": r.api.URL, "index": "default", "interval": "300", "host": "sh1", "start": "1d"}
	for k, v := range extra {
		p[k] = v
	}
	return p
}

func inputDoc(serverURI, key, cpDir string, params map[string]string) string {
	return namedInputDoc(serverURI, key, cpDir, "tenant1", params)
}

// namedInputDoc is the input XML splunkd sends for the input [defender_alerts://<name>].
func namedInputDoc(serverURI, key, cpDir, name string, params map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?><input><server_host>sh1</server_host><server_uri>%s</server_uri><session_key>%s</session_key><checkpoint_dir>%s</checkpoint_dir><configuration><stanza name="`, serverURI, key, cpDir)
	_ = xml.EscapeText(&b, []byte(Scheme+"://"+name))
	fmt.Fprintf(&b, `" app="%s">`, appName)
	for k, v := range params {
		b.WriteString(`<param name="` + k + `">`)
		_ = xml.EscapeText(&b, []byte(v))
		b.WriteString(`</param>`)
	}
	b.WriteString(`</stanza></configuration></input>`)
	return b.String()
}

func streamEvents(t *testing.T, out []byte) []string {
	t.Helper()
	return namedStreamEvents(t, "tenant1", out)
}

func namedStreamEvents(t *testing.T, name string, out []byte) []string {
	t.Helper()
	var doc struct {
		Events []struct {
			Stanza     string `xml:"stanza,attr"`
			Sourcetype string `xml:"sourcetype"`
			Data       string `xml:"data"`
		} `xml:"event"`
	}
	if err := xml.Unmarshal(out, &doc); err != nil && len(out) > 0 {
		t.Fatalf("stdout is not a stream: %v\n%s", err, out[:min(len(out), 300)])
	}
	var data []string
	for _, e := range doc.Events {
		if e.Stanza != Scheme+"://"+name || e.Sourcetype != "ms:defender:atp:alerts" {
			t.Fatalf("event metadata %q %q", e.Stanza, e.Sourcetype)
		}
		data = append(data, e.Data)
	}
	return data
}

func TestRunStoresSecretsAndStreams(t *testing.T) {
	r := newRig(t, 250)
	params := r.params(nil)
	r.splunk.SetInput(Scheme, "tenant1", params)
	var out, errb bytes.Buffer
	if code := Run(context.Background(), strings.NewReader(inputDoc(r.splunk.URL, sessionKey, r.cpDir, params)), &out, &errb); code != 0 {
		t.Fatalf("run: %d\n%s", code, errb.String())
	}
	if ev := streamEvents(t, out.Bytes()); len(ev) != 250 || !strings.Contains(ev[0], `"evidence"`) {
		t.Fatalf("%d events", len(ev))
	}
	if got := r.splunk.Passwords()[realm+"|tenant1/client_secret"]; got != secretV {
		t.Errorf("stored secret %q", got)
	}
	if got := r.splunk.Input(Scheme, "tenant1")["client_secret"]; got != mask {
		t.Errorf("input still holds %q, want the mask", got)
	}
	for _, line := range strings.Split(strings.TrimSpace(errb.String()), "\n") {
		if !strings.HasPrefix(line, "INFO ") && !strings.HasPrefix(line, "DEBUG ") {
			t.Errorf("log line without a level prefix, or not INFO: %q", line)
		}
	}
	if strings.Contains(errb.String()+out.String(), secretV) || strings.Contains(errb.String(), sessionKey) {
		t.Error("a secret reached stdout or stderr")
	}
	// The next run: the field is masked, the secret comes from storage, only new versions go.
	r.api.Update(7)
	masked := r.params(map[string]string{"client_secret": mask})
	out.Reset()
	errb.Reset()
	if code := Run(context.Background(), strings.NewReader(inputDoc(r.splunk.URL, sessionKey, r.cpDir, masked)), &out, &errb); code != 0 {
		t.Fatalf("second run: %d\n%s", code, errb.String())
	}
	if ev := streamEvents(t, out.Bytes()); len(ev) != 7 {
		t.Errorf("second run sent %d events, want the 7 updated", len(ev))
	}
}

func TestRunRefusesWhenSecretsCannotBeStored(t *testing.T) {
	r := newRig(t, 10)
	r.splunk.FailStore = true
	var out, errb bytes.Buffer
	code := Run(context.Background(), strings.NewReader(inputDoc(r.splunk.URL, sessionKey, r.cpDir, r.params(nil))), &out, &errb)
	if code == 0 || !strings.Contains(errb.String(), "ERROR client_secret could not be stored") || !strings.Contains(errb.String(), "capability") {
		t.Fatalf("exit %d, log:\n%s", code, errb.String())
	}
	if len(streamEvents(t, out.Bytes())) != 0 || r.api.Stats().APICalls != 0 {
		t.Error("the input ran with its secret in plain text")
	}
}

func TestLongCertificateIsStoredInParts(t *testing.T) {
	pemDoc, cert, err := defendertest.SelfSigned(time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, 5)
	r.api.Close()
	r.api = defendertest.New(defendertest.Options{TenantID: tenant, ClientID: client, Certificate: cert})
	t.Cleanup(r.api.Close)
	r.api.AddAlerts(5, func(int) time.Time { return time.Now().Add(-time.Hour) })
	params := r.params(map[string]string{"client_secret": "", "certificate": string(pemDoc)})
	r.splunk.SetInput(Scheme, "tenant1", params)
	var out, errb bytes.Buffer
	if code := Run(context.Background(), strings.NewReader(inputDoc(r.splunk.URL, sessionKey, r.cpDir, params)), &out, &errb); code != 0 {
		t.Fatalf("run: %d\n%s", code, errb.String())
	}
	stored := r.splunk.Passwords()
	var joined strings.Builder
	for i := 1; ; i++ {
		part, ok := stored[fmt.Sprintf("%s|tenant1/certificate#%d", realm, i)]
		if !ok {
			break
		}
		if len(part) > 255 {
			t.Errorf("part %d has %d characters", i, len(part))
		}
		joined.WriteString(part)
	}
	if joined.String() != strings.TrimSpace(string(pemDoc)) {
		t.Errorf("parts do not join to the PEM (%d of %d characters)", joined.Len(), len(pemDoc))
	}
	if got := len(streamEvents(t, out.Bytes())); got != 5 {
		t.Errorf("%d events", got)
	}
}

func TestRunToHEC(t *testing.T) {
	r := newRig(t, 40)
	h := hectest.New(hectest.Options{Token: hecToken, Ack: true})
	defer h.Close()
	params := r.params(map[string]string{"output": "hec", "hec_url": h.URL, "hec_token": hecToken, "index": "security"})
	r.splunk.SetInput(Scheme, "tenant1", params)
	var out, errb bytes.Buffer
	if code := Run(context.Background(), strings.NewReader(inputDoc(r.splunk.URL, sessionKey, r.cpDir, params)), &out, &errb); code != 0 {
		t.Fatalf("run: %d\n%s", code, errb.String())
	}
	if st := h.Stats(); st.Distinct != 40 || h.Events()[0].Index != "security" {
		t.Errorf("HEC indexed %d", st.Distinct)
	}
	if r.splunk.Passwords()[realm+"|tenant1/hec_token"] != hecToken || r.splunk.Input(Scheme, "tenant1")["hec_token"] != mask {
		t.Error("the HEC token was not moved to storage")
	}
}

func TestValidate(t *testing.T) {
	r := newRig(t, 1)
	_ = os.MkdirAll(filepath.Join(os.Getenv("SPLUNK_HOME"), "etc", "apps", appName), 0o700)
	tests := []struct {
		name   string
		params map[string]string
		want   string // "" = valid
	}{
		{"valid", nil, ""},
		{"bad tenant", map[string]string{"tenant_id": "not-a-tenant!"}, "tenant_id"},
		{"unknown cloud", map[string]string{"cloud": "azure-china"}, "cloud"},
		{"bad duration", map[string]string{"start": "forever"}, "start"},
		{"bad log level", map[string]string{"log_level": "loud"}, `log_level: "loud" must be debug, info, warn or error`},
		{"hec url not http", map[string]string{"output": "hec", "hec_url": "ftp://x", "hec_token": "t"}, "hec_url"},
		{"wrong secret", map[string]string{"client_secret": "wrong"}, "Secret ID"},
		// A login endpoint that does not answer is the network's fault, not the settings'.
		{"token endpoint unreachable", map[string]string{"login_url": "http://127.0.0.1:1"}, ""},
		{"masked, not stored", map[string]string{"client_secret": mask}, "no stored value"},
		{"certificate outside the app", map[string]string{"client_secret": "", "certificate": "../../../etc/passwd"}, "inside this app's folder"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := fmt.Sprintf(`<items><server_host>sh1</server_host><server_uri>%s</server_uri><session_key>%s</session_key><checkpoint_dir>%s</checkpoint_dir><item name="tenant1">`, r.splunk.URL, sessionKey, r.cpDir)
			for k, v := range r.params(tt.params) {
				doc += `<param name="` + k + `">` + v + `</param>`
			}
			doc += `</item></items>`
			var out bytes.Buffer
			code := Validate(context.Background(), strings.NewReader(doc), &out)
			if tt.want == "" {
				if code != 0 {
					t.Fatalf("rejected: %s", out.String())
				}
				return
			}
			var e struct {
				Message string `xml:"message"`
			}
			if code == 0 || xml.Unmarshal(out.Bytes(), &e) != nil || !strings.Contains(e.Message, tt.want) {
				t.Errorf("exit %d, %s; want a message with %q", code, out.String(), tt.want)
			}
		})
	}
}

// The loopback splunkd's certificate does not verify (here: no cacert.pem): the run warns
// once, in splunkd.log's format, and goes on: secrets stored and masked, events sent.
func TestRunWarnsOnceWhenSplunkdIsUnverified(t *testing.T) {
	r := newRig(t, 5)
	if err := os.Remove(filepath.Join(os.Getenv("SPLUNK_HOME"), "etc", "auth", "cacert.pem")); err != nil {
		t.Fatal(err)
	}
	params := r.params(nil)
	r.splunk.SetInput(Scheme, "tenant1", params)
	code, ev, log := r.run(t, "tenant1", params)
	if code != 0 || len(ev) != 5 {
		t.Fatalf("exit %d, %d events\n%s", code, len(ev), log)
	}
	var warns []string
	for _, line := range strings.Split(log, "\n") {
		if strings.HasPrefix(line, "WARN ") {
			warns = append(warns, line)
		}
	}
	if len(warns) != 1 || !strings.Contains(warns[0], "could not be verified") || !strings.Contains(warns[0], "cacert.pem") {
		t.Errorf("want one warning naming cacert.pem, got %q", warns)
	}
	if r.splunk.Input(Scheme, "tenant1")["client_secret"] != mask {
		t.Error("the secret was not masked")
	}
	if strings.Contains(log, sessionKey) || strings.Contains(log, secretV) {
		t.Error("a secret reached the log")
	}
}
