package splunkdtest

import (
	"crypto/tls"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// The stand-in decodes a path once, as splunkd does: %2F in an entity name is "/", and %252F
// (escaped twice) is the three characters "%2F", another name, which does not exist.
func TestPathDecodedOnce(t *testing.T) {
	s := New("key", "TA-defender-alerts")
	defer s.Close()
	s.SetPassword("TA-defender-alerts", "tenant1/client_secret", "pw")
	s.SetInput("defender_alerts", "Contoso Prod", map[string]string{"index": "main"})
	base := s.URL + "/servicesNS/nobody/TA-defender-alerts"
	// Routing is under test here, not TLS.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec
	tests := []struct {
		name, method, path string
		want               int
	}{
		{"update, escaped once", "POST", "/storage/passwords/TA-defender-alerts:tenant1%2Fclient_secret:", 200},
		{"update, escaped twice", "POST", "/storage/passwords/TA-defender-alerts:tenant1%252Fclient_secret:", 404},
		{"input with a space, escaped once", "POST", "/data/inputs/defender_alerts/Contoso%20Prod", 200},
		{"input with a space, escaped twice", "POST", "/data/inputs/defender_alerts/Contoso%2520Prod", 404},
		{"an input that does not exist", "POST", "/data/inputs/defender_alerts/other", 404},
		{"a path that is not splunkd's", "GET", "/storage/other", 404},
		{"delete, escaped twice", "DELETE", "/storage/passwords/TA-defender-alerts:tenant1%252Fclient_secret:", 404},
		{"delete, escaped once", "DELETE", "/storage/passwords/TA-defender-alerts:tenant1%2Fclient_secret:", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, base+tt.path, strings.NewReader(url.Values{"password": {"pw2"}, "index": {"x"}}.Encode()))
			req.Header.Set("Authorization", "Splunk key")
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("%s %s: HTTP %d, want %d", tt.method, tt.path, resp.StatusCode, tt.want)
			}
		})
	}
	if _, ok := s.Passwords()["TA-defender-alerts|tenant1/client_secret"]; ok {
		t.Error("the password was not deleted")
	}
	if got := s.Input("defender_alerts", "Contoso Prod")["index"]; got != "x" {
		t.Errorf("input not updated: index %q", got)
	}
	if got := s.Input("defender_alerts", "Contoso%20Prod"); len(got) != 0 {
		t.Errorf("an input was created under the escaped name: %v", got)
	}
}
