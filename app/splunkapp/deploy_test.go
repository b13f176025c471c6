package splunkapp

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A deployment server pushes an app whose inputs.conf holds the secret in clear text. The
// input stores and masks it (in local/), but the secret comes back with every deployment (the
// stanza reads clear again) or stays in default/inputs.conf, which masking cannot change: the
// run says so, naming the field and never the value.
func TestDeploymentKeepsASecretInClearText(t *testing.T) {
	const back = "readable in its stanza again"
	const inDefault = "sit in clear text in the app's default/inputs.conf"
	r := newRig(t, 5)
	r.splunk.SetInput(Scheme, "tenant1", r.params(nil))
	r.splunk.SetInput(Scheme, "tenant2", r.params(nil))

	// First run: the secret is new. Stored and masked, no warning.
	code, _, log := r.run(t, "tenant1", r.params(nil))
	if code != 0 || strings.Contains(log, back) || strings.Contains(log, inDefault) {
		t.Fatalf("first run: exit %d, or a warning for a secret seen for the first time:\n%s", code, log)
	}

	// A deployment replaced local/: the stanza holds the stored secret in clear text again.
	code, _, log = r.run(t, "tenant1", r.params(nil))
	if code != 0 || !strings.Contains(log, back) || !strings.Contains(log, "fields=client_secret") {
		t.Fatalf("second run with the stored secret back in the stanza: exit %d, no warning naming client_secret:\n%s", code, log)
	}
	if strings.Contains(log, secretV) {
		t.Fatalf("the warning shows the secret:\n%s", log)
	}

	// The deployment app's default/inputs.conf holds it: masked in the merged stanza, clear on disk.
	dir := filepath.Join(os.Getenv("SPLUNK_HOME"), "etc", "apps", appName, "default")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := "[defender_alerts]\ninterval = 300\n\n[defender_alerts://tenant1]\nclient_secret = " + secretV + "\nhec_token = ********\n"
	if err := os.WriteFile(filepath.Join(dir, "inputs.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, log = r.run(t, "tenant1", r.params(map[string]string{"client_secret": mask}))
	if code != 0 || !strings.Contains(log, inDefault) || !strings.Contains(log, "fields=client_secret") || strings.Contains(log, back) {
		t.Fatalf("run with the secret in default/inputs.conf: exit %d, want only the default/ warning naming client_secret:\n%s", code, log)
	}
	if strings.Contains(log, secretV) {
		t.Fatalf("the warning shows the secret:\n%s", log)
	}

	// Another input's stanza in the same file is not this input's business.
	code, _, log = r.run(t, "tenant2", r.params(map[string]string{"client_secret": secretV}))
	if code != 0 || strings.Contains(log, inDefault) {
		t.Fatalf("another input warned about tenant1's stanza: exit %d\n%s", code, log)
	}
}
