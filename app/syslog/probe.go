package syslog

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"
)

// ErrRefusedAfterHandshake: the receiver closed a TLS connection right after the handshake,
// as a receiver that refuses the client's certificate does under TLS 1.3.
var ErrRefusedAfterHandshake = errors.New("the receiver closed the connection just after the TLS handshake")

// Probe reaches o's receiver as a Writer would, and sends nothing: over TCP it connects; over
// TLS it also completes the handshake, verifying the receiver's certificate (against CAFile,
// else the system's roots, for ServerName, else the URL's host), and watches the connection
// briefly for a refusal of the client certificate. UDP has neither connection nor answer: for
// it Probe only resolves the host. An error in o is a *SettingError; a failure to connect is
// returned as the network or TLS package reports it (wrapped), so the caller can tell a
// certificate not trusted (*tls.CertificateVerificationError) from a port that is closed.
func Probe(ctx context.Context, o Options) error {
	t, err := o.resolve()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	if t.network == "udp" {
		host, _, _ := net.SplitHostPort(t.addr)
		if _, err := net.DefaultResolver.LookupHost(ctx, host); err != nil {
			return fmt.Errorf("resolve %s: %w", host, err)
		}
		return nil
	}
	d := &net.Dialer{Timeout: o.Timeout}
	if t.tls == nil {
		c, err := d.DialContext(ctx, "tcp", t.addr)
		if err != nil {
			return fmt.Errorf("connect to %s: %w", t.addr, err)
		}
		return c.Close()
	}
	c, err := (&tls.Dialer{NetDialer: d, Config: t.tls}).DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return fmt.Errorf("TLS to %s (server name %s): %w", t.addr, t.tls.ServerName, err)
	}
	defer c.Close()
	// A receiver never sends: anything but the wait running out means it closed the
	// connection (under TLS 1.3, the alert of a client certificate refused comes now).
	c.SetReadDeadline(time.Now().Add(tlsSettle))
	var b [1]byte
	if _, err := c.Read(b[:]); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil
		}
		return fmt.Errorf("TLS to %s: %w: %w", t.addr, ErrRefusedAfterHandshake, err)
	}
	return fmt.Errorf("TLS to %s: the receiver sent data, which a syslog receiver never does", t.addr)
}
