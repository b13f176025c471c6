package defendertest_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"ta-defender-alerts/app/defendertest"
	"ta-defender-alerts/app/defendertest/dtest"
)

const (
	tTenant = "6c2a4e1b-3f0d-4a8e-9b7c-2d5e8f1a0b3c"
	tClient = "0f9e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f"
)

func TestTokenEndpoints(t *testing.T) {
	s := defendertest.New(defendertest.Options{TenantID: tTenant, TenantDomain: "contoso.onmicrosoft.com", ClientID: tClient, ClientSecret: "pw"})
	defer s.Close()
	tests := []struct {
		name       string
		path       string
		form       url.Values
		wantStatus int
		wantBody   string
	}{
		{"v2", "/" + tTenant + "/oauth2/v2.0/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {tClient}, "client_secret": {"pw"}, "scope": {defendertest.Resource + "/.default"}}, 200, `"expires_in":3600,`},
		{"v1 numbers are strings", "/contoso.onmicrosoft.com/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {tClient}, "client_secret": {"pw"}, "resource": {defendertest.Resource}}, 200, `"expires_in":"3600"`},
		{"wrong secret", "/" + tTenant + "/oauth2/v2.0/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {tClient}, "client_secret": {"nope"}, "scope": {defendertest.Resource + "/.default"}}, 401, "AADSTS7000215"},
		{"wrong scope", "/" + tTenant + "/oauth2/v2.0/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {tClient}, "client_secret": {"pw"}, "scope": {"https://graph.microsoft.com/.default"}}, 400, "AADSTS70011"},
		{"unknown tenant", "/contoso.com/oauth2/v2.0/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {tClient}, "client_secret": {"pw"}, "scope": {defendertest.Resource + "/.default"}}, 400, "AADSTS90002"},
		{"no credential", "/" + tTenant + "/oauth2/v2.0/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {tClient}, "scope": {defendertest.Resource + "/.default"}}, 401, "invalid_client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.PostForm(s.URL+tt.path, tt.form)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var raw json.RawMessage
			if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantStatus || !strings.Contains(string(raw), tt.wantBody) {
				t.Errorf("got %d %s, want %d with %s", resp.StatusCode, raw, tt.wantStatus, tt.wantBody)
			}
		})
	}
}

// Pages come newest first and hold exactly the versions the filter asks for.
func TestListFiltersAndOrders(t *testing.T) {
	s := defendertest.New(defendertest.Options{TenantID: tTenant, ClientID: tClient, ClientSecret: "pw"})
	defer s.Close()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s.AddAlerts(50, func(i int) time.Time { return base.Add(time.Duration(i) * time.Minute) })
	tok := dtest.TokenFor(t, s, tTenant, tClient, "pw")
	q := "$filter=" + url.QueryEscape("lastUpdateTime ge 2026-01-01T00:10:00Z and lastUpdateTime lt 2026-01-01T00:30:00.0000000Z") + "&$top=5&$skip=2&$expand=evidence"
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/api/alerts?"+q, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page struct {
		Value []struct {
			ID             string `json:"id"`
			LastUpdateTime string `json:"lastUpdateTime"`
			Evidence       []any  `json:"evidence"`
		} `json:"value"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range page.Value {
		got = append(got, a.LastUpdateTime)
		if len(a.Evidence) == 0 {
			t.Error("evidence missing")
		}
	}
	want := []string{"2026-01-01T00:27:00Z", "2026-01-01T00:26:00Z", "2026-01-01T00:25:00Z", "2026-01-01T00:24:00Z", "2026-01-01T00:23:00Z"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("got %v, want %v", got, want)
	}
}
