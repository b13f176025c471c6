package splunkd

import (
	"context"
	"strings"
	"testing"

	"ta-defender-alerts/app/secret"
	"ta-defender-alerts/app/splunkdtest"
)

// Every entity name reaches splunkd escaped exactly once, whatever it holds: create, update
// (an existing name: the entity's own path), read, delete, and an input's update.
func TestNamesEscapedOnce(t *testing.T) {
	const app, realm = "TA-defender-alerts", "TA-defender-alerts"
	sp := splunkdtest.New("key", app)
	defer sp.Close()
	home := t.TempDir()
	if err := sp.InstallCACert(home); err != nil {
		t.Fatal(err)
	}
	c, err := New(sp.URL, secret.String("key"), app, home, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tests := []struct{ name, wantPath string }{
		{"tenant1/client_secret", "/storage/passwords/TA-defender-alerts:tenant1%2Fclient_secret:"},
		{"Contoso Prod/client_secret", "/storage/passwords/TA-defender-alerts:Contoso%20Prod%2Fclient_secret:"},
		{"100%/client_secret", "/storage/passwords/TA-defender-alerts:100%25%2Fclient_secret:"},
		{"t#1/certificate#2", "/storage/passwords/TA-defender-alerts:t%231%2Fcertificate%232:"},
		{"why?/hec_token", "/storage/passwords/TA-defender-alerts:why%3F%2Fhec_token:"},
		{`a:b\c/client_secret`, "/storage/passwords/TA-defender-alerts:a%5C:b%5C%5Cc%2Fclient_secret:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := c.SetPassword(ctx, realm, tt.name, secret.String("one")); err != nil {
				t.Fatalf("create: %v", err)
			}
			if err := c.SetPassword(ctx, realm, tt.name, secret.String("two")); err != nil {
				t.Fatalf("update: %v", err)
			}
			if got, ok, err := c.Password(ctx, realm, tt.name); err != nil || !ok || got.Reveal() != "two" {
				t.Fatalf("after the update: %q, %v, %v", got.Reveal(), ok, err)
			}
			wantGet := "GET /servicesNS/nobody/" + app + tt.wantPath
			if !contains(sp.Calls, wantGet) {
				t.Errorf("no call %q among %q", wantGet, sp.Calls)
			}
			wantCall := "POST /servicesNS/nobody/" + app + tt.wantPath
			if !contains(sp.Calls, wantCall) {
				t.Errorf("no call %q among %q", wantCall, sp.Calls)
			}
			if err := c.DeletePassword(ctx, realm, tt.name); err != nil {
				t.Fatalf("delete: %v", err)
			}
			if _, ok := sp.Passwords()[realm+"|"+tt.name]; ok {
				t.Error("still stored after the delete")
			}
			input := strings.Split(tt.name, "/")[0]
			sp.SetInput("defender_alerts", input, map[string]string{"client_secret": "plain"})
			if err := c.UpdateInput(ctx, "defender_alerts", input, map[string]string{"client_secret": "********"}); err != nil {
				t.Fatalf("input update: %v", err)
			}
			if got := sp.Input("defender_alerts", input)["client_secret"]; got != "********" {
				t.Errorf("input %q holds %q", input, got)
			}
		})
	}
}

func contains(l []string, s string) bool {
	for _, v := range l {
		if v == s {
			return true
		}
	}
	return false
}
