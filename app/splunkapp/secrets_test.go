package splunkapp

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"ta-defender-alerts/app/defendertest"
)

// run runs the input name once, as splunkd would with params in its stanza.
func (r *rig) run(t *testing.T, name string, params map[string]string) (code int, events []string, log string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Run(context.Background(), strings.NewReader(namedInputDoc(r.splunk.URL, sessionKey, r.cpDir, name, params)), &out, &errb)
	return code, namedStreamEvents(t, name, out.Bytes()), errb.String()
}

// stored returns the realm's stored values for user and for its numbered parts (user#N).
func (r *rig) stored(user string) (whole string, hasWhole bool, parts map[string]string) {
	parts = map[string]string{}
	for k, v := range r.splunk.Passwords() {
		u, ok := strings.CutPrefix(k, realm+"|")
		if !ok {
			continue
		}
		if u == user {
			whole, hasWhole = v, true
		} else if n, ok := strings.CutPrefix(u, user+"#"); ok && n != "" && strings.Trim(n, "0123456789") == "" {
			parts[u] = v
		}
	}
	return whole, hasWhole, parts
}

// An admin changes the secret in the UI by typing the new one over the mask: the stanza then
// holds the new secret in plain text. The run stores it, removes the old value (whole or in
// parts), masks the field again, and the next run logs in with the new secret (the API
// accepts no other).
func TestSecretRotatedOverTheMask(t *testing.T) {
	const newSecret = "Nw7Q~r0tated.Value_after-expiry"
	oldLong := strings.Repeat("old-secret-part-", 40) // 640 characters: three parts
	tests := []struct {
		name string
		seed map[string]string // user → value, stored by an earlier run
	}{
		{"old value whole", map[string]string{"tenant1/client_secret": secretV}},
		{"old value in parts", map[string]string{"tenant1/client_secret#1": oldLong[:255], "tenant1/client_secret#2": oldLong[255:510], "tenant1/client_secret#3": oldLong[510:]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRigWith(t, 20, newSecret)
			for u, v := range tt.seed {
				r.splunk.SetPassword(realm, u, v)
			}
			typed := r.params(map[string]string{"client_secret": newSecret})
			r.splunk.SetInput(Scheme, "tenant1", typed)
			code, ev, log := r.run(t, "tenant1", typed)
			if code != 0 || len(ev) != 20 {
				t.Fatalf("run after the rotation: exit %d, %d events\n%s", code, len(ev), log)
			}
			whole, ok, parts := r.stored("tenant1/client_secret")
			if !ok || whole != newSecret {
				t.Errorf("stored secret %q (present %v), want the new one", whole, ok)
			}
			if len(parts) != 0 {
				t.Errorf("old parts left in storage: %v", parts)
			}
			if got := r.splunk.Input(Scheme, "tenant1")["client_secret"]; got != mask {
				t.Errorf("inputs.conf holds %q, want the mask", got)
			}
			if strings.Contains(log, newSecret) || strings.Contains(log, secretV) || strings.Contains(log, "old-secret") || strings.Contains(log, sessionKey) {
				t.Errorf("a secret reached the log:\n%s", log)
			}

			r.api.UpdateAt(r.api.IDs()[:3], time.Now())
			code, ev, log = r.run(t, "tenant1", r.params(map[string]string{"client_secret": mask}))
			if code != 0 || len(ev) != 3 {
				t.Fatalf("next run, masked: exit %d, %d events (want the 3 updated)\n%s", code, len(ev), log)
			}
		})
	}
}

