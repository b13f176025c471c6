package config

import (
	"errors"
	"strings"
	"testing"

	"ta-defender-alerts/app/syslog"
)

// syslogEnv is a good environment for output syslog: no HEC settings at all.
func syslogEnv(kv map[string]string) map[string]string {
	env := good()
	delete(env, "DEFENDER_HEC_URL")
	delete(env, "DEFENDER_HEC_TOKEN")
	env["DEFENDER_OUTPUT"] = "syslog"
	env["DEFENDER_SYSLOG_URL"] = "tcp://siem.example.com:6514"
	for k, v := range kv {
		if v == "-" {
			delete(env, k)
		} else {
			env[k] = v
		}
	}
	return env
}

// Output syslog needs no HEC settings; the defaults are CEF with octet counting; the TLS
// settings reach the syslog options.
func TestSyslogOutput(t *testing.T) {
	setEnv(t, syslogEnv(nil))
	c, err := FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if c.Output != "syslog" || c.SyslogFormat != "cef" || c.Syslog.URL != "tcp://siem.example.com:6514" || c.Syslog.Framing != syslog.OctetCounting || len(c.HEC.URLs) != 0 {
		t.Errorf("output syslog: %q %q %+v, HEC %v", c.Output, c.SyslogFormat, c.Syslog, c.HEC.URLs)
	}
	setEnv(t, syslogEnv(map[string]string{"DEFENDER_SYSLOG_URL": "TLS://siem.example.com:6514", "DEFENDER_SYSLOG_FORMAT": "LEEF",
		"DEFENDER_SYSLOG_FRAMING": "lf", "DEFENDER_SYSLOG_CA_FILE": "/etc/ca.pem", "DEFENDER_SYSLOG_CERT_FILE": "/etc/c.pem",
		"DEFENDER_SYSLOG_KEY_FILE": "/etc/k.pem", "DEFENDER_SYSLOG_SERVER_NAME": "siem"}))
	c, err = FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	want := syslog.Options{URL: "tls://siem.example.com:6514", Framing: syslog.LF, CAFile: "/etc/ca.pem", CertFile: "/etc/c.pem", KeyFile: "/etc/k.pem", ServerName: "siem"}
	if c.SyslogFormat != "leef" || c.Syslog.URL != want.URL || c.Syslog.Framing != want.Framing || c.Syslog.CAFile != want.CAFile ||
		c.Syslog.CertFile != want.CertFile || c.Syslog.KeyFile != want.KeyFile || c.Syslog.ServerName != want.ServerName {
		t.Errorf("syslog over TLS: %q %+v", c.SyslogFormat, c.Syslog)
	}
}

// Every wrong syslog setting is refused with an error naming it.
func TestSyslogSettingErrors(t *testing.T) {
	for _, tt := range []struct {
		env  map[string]string
		name string // the setting the error must name
	}{
		{map[string]string{"DEFENDER_OUTPUT": "kafka"}, "DEFENDER_OUTPUT"},
		{map[string]string{"DEFENDER_SYSLOG_URL": "-"}, "DEFENDER_SYSLOG_URL"},
		{map[string]string{"DEFENDER_SYSLOG_URL": "http://siem:514"}, "DEFENDER_SYSLOG_URL"},
		{map[string]string{"DEFENDER_SYSLOG_FORMAT": "xml"}, "DEFENDER_SYSLOG_FORMAT"},
		{map[string]string{"DEFENDER_SYSLOG_URL": "udp://siem:514", "DEFENDER_SYSLOG_FORMAT": "json"}, "DEFENDER_SYSLOG_FORMAT"},
		{map[string]string{"DEFENDER_SYSLOG_FRAMING": "nul"}, "DEFENDER_SYSLOG_FRAMING"},
		{map[string]string{"DEFENDER_SYSLOG_CA_FILE": "/etc/ca.pem"}, "DEFENDER_SYSLOG_CA_FILE"}, // needs tls://
		{map[string]string{"DEFENDER_SYSLOG_URL": "tls://siem:6514", "DEFENDER_SYSLOG_KEY_FILE": "/etc/k.pem"}, "DEFENDER_SYSLOG_CERT_FILE"},
		// CEF and LEEF are made from Alert API alerts only.
		{map[string]string{"DEFENDER_FEED": "graph-alerts"}, "DEFENDER_SYSLOG_FORMAT"},
		{map[string]string{"DEFENDER_FEED": "endpoint-alerts,graph-alerts", "DEFENDER_SYSLOG_FORMAT": "leef"}, "DEFENDER_SYSLOG_FORMAT"},
		// A syslog URL without output syslog is a mistake, not ignored.
		{map[string]string{"DEFENDER_OUTPUT": "hec", "DEFENDER_HEC_URL": "https://splunk:8088", "DEFENDER_HEC_TOKEN": "8a3f2b1c-4d5e-6f70-8192-a3b4c5d6e7f8"}, "DEFENDER_SYSLOG_URL"},
		// With output hec (the default), HEC is still required.
		{map[string]string{"DEFENDER_OUTPUT": "-", "DEFENDER_SYSLOG_URL": "-"}, "DEFENDER_HEC_URL"},
	} {
		setEnv(t, syslogEnv(tt.env))
		_, err := FromEnv()
		var ce *Error
		if !errors.As(err, &ce) || ce.Var != tt.name {
			t.Errorf("%v: %v, want an error naming %s", tt.env, err, tt.name)
		}
	}
	// json carries graph-alerts as they came.
	setEnv(t, syslogEnv(map[string]string{"DEFENDER_FEED": "graph-alerts", "DEFENDER_SYSLOG_FORMAT": "json"}))
	if _, err := FromEnv(); err != nil {
		t.Errorf("graph-alerts as json: %v", err)
	}
}

