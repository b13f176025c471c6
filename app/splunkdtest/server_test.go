package splunkdtest

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
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

// As splunkd does, a list hands out the clear password of every entry, of every realm, 30 at
// a time unless count says otherwise (0: all), and Served notes each; a read of one entity
// hands out that one, and a missing one is a 404.
func TestPasswordsListAndRead(t *testing.T) {
	s := New("key", "TA-defender-alerts")
	defer s.Close()
	for i := range 40 {
		s.SetPassword(fmt.Sprintf("realm%d", i%3), fmt.Sprintf("user%02d", i), "pw")
	}
	base := s.URL + "/servicesNS/nobody/TA-defender-alerts/storage/passwords"
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec
	get := func(u string) (int, int) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.Header.Set("Authorization", "Splunk key")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r struct{ Entry []json.RawMessage }
		_ = json.NewDecoder(resp.Body).Decode(&r)
		return resp.StatusCode, len(r.Entry)
	}
	tests := []struct {
		name       string
		url        string
		wantStatus int
		wantN      int
	}{
		{"list, default count", base + "?output_mode=json", 200, 30},
		{"list, count=0", base + "?output_mode=json&count=0", 200, 40},
		{"list, second page", base + "?output_mode=json&offset=30", 200, 10},
		{"read one", base + "/realm1:user01:?output_mode=json", 200, 1},
		{"read a missing one", base + "/realm0:user01:?output_mode=json", 404, 0},
	}
	served := 0
	for _, tt := range tests {
		status, n := get(tt.url)
		if status != tt.wantStatus || n != tt.wantN {
			t.Errorf("%s: %d with %d entries, want %d with %d", tt.name, status, n, tt.wantStatus, tt.wantN)
		}
		served += n
		if got := len(s.ServedEntries()); got != served {
			t.Errorf("%s: %d entries served in all, want %d", tt.name, got, served)
		}
	}
}
