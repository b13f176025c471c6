package config

import (
	"fmt"
	"slices"
	"strings"
	"unicode"

	"ta-defender-alerts/app/syslog"
)

// syslogConfig fills c.Syslog and c.SyslogFormat from the DEFENDER_SYSLOG_* settings (output
// syslog). What only the syslog package can check (the URL's host and port, the TLS files)
// it checks when the collector is built; cfg.Explain names the setting then.
func (r *raw) syslogConfig(c *Config) error {
	url := strings.TrimSpace(r.SyslogURL)
	if url == "" {
		return r.errorf("SyslogURL", "", "is required with "+r.names.name("EnvOutput")+"=syslog: tcp://host:port, tls://host:port or udp://host:port")
	}
	scheme, _, _ := strings.Cut(url, "://")
	if scheme = strings.ToLower(scheme); scheme != "tcp" && scheme != "tls" && scheme != "udp" {
		return r.errorf("SyslogURL", url, "must start with tcp://, tls:// or udp://")
	}
	format := strings.ToLower(strings.TrimSpace(r.SyslogFormat))
	switch format {
	case "cef", "leef", "json":
	default:
		return r.errorf("SyslogFormat", r.SyslogFormat, "must be cef, leef or json")
	}
	if format != "json" && slices.Contains(c.Feeds, "graph-alerts") {
		return r.errorf("SyslogFormat", r.SyslogFormat, "applies to the endpoint-alerts feed only (detections are made from Alert API alerts): use json for graph-alerts")
	}
	if format == "json" && scheme == "udp" {
		return r.errorf("SyslogFormat", r.SyslogFormat, "cannot go over udp:// (an alert's JSON does not fit a datagram): use cef or leef, or tcp:// or tls://")
	}
	var framing syslog.Framing
	switch strings.ToLower(strings.TrimSpace(r.SyslogFraming)) {
	case "octet-counting", "":
	case "lf":
		framing = syslog.LF
	default:
		return r.errorf("SyslogFraming", r.SyslogFraming, "must be octet-counting or lf")
	}
	if scheme != "tls" {
		for _, f := range []string{"SyslogCAFile", "SyslogCertFile", "SyslogKeyFile", "SyslogServerName"} {
			if v := r.field(f); v != "" {
				return r.errorf(f, v, "needs a tls:// "+r.names.name("SyslogURL"))
			}
		}
	}
	if (r.SyslogCertFile == "") != (r.SyslogKeyFile == "") {
		return r.errorf("SyslogCertFile", r.SyslogCertFile, "and "+r.names.name("SyslogKeyFile")+" go together: set both or neither")
	}
	for i, f := range []struct {
		field, value string
		max          int
	}{{"SyslogVendor", r.SyslogVendor, 63}, {"SyslogProduct", r.SyslogProduct, 63}, {"SyslogVersion", r.SyslogVersion, 31}} {
		v := strings.TrimSpace(f.value)
		if strings.ContainsAny(v, "|\\^=") || strings.ContainsFunc(v, unicode.IsControl) || len([]rune(v)) > f.max {
			return r.errorf(f.field, f.value, fmt.Sprintf("must be at most %d characters without |, \\, ^, =, tabs, line breaks or other control characters (CEF and LEEF headers)", f.max))
		}
		c.SyslogHeader[i] = v
	}
	c.SyslogFormat = format
	c.Syslog = syslog.Options{URL: strings.ToLower(scheme) + url[len(scheme):], Framing: framing,
		CAFile: r.SyslogCAFile, CertFile: r.SyslogCertFile, KeyFile: r.SyslogKeyFile, ServerName: r.SyslogServerName}
	return nil
}

// field is the value of one of the TLS settings, by its raw field.
func (r *raw) field(name string) string {
	switch name {
	case "SyslogCAFile":
		return r.SyslogCAFile
	case "SyslogCertFile":
		return r.SyslogCertFile
	case "SyslogKeyFile":
		return r.SyslogKeyFile
	}
	return r.SyslogServerName
}
