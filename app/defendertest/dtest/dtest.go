// Package dtest holds test helpers for the Defender stand-in that need the testing package,
// apart from defendertest itself, which the demo links into the shipped binary.
package dtest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"ta-defender-alerts/app/defendertest"
)

// TokenFor gets an access token for the Alert API from the stand-in with a client secret.
func TokenFor(t testing.TB, s *defendertest.Server, tenant, client, secret string) string {
	t.Helper()
	return TokenForScope(t, s, tenant, client, secret, defendertest.Resource+"/.default")
}

// TokenForScope gets an access token for a scope (e.g. defendertest.GraphGlobal+"/.default"
// from a stand-in in GraphMode) with a client secret.
func TokenForScope(t testing.TB, s *defendertest.Server, tenant, client, secret, scope string) string {
	t.Helper()
	resp, err := http.PostForm(s.URL+"/"+tenant+"/oauth2/v2.0/token", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {client}, "client_secret": {secret},
		"scope": {scope},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("token: %v (status %d)", err, resp.StatusCode)
	}
	return tok.AccessToken
}

// GetStatus makes a GET with a bearer token and returns the status.
func GetStatus(t testing.TB, u, token string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
