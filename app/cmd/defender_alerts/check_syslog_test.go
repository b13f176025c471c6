package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"ta-defender-alerts/app/splunkdtest"
)

// probed is a stand-in syslog receiver for check: it takes connections (TLS ones with the
// given config, the handshake done) and counts the bytes anyone sent it, which must be none.
type probed struct {
	ln    net.Listener
	mu    sync.Mutex
	conns int
	bytes int
	wg    sync.WaitGroup
}

func newProbed(t *testing.T, tc *tls.Config) *probed {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if tc != nil {
		ln = tls.NewListener(ln, tc)
	}
	p := &probed{ln: ln}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				defer c.Close()
				if tlc, ok := c.(*tls.Conn); ok && tlc.Handshake() != nil {
					return
				}
				p.mu.Lock()
				p.conns++
				p.mu.Unlock()
				n, _ := io.Copy(io.Discard, c)
				p.mu.Lock()
				p.bytes += int(n)
				p.mu.Unlock()
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

// runCheck sets the stand-in tenant's environment (its HEC settings too, which check must not
// try), output syslog and kv, then runs check.
func runCheck(t *testing.T, w *world, kv ...string) (int, string) {
	t.Helper()
	for _, e := range append(w.env()[1:], append([]string{"DEFENDER_OUTPUT=syslog"}, kv...)...) {
		if k, v, ok := strings.Cut(e, "="); ok && strings.HasPrefix(k, "DEFENDER_") {
			t.Setenv(k, v)
		}
	}
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"check"}, nil, &out, &errb)
	return code, out.String() + errb.String()
}

// With output syslog, check reaches the receiver and not HEC: a TCP receiver that listens is
// OK, one that does not is named with DEFENDER_SYSLOG_URL; UDP says it cannot be verified.
func TestCheckSyslogTCPAndUDP(t *testing.T) {
	w := newWorld(t, 3, false)
	r := newProbed(t, nil)
	code, out := runCheck(t, w, "DEFENDER_SYSLOG_URL=tcp://"+r.ln.Addr().String())
	if code != 0 || !strings.Contains(out, "✓ syslog receiver at tcp://"+r.ln.Addr().String()+" accepts a connection") {
		t.Errorf("exit %d, want 0 and the receiver OK:\n%s", code, out)
	}
	if strings.Contains(out, "HEC") {
		t.Errorf("check tried HEC with output syslog:\n%s", out)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := ln.Addr().String()
	ln.Close()
	code, out = runCheck(t, w, "DEFENDER_SYSLOG_URL=tcp://"+closed)
	if code != 1 || !strings.Contains(out, "✗ syslog receiver at tcp://"+closed) || !strings.Contains(out, "refused") ||
		!strings.Contains(out, "DEFENDER_SYSLOG_URL") {
		t.Errorf("exit %d, want 1 and the refused connection named with DEFENDER_SYSLOG_URL:\n%s", code, out)
	}
	code, out = runCheck(t, w, "DEFENDER_SYSLOG_URL=udp://127.0.0.1:514")
	if code != 0 || !strings.Contains(out, "✓ syslog receiver at udp://127.0.0.1:514: the host name resolves") ||
		!strings.Contains(out, "UDP cannot be verified beyond name resolution") {
		t.Errorf("exit %d, want 0 and UDP's limits said plainly:\n%s", code, out)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conns != 1 || r.bytes != 0 {
		t.Errorf("the receiver had %d connections and got %d bytes; want 1 and nothing sent", r.conns, r.bytes)
	}
}

// Over TLS, check completes the handshake and verifies the receiver's certificate: trusted
// through DEFENDER_SYSLOG_CA_FILE for DEFENDER_SYSLOG_SERVER_NAME it is OK; without the CA,
// or for another name, the failure names those settings; a receiver that wants a client
// certificate and gets none is named with DEFENDER_SYSLOG_CERT_FILE.
func TestCheckSyslogTLS(t *testing.T) {
	ca, err := splunkdtest.NewCA("Test Syslog CA")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue(splunkdtest.Leaf{CN: "syslog.test", Hosts: []string{"syslog.test"}})
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, 3, false)
	open := newProbed(t, &tls.Config{Certificates: []tls.Certificate{cert}})
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	strict := newProbed(t, &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool})
	url := "DEFENDER_SYSLOG_URL=tls://" + open.ln.Addr().String()
	tests := []struct {
		name string
		env  []string
		code int
		want []string
	}{
		{"trusted", []string{url, "DEFENDER_SYSLOG_CA_FILE=" + caFile, "DEFENDER_SYSLOG_SERVER_NAME=syslog.test"}, 0,
			[]string{"✓ syslog receiver at tls://", "completes the TLS handshake with a trusted certificate"}},
		{"no CA", []string{url, "DEFENDER_SYSLOG_SERVER_NAME=syslog.test"}, 1,
			[]string{"✗ syslog receiver at tls://", "certificate is not trusted", "DEFENDER_SYSLOG_CA_FILE"}},
		{"another name", []string{url, "DEFENDER_SYSLOG_CA_FILE=" + caFile, "DEFENDER_SYSLOG_SERVER_NAME=other.test"}, 1,
			[]string{"certificate is not trusted", "other.test", "DEFENDER_SYSLOG_SERVER_NAME"}},
		{"CA file missing", []string{url, "DEFENDER_SYSLOG_CA_FILE=" + caFile + ".gone"}, 1,
			[]string{"✗ syslog settings", "DEFENDER_SYSLOG_CA_FILE"}},
		{"client certificate wanted", []string{"DEFENDER_SYSLOG_URL=tls://" + strict.ln.Addr().String(),
			"DEFENDER_SYSLOG_CA_FILE=" + caFile, "DEFENDER_SYSLOG_SERVER_NAME=syslog.test"}, 1,
			[]string{"refused the TLS connection", "DEFENDER_SYSLOG_CERT_FILE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out := runCheck(t, w, tt.env...)
			if code != tt.code {
				t.Errorf("exit %d, want %d:\n%s", code, tt.code, out)
			}
			for _, want := range tt.want {
				if !strings.Contains(out, want) {
					t.Errorf("missing %q in:\n%s", want, out)
				}
			}
			if strings.Contains(out, "HEC") {
				t.Errorf("check tried HEC with output syslog:\n%s", out)
			}
		})
	}
	open.mu.Lock()
	defer open.mu.Unlock()
	if open.conns != 1 || open.bytes != 0 {
		t.Errorf("the receiver completed %d handshakes and got %d bytes; want 1 (the trusted case) and nothing sent", open.conns, open.bytes)
	}
}
