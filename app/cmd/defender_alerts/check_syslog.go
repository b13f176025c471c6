package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"strings"

	"ta-defender-alerts/app/config"
	"ta-defender-alerts/app/syslog"
)

// checkSyslog reaches the syslog receiver as the collector would, sending nothing: TCP
// connects, TLS also completes the handshake with the certificate verified; UDP can only be
// resolved, and the checklist says so.
func checkSyslog(ctx context.Context, cfg *config.Config, mark func(good bool, what, detail string), stdout io.Writer) {
	o := cfg.Syslog
	what := "syslog receiver at " + o.URL
	err := syslog.Probe(ctx, o)
	var se *syslog.SettingError
	var cv *tls.CertificateVerificationError
	var alert tls.AlertError
	switch {
	case errors.As(err, &se):
		mark(false, "syslog settings", cfg.Explain(err).Error())
	case err == nil && strings.HasPrefix(o.URL, "udp://"):
		mark(true, what+": the host name resolves", "")
		fmt.Fprintf(stdout, "! UDP cannot be verified beyond name resolution: nothing answers a datagram, so a receiver "+
			"that is down or a port that is closed shows only as messages missing there. Prefer tcp:// or tls://\n")
	case err == nil && strings.HasPrefix(o.URL, "tls://"):
		mark(true, what+" completes the TLS handshake with a trusted certificate (nothing was sent)", "")
	case err == nil:
		mark(true, what+" accepts a connection (nothing was sent)", "")
	case errors.As(err, &cv):
		mark(false, what+": its certificate is not trusted", err.Error()+
			"\n    Set DEFENDER_SYSLOG_CA_FILE to the CA certificate (PEM) that signed the receiver's certificate, "+
			"and DEFENDER_SYSLOG_SERVER_NAME to the name it was issued for if that is not the host in DEFENDER_SYSLOG_URL.")
	case errors.Is(err, syslog.ErrRefusedAfterHandshake) || errors.As(err, &alert):
		mark(false, what+": the receiver refused the TLS connection", err.Error()+
			"\n    If it asks for a client certificate, set DEFENDER_SYSLOG_CERT_FILE and DEFENDER_SYSLOG_KEY_FILE "+
			"to one signed by a CA it trusts.")
	case strings.HasPrefix(o.URL, "udp://"):
		mark(false, what, err.Error()+"\n    Check the host name in DEFENDER_SYSLOG_URL.")
	default:
		mark(false, what, err.Error()+
			"\n    Check the host and port in DEFENDER_SYSLOG_URL, and that the receiver listens there "+
			"(and lets this host in).")
	}
}