// What the syslog package refuses (a TLS file it cannot read) is named by Explain.
func TestSyslogExplain(t *testing.T) {
	setEnv(t, syslogEnv(map[string]string{"DEFENDER_SYSLOG_URL": "tls://siem:6514", "DEFENDER_SYSLOG_CA_FILE": "/nonexistent/ca.pem"}))
	c, err := FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	_, err = syslog.New(c.Syslog, func(syslog.Report) {})
	if got := c.Explain(err).Error(); !strings.HasPrefix(got, "DEFENDER_SYSLOG_CA_FILE: ") {
		t.Errorf("an unreadable CA file: %s", got)
	}
}

// A stanza's output stays stdout or hec: syslog is the standalone collector's.
func TestStanzaOutputIsNotSyslog(t *testing.T) {
	p := map[string]string{"tenant_id": "6c2a4e1b-3f0d-4a8e-9b7c-2d5e8f1a0b3c", "client_id": "0f9e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f",
		"client_secret": "s", "output": "syslog"}
	if _, err := FromParams(p, t.TempDir(), "t1"); err == nil || !strings.Contains(err.Error(), "output") {
		t.Errorf("a stanza with output syslog: %v", err)
	}
}

// The CEF and LEEF header's vendor, product and version can be set (the defaults are the old
// ArcSight connector's); a value a header cannot carry is refused, naming the setting.
func TestSyslogHeaderSettings(t *testing.T) {
	setEnv(t, syslogEnv(map[string]string{"DEFENDER_SYSLOG_VENDOR": "Contoso", "DEFENDER_SYSLOG_PRODUCT": "Defender via collector", "DEFENDER_SYSLOG_PRODUCT_VERSION": "3.1"}))
	c, err := FromEnv()
	if err != nil || c.SyslogHeader != [3]string{"Contoso", "Defender via collector", "3.1"} {
		t.Fatalf("header %q (%v)", c.SyslogHeader, err)
	}
	for k, v := range map[string]string{"DEFENDER_SYSLOG_VENDOR": "A|B", "DEFENDER_SYSLOG_PRODUCT": "x^y", "DEFENDER_SYSLOG_PRODUCT_VERSION": strings.Repeat("9", 32)} {
		setEnv(t, syslogEnv(map[string]string{k: v}))
		if _, err := FromEnv(); err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%q: err %v, want one naming %s", k, v, err, k)
		}
	}
	// A control character (an escape, a DEL) would reach the receiver's header raw.
	for _, v := range []string{"Con\x1btoso", "Con\x7ftoso", "Con\u0085toso"} {
		setEnv(t, syslogEnv(map[string]string{"DEFENDER_SYSLOG_VENDOR": v}))
		if _, err := FromEnv(); err == nil || !strings.Contains(err.Error(), "DEFENDER_SYSLOG_VENDOR") {
			t.Errorf("vendor %q: err %v, want one naming DEFENDER_SYSLOG_VENDOR", v, err)
		}
	}
	// The header settings apply to syslog alone: set with HEC, they would be ignored.
	for _, k := range []string{"DEFENDER_SYSLOG_VENDOR", "DEFENDER_SYSLOG_PRODUCT", "DEFENDER_SYSLOG_PRODUCT_VERSION"} {
		env := good()
		env[k] = "Contoso"
		setEnv(t, env)
		if _, err := FromEnv(); err == nil || !strings.Contains(err.Error(), k) || !strings.Contains(err.Error(), "DEFENDER_OUTPUT") {
			t.Errorf("%s with output hec: err %v, want one naming %s and DEFENDER_OUTPUT", k, err, k)
		}
	}
}
