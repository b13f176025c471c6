package syslog

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"ta-defender-alerts/app/splunkdtest"
)

// testPKI is a CA, a server certificate for syslog.test (not for 127.0.0.1: the writer must
// be told the name), a client certificate, and the files the writer reads.
type testPKI struct {
	ca                        *splunkdtest.CA
	server                    tls.Certificate
	caFile, certFile, keyFile string
}

func newPKI(t *testing.T) testPKI {
	t.Helper()
	ca, err := splunkdtest.NewCA("Test Syslog CA")
	if err != nil {
		t.Fatal(err)
	}
	server, err := ca.Issue(splunkdtest.Leaf{CN: "syslog.test", Hosts: []string{"syslog.test"}})
	if err != nil {
		t.Fatal(err)
	}
	client, err := ca.Issue(splunkdtest.Leaf{CN: "collector"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := testPKI{ca: ca, server: server, caFile: filepath.Join(dir, "ca.pem"),
		certFile: filepath.Join(dir, "client.pem"), keyFile: filepath.Join(dir, "client.key")}
	key, err := x509.MarshalECPrivateKey(client.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		p.caFile:   ca.CertPEM,
		p.certFile: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: client.Certificate[0]}),
		p.keyFile:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: key}),
	} {
		if err := os.WriteFile(name, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// serverConfig requires a client certificate from the test CA.
func (p testPKI) serverConfig() *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(p.ca.Cert)
	return &tls.Config{Certificates: []tls.Certificate{p.server}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool,
		MinVersion: tls.VersionTLS12}
}

// testTLS sets o to trust the test CA, present the client certificate and expect
// syslog.test, and returns the receiver's configuration.
func testTLS(t *testing.T, o *Options) *tls.Config {
	p := newPKI(t)
	o.CAFile, o.CertFile, o.KeyFile, o.ServerName = p.caFile, p.certFile, p.keyFile, "syslog.test"
	return p.serverConfig()
}

func TestTLSDelivers(t *testing.T) {
	var o Options
	rc := newReceiver(t, "tcp", OctetCounting, testTLS(t, &o))
	o.URL = rc.url("tls")
	var r reports
	w := newWriter(t, o, &r)
	write(t, w, 0, 100, "over TLS")
	closeWriter(t, w)
	checkAll(t, seqs(t, rc.waitFor(100, 5*time.Second)), 100)
}

// What TLS refuses is retried with backoff (a receiver may be fixed) and heard through
// OnRetry; a context ends the wait.
func TestTLSRefused(t *testing.T) {
	p := newPKI(t)
	other := newPKI(t)
	old := p.serverConfig()
	old.MinVersion, old.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	tests := []struct {
		name   string
		server *tls.Config
		give   func(o *Options)
		want   func(error) bool
	}{
		{"unknown CA", p.serverConfig(), func(o *Options) { o.CAFile = other.caFile },
			func(err error) bool { var e *tls.CertificateVerificationError; return errors.As(err, &e) }},
		{"name not in the certificate", p.serverConfig(), func(o *Options) { o.ServerName = "" },
			func(err error) bool { var e x509.HostnameError; return errors.As(err, &e) }},
		// TLS 1.3: the client's handshake ends before the server checks its certificate; the
		// refusal comes just after, and must not let anything count as written.
		{"no client certificate", p.serverConfig(), func(o *Options) { o.CertFile, o.KeyFile = "", "" },
			func(err error) bool { return strings.Contains(err.Error(), "certificate required") }},
		{"TLS 1.1 only", old, func(*Options) {},
			func(err error) bool { return strings.Contains(err.Error(), "protocol version") }}, // the alert's type is crypto/tls's own
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := newReceiver(t, "tcp", OctetCounting, tt.server)
			var mu sync.Mutex
			var heard []error
			o := Options{URL: rc.url("tls"), CAFile: p.caFile, CertFile: p.certFile, KeyFile: p.keyFile, ServerName: "syslog.test",
				BackoffMin: 10 * time.Millisecond, BackoffMax: 20 * time.Millisecond,
				OnRetry: func(err error, _ time.Duration) { mu.Lock(); heard = append(heard, err); mu.Unlock() }}
			tt.give(&o)
			var r reports
			w := newWriter(t, o, &r)
			write(t, w, 0, 3, "refused")
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			if err := w.Flush(ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Flush: %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(heard) < 2 || !tt.want(heard[0]) {
				t.Errorf("heard %d retries, the first %v (%T)", len(heard), heard[0], heard[0])
			}
			if len(rc.messages()) != 0 || w.Stats().Written != 0 {
				t.Errorf("a message got through: %+v", w.Stats())
			}
		})
	}
}
