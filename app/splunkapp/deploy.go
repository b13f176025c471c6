package splunkapp

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"

	"ta-defender-alerts/app/splunkd"
)

// What a deployment can do to the input's secrets: bring one back in clear text after the
// input masked it, or keep it in the app's default/inputs.conf, which masking never changes.

// storedBefore returns the fresh fields whose value is the one already stored for them: a
// secret the input masked earlier is readable in its stanza again.
func storedBefore(ctx context.Context, s *secrets, params map[string]string, fresh []string) []string {
	var back []string
	for _, f := range fresh {
		if stored, ok, err := s.get(ctx, f); err == nil && ok && stored == strings.TrimSpace(params[f]) {
			back = append(back, f)
		}
	}
	return back
}

// clearInDefault returns the secret fields that stanza holds in clear text in the app's
// default/inputs.conf (nothing when the file cannot be read: this only warns).
func clearInDefault(dir, stanza string) []string {
	st, err := splunkd.ConfStanza(filepath.Join(dir, "default", "inputs.conf"), stanza)
	if err != nil {
		return nil
	}
	var out []string
	for _, f := range secretFields {
		if v := strings.TrimSpace(st[f]); v != mask && isSecret(f, v) {
			out = append(out, f)
		}
	}
	return out
}

// warnClearSecrets logs, naming the fields and never their values, the secrets a deployment
// brought back (back) and those the app's default/inputs.conf holds for stanza.
func warnClearSecrets(log *slog.Logger, back []string, appDir, stanza string) {
	if len(back) > 0 {
		log.Warn("secrets this input had stored and masked were readable in its stanza again: a deployment brought them back (a deployment app's inputs.conf, or local/ replaced); they are masked again, but stay in clear text wherever the deployment keeps them (README: Deploying across a Splunk estate)",
			"fields", strings.Join(back, ","))
	}
	if f := clearInDefault(appDir, stanza); len(f) > 0 {
		log.Warn("secrets sit in clear text in the app's default/inputs.conf, which masking cannot change (it writes local/): remove them there and enter them on this node (README: Deploying across a Splunk estate)",
			"fields", strings.Join(f, ","), "file", filepath.Join(appDir, "default", "inputs.conf"))
	}
}