// A certificate typed over the mask, shorter than the one stored in parts before: the parts
// are rewritten in place (an update of an entity whose name holds "/" and "#"), the extra
// ones deleted.
func TestCertificateRotatedOverTheMask(t *testing.T) {
	pemDoc, cert, err := defendertest.SelfSigned(time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	newPEM := strings.TrimSpace(string(pemDoc))
	r := newRig(t, 5)
	r.api.Close()
	r.api = defendertest.New(defendertest.Options{TenantID: tenant, ClientID: client, Certificate: cert})
	t.Cleanup(r.api.Close)
	r.api.AddAlerts(5, func(int) time.Time { return time.Now().Add(-time.Hour) })
	n := (len(newPEM) + maxPart - 1) / maxPart
	for i := 1; i <= n+2; i++ {
		r.splunk.SetPassword(realm, fmt.Sprintf("tenant1/certificate#%d", i), strings.Repeat("x", maxPart))
	}
	typed := r.params(map[string]string{"client_secret": "", "certificate": string(pemDoc)})
	r.splunk.SetInput(Scheme, "tenant1", typed)
	code, ev, log := r.run(t, "tenant1", typed)
	if code != 0 || len(ev) != 5 {
		t.Fatalf("exit %d, %d events\n%s", code, len(ev), log)
	}
	_, hasWhole, parts := r.stored("tenant1/certificate")
	var joined strings.Builder
	for i := 1; i <= len(parts); i++ {
		joined.WriteString(parts[fmt.Sprintf("tenant1/certificate#%d", i)])
	}
	if hasWhole || len(parts) != n || joined.String() != newPEM {
		t.Errorf("whole %v, %d parts (want %d), joined equal to the new PEM: %v", hasWhole, len(parts), n, joined.String() == newPEM)
	}
	if got := r.splunk.Input(Scheme, "tenant1")["certificate"]; got != mask {
		t.Errorf("inputs.conf holds the certificate, want the mask (%d characters)", len(got))
	}
}

// Input names splunkd accepts that a URL path must escape: each is stored, masked, and runs
// again from storage.
func TestInputNamesNeedingEscapes(t *testing.T) {
	for _, name := range []string{"Contoso Prod", "emea/prod", "100%", "t#1", "why?", "a b/c%2Fd#1?e"} {
		t.Run(name, func(t *testing.T) {
			r := newRig(t, 5)
			params := r.params(nil)
			r.splunk.SetInput(Scheme, name, params)
			code, ev, log := r.run(t, name, params)
			if code != 0 || len(ev) != 5 {
				t.Fatalf("exit %d, %d events\n%s", code, len(ev), log)
			}
			if got := r.splunk.Passwords()[realm+"|"+name+"/client_secret"]; got != secretV {
				t.Errorf("stored under %q: %q", name+"/client_secret", got)
			}
			if got := r.splunk.Input(Scheme, name)["client_secret"]; got != mask {
				t.Errorf("inputs.conf holds %q, want the mask", got)
			}
			r.api.UpdateAt(r.api.IDs()[:2], time.Now())
			if code, ev, log := r.run(t, name, r.params(map[string]string{"client_secret": mask})); code != 0 || len(ev) != 2 {
				t.Fatalf("masked run: exit %d, %d events\n%s", code, len(ev), log)
			}
		})
	}
}

// Clearing the old parts of input "a" deletes "a/client_secret#<digits>" and nothing else:
// not the secrets of inputs whose names merely start alike, nor another realm's.
func TestSecretCleanupStaysInItsInput(t *testing.T) {
	const newSecret = "Nw7Q~r0tated.Value_after-expiry"
	r := newRigWith(t, 5, newSecret)
	neighbours := []string{"a#b", "a2", "a#1", "a/client_secret#b", "a/client_secret#1x", "a/client_secret#"}
	for _, n := range neighbours {
		r.splunk.SetPassword(realm, n+"/client_secret", "neighbour "+n)
	}
	r.splunk.SetPassword("other-app", "a/client_secret#1", "another realm")
	r.splunk.SetPassword(realm, "a/client_secret#1", strings.Repeat("o", maxPart))
	r.splunk.SetPassword(realm, "a/client_secret#2", "old")
	typed := r.params(map[string]string{"client_secret": newSecret})
	r.splunk.SetInput(Scheme, "a", typed)
	if code, _, log := r.run(t, "a", typed); code != 0 {
		t.Fatalf("exit %d\n%s", code, log)
	}
	got := r.splunk.Passwords()
	for _, n := range neighbours {
		if v := got[realm+"|"+n+"/client_secret"]; v != "neighbour "+n {
			t.Errorf("input %q's secret: %q, want it untouched", n, v)
		}
	}
	if got["other-app|a/client_secret#1"] != "another realm" {
		t.Error("another realm's entry was deleted")
	}
	if _, ok := got[realm+"|a/client_secret#1"]; ok {
		t.Error("input a's old part #1 is still stored")
	}
	if _, ok := got[realm+"|a/client_secret#2"]; ok {
		t.Error("input a's old part #2 is still stored")
	}
	if got[realm+"|a/client_secret"] != newSecret {
		t.Error("input a's new secret is not stored")
	}
}

// A proxy URL with credentials goes to storage whether or not it parses: a password with an
// unescaped '%', '#', '/' or '?' must not stay in inputs.conf because url.Parse chokes on it.
func TestProxyCredentialsAreSecretEvenUnparsed(t *testing.T) {
	for _, v := range []string{
		"http://alice:p%ss@proxy:3128", "http://alice:p#ss@proxy:3128", "http://alice:p/ss@proxy:3128",
		"http://alice:p?ss@proxy:3128", "http://alice:secret@proxy:3128", "alice:pw@proxy:3128",
	} {
		if !isSecret("proxy_url", v) {
			t.Errorf("isSecret(proxy_url, %q) = false: the password would stay in inputs.conf", v)
		}
	}
	for _, v := range []string{"http://proxy:3128", ""} {
		if isSecret("proxy_url", v) {
			t.Errorf("isSecret(proxy_url, %q) = true, want false", v)
		}
	}
}

// The input reads its own secrets only: splunkd hands it the clear password of no entry but
// its own input's (realm TA-defender-alerts, user <input>/<field>[#part]), neither other
// apps' and realms' (one named like ours among them) nor another input's of this app, on the
// run that stores its secrets nor on the runs that read them back, whole or in parts.
func TestSecretsReadOnlyTheInputsOwn(t *testing.T) {
	r := newRig(t, 5)
	others := map[[2]string]string{
		{"Splunk_TA_microsoft-cloudservices", "azure/client_secret"}: "other app's secret",
		{realm + "-old", "tenant1/client_secret"}:                    "a realm named like ours",
		{"", "admin"}:                    "no realm",
		{realm, "tenant2/client_secret"}: "another input's secret",
		{realm, "tenant2/certificate#1"}: "another input's part",
	}
	for k, v := range others {
		r.splunk.SetPassword(k[0], k[1], v)
	}
	// An earlier run stored a proxy password in parts.
	proxy := "http://alice:" + strings.Repeat("p", 300) + "@127.0.0.1:1"
	r.splunk.SetPassword(realm, "tenant1/proxy_url#1", proxy[:maxPart])
	r.splunk.SetPassword(realm, "tenant1/proxy_url#2", proxy[maxPart:])

	params := r.params(map[string]string{"proxy_url": mask})
	r.splunk.SetInput(Scheme, "tenant1", params)
	// (Calls to the stand-in API on loopback bypass the proxy.)
	if code, ev, log := r.run(t, "tenant1", params); code != 0 || len(ev) != 5 {
		t.Fatalf("first run: exit %d, %d events\n%s", code, len(ev), log)
	}
	r.api.UpdateAt(r.api.IDs(), time.Now())
	code, ev, log := r.run(t, "tenant1", r.params(map[string]string{"client_secret": mask}))
	if code != 0 || len(ev) != 5 {
		t.Fatalf("run from stored secrets: exit %d, %d events\n%s", code, len(ev), log)
	}
	served := r.splunk.ServedEntries()
	for _, want := range []string{"tenant1/proxy_url#1", "tenant1/proxy_url#2", "tenant1/client_secret"} {
		if !slices.Contains(served, realm+"|"+want) {
			t.Errorf("%s was not read back from storage (read: %q)", want, served)
		}
	}
	for _, e := range served {
		if !strings.HasPrefix(e, realm+"|tenant1/") {
			t.Errorf("splunkd handed the input %q", e)
		}
	}
	for _, c := range r.splunk.Calls {
		if strings.HasPrefix(c, "GET ") && strings.HasSuffix(c, "/storage/passwords") {
			t.Errorf("the input listed storage/passwords: %q", c)
		}
	}
}
