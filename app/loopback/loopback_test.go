package loopback_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"ta-defender-alerts/app/loopback"
	"ta-defender-alerts/app/splunkdtest"
)

func get(t *testing.T, c *http.Client, url string) (string, error) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.Proto + " " + string(b), err
}

// closeWithin runs Close and fails the test if it has not returned after d.
func closeWithin(t *testing.T, s *loopback.Server, d time.Duration) {
	t.Helper()
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("Close has not returned after %v", d)
	}
}

// A served handler answers on the URL; after Close nothing does, even for a client that kept
// its connection open between requests (Close closes idle connections instead of waiting on
// them).
func TestServeThenClose(t *testing.T) {
	s := loopback.New(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello "+r.URL.Path) }))
	if !strings.HasPrefix(s.URL, "http://127.0.0.1:") && !strings.HasPrefix(s.URL, "http://[::1]:") {
		t.Errorf("URL %q is not a loopback http URL", s.URL)
	}
	c := &http.Client{Transport: &http.Transport{}, Timeout: 5 * time.Second}
	for range 2 { // the second request reuses the kept-alive connection
		if got, err := get(t, c, s.URL+"/x"); err != nil || got != "HTTP/1.1 hello /x" {
			t.Fatalf("got %q, %v; want HTTP/1.1 hello /x", got, err)
		}
	}
	closeWithin(t, s, 5*time.Second)
	if got, err := get(t, c, s.URL+"/x"); err == nil {
		t.Errorf("after Close: got %q, want an error", got)
	}
	closeWithin(t, s, time.Second) // a second Close is harmless
}

// Close closes a connection that has sent no request yet, rather than wait for one.
func TestCloseClosesSilentConnection(t *testing.T) {
	s := loopback.New(http.NotFoundHandler())
	conn, err := net.Dial("tcp", s.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	time.Sleep(50 * time.Millisecond) // let the server take it
	closeWithin(t, s, 3*time.Second)
	_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	if n, err := conn.Read(make([]byte, 1)); err == nil || n > 0 {
		t.Errorf("the silent connection is still open after Close (read %d, %v)", n, err)
	}
}

// Close waits for a request in progress, which gets its whole answer.
func TestCloseWaitsForRequestInProgress(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	s := loopback.New(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		io.WriteString(w, "late but whole")
	}))
	c := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	type res struct {
		body string
		err  error
	}
	got := make(chan res, 1)
	go func() {
		resp, err := c.Get(s.URL)
		if err != nil {
			got <- res{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- res{string(b), err}
	}()
	<-entered
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
		t.Fatal("Close returned while a request was in progress")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close has not returned 5 s after the request finished")
	}
	if r := <-got; r.err != nil || r.body != "late but whole" {
		t.Errorf("got %q, %v; want the whole answer", r.body, r.err)
	}
}

// StartTLS serves HTTPS (HTTP/1.1) with the given certificate, after the caller changed
// Config; a client that trusts the certificate's CA gets the answer.
func TestStartTLS(t *testing.T) {
	ca, err := splunkdtest.NewCA("loopback test CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(splunkdtest.Leaf{CN: "localhost", Hosts: []string{"127.0.0.1", "::1"}})
	if err != nil {
		t.Fatal(err)
	}
	s := loopback.NewUnstarted(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "secure")
	}))
	s.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "changed before start") })
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusting client's handshake fails on purpose
	s.StartTLS(&tls.Config{Certificates: []tls.Certificate{leaf}, MinVersion: tls.VersionTLS12})
	defer closeWithin(t, s, 5*time.Second)
	if !strings.HasPrefix(s.URL, "https://") {
		t.Fatalf("URL %q, want https", s.URL)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}, Timeout: 5 * time.Second}
	if got, err := get(t, c, s.URL); err != nil || got != "HTTP/1.1 changed before start" {
		t.Errorf("got %q, %v; want HTTP/1.1 changed before start", got, err)
	}
	if _, err := get(t, &http.Client{Transport: &http.Transport{}, Timeout: 5 * time.Second}, s.URL); err == nil {
		t.Error("a client that does not trust the CA got an answer")
	}
}
