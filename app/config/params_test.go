package config

import (
	"errors"
	"strings"
	"testing"
)

func goodParams() map[string]string {
	return map[string]string{
		"tenant_id": "6c2a4e1b-3f0d-4a8e-9b7c-2d5e8f1a0b3c", "client_id": "0f9e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f",
		"client_secret": "sup3r~secret", "index": "default", "interval": "300",
	}
}

func TestFromParams(t *testing.T) {
	c, err := FromParams(goodParams(), "/opt/splunk/var/lib/splunk/modinputs/defender_alerts", "tenant1")
	if err != nil {
		t.Fatal(err)
	}
	if c.Output != "stdout" || c.HEC.Index != "" || c.HEC.Sourcetype != "ms:defender:atp:alerts" || c.Input != "tenant1" || c.Start.Hours() != 24 {
		t.Errorf("defaults: %+v", c)
	}
	tests := []struct {
		name      string
		set       map[string]string
		wantParam string
		wantMsg   string
	}{
		{"bad tenant", map[string]string{"tenant_id": "nope nope"}, "tenant_id", "neither a GUID"},
		{"bad cloud", map[string]string{"cloud": "mars"}, "cloud", "is not a cloud"},
		{"bad duration", map[string]string{"overlap": "ten minutes"}, "overlap", "not a duration"},
		{"bad output", map[string]string{"output": "file"}, "output", "stdout"},
		{"hec needs url", map[string]string{"output": "hec"}, "hec_url", "is required"},
		{"hec bad url", map[string]string{"output": "hec", "hec_url": "splunk:8088", "hec_token": "t"}, "hec_url", "http(s) URL"},
		{"hec needs token", map[string]string{"output": "hec", "hec_url": "https://splunk:8088"}, "hec_token", "is required"},
		{"hec ca file", map[string]string{"output": "hec", "hec_url": "https://splunk:8088", "hec_token": "t", "hec_ca_file": "/nowhere/ca.pem"}, "hec_ca_file", "cannot be read"},
		{"ca file", map[string]string{"ca_file": "/nowhere/ca.pem"}, "ca_file", "cannot be read"},
		{"bad linger", map[string]string{"hec_linger": "soon"}, "hec_linger", "not a duration"},
		{"ack timeout", map[string]string{"hec_ack_timeout": "never"}, "hec_ack_timeout", "not a duration"},
		{"no checkpoint dir", map[string]string{}, "checkpoint_dir", "must not be empty"},
		{"bad bool", map[string]string{"hec_insecure_skip_verify": "maybe"}, "hec_insecure_skip_verify", "true or false"},
		{"no secret", map[string]string{"client_secret": ""}, "client_secret", "set exactly one"},
		{"cert path missing", map[string]string{"client_secret": "", "certificate": "/nowhere/cert.pem"}, "certificate", "cannot be read"},
		{"cert text bad", map[string]string{"client_secret": "", "certificate": "-----BEGIN CERTIFICATE-----\nxx\n-----END CERTIFICATE-----"}, "certificate", "cannot be used"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := goodParams()
			for k, v := range tt.set {
				p[k] = v
			}
			cp := "/tmp/cp"
			if tt.wantParam == "checkpoint_dir" {
				cp = ""
			}
			_, err := FromParams(p, cp, "tenant1")
			var ce *Error
			if !errors.As(err, &ce) || ce.Var != tt.wantParam || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("err = %v, want %s %q", err, tt.wantParam, tt.wantMsg)
			}
			if strings.Contains(err.Error(), "sup3r~secret") {
				t.Errorf("error shows the secret: %v", err)
			}
			if strings.Contains(err.Error(), "DEFENDER_") {
				t.Errorf("the modular input's error speaks of the environment: %v", err)
			}
		})
	}
}
