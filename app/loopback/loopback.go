// Package loopback serves an http.Handler on a loopback port, for the stand-ins (defendertest,
// hectest, splunkdtest). It has the shape of httptest.Server (URL, Listener, Config, Close)
// on plain net/http, so that the demo, which runs the stand-ins inside the shipped binary,
// links nothing made for tests.
package loopback

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"sync"
)

// Server is an HTTP server on a loopback port.
type Server struct {
	URL      string       // base URL, http://127.0.0.1:port (https:// once StartTLS ran)
	Listener net.Listener // where it accepts connections
	Config   *http.Server // change it before Start or StartTLS; Config.Handler is what it serves

	mu      sync.Mutex
	idle    *sync.Cond                  // signalled when a connection closes
	conns   map[net.Conn]http.ConnState // open connections and their state
	started bool
	closed  bool
	served  chan struct{} // closed when Serve has returned
}

// New serves h over plain HTTP until Close.
func New(h http.Handler) *Server {
	s := NewUnstarted(h)
	s.Start()
	return s
}

// NewUnstarted listens on a loopback port but does not serve until Start or StartTLS, so that
// the caller can change Config first. It panics when no loopback port is free, as a server
// that cannot start leaves nothing to run.
func NewUnstarted(h http.Handler) *Server {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		if ln, err = net.Listen("tcp6", "[::1]:0"); err != nil {
			panic(fmt.Sprintf("loopback: no loopback port to listen on: %v", err))
		}
	}
	s := &Server{Listener: ln, Config: &http.Server{Handler: h}, conns: map[net.Conn]http.ConnState{}, served: make(chan struct{})}
	s.idle = sync.NewCond(&s.mu)
	return s
}

// Start serves plain HTTP.
func (s *Server) Start() { s.serve("http://") }

// StartTLS serves HTTPS with cfg (its certificates, at least). Without NextProtos in cfg it
// speaks HTTP/1.1 only, as the real services' stand-ins are meant to.
func (s *Server) StartTLS(cfg *tls.Config) {
	s.Listener = tls.NewListener(s.Listener, cfg.Clone())
	s.serve("https://")
}

func (s *Server) serve(scheme string) {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		panic("loopback: server started twice")
	}
	s.started = true
	s.mu.Unlock()
	s.URL = scheme + s.Listener.Addr().String()
	hook := s.Config.ConnState
	s.Config.ConnState = func(c net.Conn, st http.ConnState) {
		s.track(c, st)
		if hook != nil {
			hook(c, st)
		}
	}
	go func() {
		defer close(s.served)
		_ = s.Config.Serve(s.Listener)
	}()
}

// track keeps the set of open connections, and closes a connection that goes idle (or opens)
// after Close began.
func (s *Server) track(c net.Conn, st http.ConnState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch st {
	case http.StateNew, http.StateActive, http.StateIdle:
		s.conns[c] = st
		if s.closed && st != http.StateActive {
			_ = c.Close()
		}
	case http.StateHijacked, http.StateClosed:
		delete(s.conns, c) // a hijacked connection is its handler's to close
		s.idle.Broadcast()
	}
}

// Close stops accepting connections, closes the idle ones, and waits until every request in
// progress has had its answer and its connection is closed. It may be called more than once.
func (s *Server) Close() {
	s.mu.Lock()
	started := s.started
	s.closed = true
	s.mu.Unlock()
	_ = s.Listener.Close()
	if !started {
		return
	}
	<-s.served // every accepted connection has been tracked
	s.Config.SetKeepAlivesEnabled(false)
	s.mu.Lock()
	for c, st := range s.conns {
		if st != http.StateActive {
			_ = c.Close()
		}
	}
	for len(s.conns) > 0 {
		s.idle.Wait()
	}
	s.mu.Unlock()
	// A client on http.DefaultTransport would otherwise keep connections to a closed port.
	if t, ok := http.DefaultTransport.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
}
