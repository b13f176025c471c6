package splunkd

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ta-defender-alerts/app/defendertest"
	"ta-defender-alerts/app/secret"
)

// splunkd's certificate is checked against $SPLUNK_HOME/etc/auth/cacert.pem, chain only: its
// name (here "localhost", not in the certificate) is not, as Splunk's default certificate
// names SplunkServerDefaultCert.
func TestCACertWithoutHostName(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Splunk key" {
			w.WriteHeader(401)
			return
		}
		_, _ = w.Write([]byte(`{"entry":[{"content":{"realm":"TA-defender-alerts","username":"t1/client_secret","clear_password":"pw"}},{"content":{"realm":"other","username":"x","clear_password":"y"}}]}`))
	}))
	defer srv.Close()
	uri := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	home := func(caPEM []byte) string {
		h := t.TempDir()
		if caPEM != nil {
			_ = os.MkdirAll(filepath.Join(h, "etc", "auth"), 0o700)
			_ = os.WriteFile(filepath.Join(h, "etc", "auth", "cacert.pem"), caPEM, 0o600)
		}
		return h
	}
	good := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	// httptest servers all share one certificate: make a truly different one.
	otherPEM, _, err := defendertest.SelfSigned(time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(otherPEM)
	wrong := pem.EncodeToMemory(block)

	c, err := New(uri, secret.String("key"), "TA-defender-alerts", home(good))
	if err != nil {
		t.Fatal(err)
	}
	pw, err := c.Passwords(context.Background(), "TA-defender-alerts")
	if err != nil || len(pw) != 1 || pw["t1/client_secret"] != "pw" {
		t.Fatalf("with the right cacert.pem: %v %v", pw, err)
	}
	c, _ = New(uri, secret.String("key"), "TA-defender-alerts", home(wrong))
	if _, err := c.Passwords(context.Background(), "TA-defender-alerts"); err == nil || !strings.Contains(err.Error(), "cacert.pem") {
		t.Errorf("a certificate from another CA was accepted: %v", err)
	}
	// No cacert.pem and a loopback splunkd: not verified.
	c, _ = New(uri, secret.String("key"), "TA-defender-alerts", home(nil))
	if _, err := c.Passwords(context.Background(), "TA-defender-alerts"); err != nil {
		t.Errorf("loopback without cacert.pem: %v", err)
	}
	// A wrong session key is reported, without the key.
	c, _ = New(uri, secret.String("s3cr3t-key"), "TA-defender-alerts", home(good))
	if _, err := c.Passwords(context.Background(), "TA-defender-alerts"); err == nil || strings.Contains(err.Error(), "s3cr3t-key") || !strings.Contains(err.Error(), "401") {
		t.Errorf("wrong key: %v", err)
	}
}
