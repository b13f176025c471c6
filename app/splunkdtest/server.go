// Package splunkdtest is a stand-in for the parts of splunkd's REST API a modular input uses:
// the session-key check, storage/passwords (list, read one, create, update, delete) and the
// update of a data input, which, as in splunkd, runs the input's validation again. It notes
// every entry whose clear password it hands out (Served): a list hands out every one.
//
// Like splunkd, it decodes a request path exactly once, segment by segment: an entity name
// sent as "tenant1%2Fclient_secret" is "tenant1/client_secret", and one escaped twice
// ("tenant1%252Fclient_secret") names another entity, which does not exist (404). Like
// splunkd, it serves its management port over TLS with a certificate like Splunk's default
// one unless told otherwise.
package splunkdtest

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"ta-defender-alerts/app/loopback"
)

// Server is the stand-in.
type Server struct {
	*loopback.Server
	SessionKey string
	App        string

	caPEM []byte

	mu        sync.Mutex
	passwords map[string]pw                // entity name → password
	inputs    map[string]map[string]string // scheme/name → settings
	// Validate, when set, runs on every input update, as splunkd runs --validate-arguments;
	// its error refuses the update.
	Validate func(name string, params map[string]string) error
	// FailStore makes storage/passwords writes fail (a missing capability, say).
	FailStore bool
	// Calls holds "METHOD escaped-path" for every request, in order.
	Calls []string
	// Served holds "realm|user" of every entry whose clear password a reply carried, in
	// order: what the caller was given to read, whether it asked for it or not.
	Served []string
}

type pw struct{ realm, user, password string }

// Options choose the certificate of the stand-in's management port.
type Options struct {
	// Certificate, when set, is served instead of the Splunk-like default one.
	Certificate *tls.Certificate
}

// New starts a splunkd stand-in over TLS, as splunkd's management port is, with a
// certificate like Splunk's default one: CN=SplunkServerDefaultCert, naming no host, signed by
// a CA of its own (which InstallCACert writes where Splunk keeps it).
func New(sessionKey, app string) *Server { return NewWith(sessionKey, app, Options{}) }

// NewWith starts a stand-in with the given options.
func NewWith(sessionKey, app string, o Options) *Server {
	s := &Server{SessionKey: sessionKey, App: app, passwords: map[string]pw{}, inputs: map[string]map[string]string{}}
	cert := o.Certificate
	if cert == nil {
		ca, leaf, err := DefaultCertificate()
		if err != nil {
			panic("splunkdtest: " + err.Error())
		}
		s.caPEM, cert = ca.CertPEM, &leaf
	}
	s.Server = loopback.NewUnstarted(s)
	// Clients that refuse the certificate are part of the tests; their handshake errors are not news.
	s.Server.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.Server.StartTLS(&tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS12})
	return s
}

// InstallCACert writes the CA of the default certificate (see New) to
// splunkHome/etc/auth/cacert.pem, where splunkd keeps it.
func (s *Server) InstallCACert(splunkHome string) error {
	dir := filepath.Join(splunkHome, "etc", "auth")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "cacert.pem"), s.caPEM, 0o600)
}

func msg(w http.ResponseWriter, status int, text string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"messages": []map[string]string{{"type": "ERROR", "text": text}}})
}

// segments splits an escaped path and decodes each segment once.
func segments(escaped string) ([]string, bool) {
	parts := strings.Split(strings.TrimPrefix(escaped, "/"), "/")
	for i, p := range parts {
		d, err := url.PathUnescape(p)
		if err != nil {
			return nil, false
		}
		parts[i] = d
	}
	return parts, true
}

// ServeHTTP routes a request the way splunkd does: on the path decoded once.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	escaped := r.URL.EscapedPath()
	s.mu.Lock()
	s.Calls = append(s.Calls, r.Method+" "+escaped)
	s.mu.Unlock()
	if r.Header.Get("Authorization") != "Splunk "+s.SessionKey {
		msg(w, 401, "call not properly authenticated")
		return
	}
	seg, ok := segments(escaped)
	if !ok || len(seg) < 5 || seg[0] != "servicesNS" || seg[1] != "nobody" || seg[2] != s.App {
		msg(w, 404, "Not Found")
		return
	}
	rest := seg[3:]
	switch {
	case len(rest) == 2 && rest[0] == "storage" && rest[1] == "passwords" && r.Method == http.MethodGet:
		s.list(w, r)
	case len(rest) == 3 && rest[0] == "storage" && rest[1] == "passwords" && r.Method == http.MethodGet:
		s.get(w, rest[2])
	case len(rest) == 2 && rest[0] == "storage" && rest[1] == "passwords" && r.Method == http.MethodPost:
		s.create(w, r)
	case len(rest) == 3 && rest[0] == "storage" && rest[1] == "passwords" && r.Method == http.MethodPost:
		s.update(w, r, rest[2])
	case len(rest) == 3 && rest[0] == "storage" && rest[1] == "passwords" && r.Method == http.MethodDelete:
		s.remove(w, rest[2])
	case len(rest) == 4 && rest[0] == "data" && rest[1] == "inputs" && r.Method == http.MethodPost:
		s.input(w, r, rest[2], rest[3])
	default:
		msg(w, 404, "Not Found")
	}
}

func entity(realm, user string) string {
	esc := strings.NewReplacer(`\`, `\\`, ":", `\:`)
	return esc.Replace(realm) + ":" + esc.Replace(user) + ":"
}

// list answers a list the way splunkd does: every entry the session may read, of every app
// and realm, with its clear password, count entries from offset (count defaults to 30; 0 is
// all), sorted by name.
func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	count, offset := 30, 0
	if v := q.Get("count"); v != "" {
		count, _ = strconv.Atoi(v)
	}
	if v := q.Get("offset"); v != "" {
		offset, _ = strconv.Atoi(v)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.passwords))
	for name := range s.passwords {
		names = append(names, name)
	}
	sort.Strings(names)
	names = names[min(offset, len(names)):]
	if count > 0 {
		names = names[:min(count, len(names))]
	}
	entries := []map[string]any{}
	for _, name := range names {
		entries = append(entries, s.entry(name))
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"entry": entries, "paging": map[string]int{"total": len(s.passwords), "perPage": count, "offset": offset}})
}

// get answers for one entity, named realm:user: (colons and backslashes escaped), or 404.
func (s *Server) get(w http.ResponseWriter, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.passwords[name]; !ok {
		msg(w, 404, "Could not find object id="+name)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"entry": []map[string]any{s.entry(name)}})
}

// entry is a reply's entry for a stored password, noted in Served. s.mu is held.
func (s *Server) entry(name string) map[string]any {
	p := s.passwords[name]
	s.Served = append(s.Served, p.realm+"|"+p.user)
	return map[string]any{"name": name, "content": map[string]string{
		"realm": p.realm, "username": p.user, "clear_password": p.password, "encr_password": "$7$…"}}
}

func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.FailStore {
		msg(w, 403, "You (user=splunk-system-user) do not have permission to perform this operation (requires capability: list_storage_passwords OR edit_storage_passwords OR admin_all_objects).")
		return
	}
	name := entity(r.PostForm.Get("realm"), r.PostForm.Get("name"))
	if _, ok := s.passwords[name]; ok {
		msg(w, 409, "An object with name="+r.PostForm.Get("name")+" already exists")
		return
	}
	s.passwords[name] = pw{r.PostForm.Get("realm"), r.PostForm.Get("name"), r.PostForm.Get("password")}
	w.WriteHeader(201)
	_, _ = w.Write([]byte(`{"entry":[]}`))
}

func (s *Server) update(w http.ResponseWriter, r *http.Request, name string) {
	_ = r.ParseForm()
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.passwords[name]
	if !ok {
		msg(w, 404, "Could not find object id="+name)
		return
	}
	if s.FailStore {
		msg(w, 403, "You do not have permission to perform this operation")
		return
	}
	p.password = r.PostForm.Get("password")
	s.passwords[name] = p
	_, _ = w.Write([]byte(`{"entry":[]}`))
}

func (s *Server) remove(w http.ResponseWriter, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.passwords[name]; !ok {
		msg(w, 404, "Could not find object id="+name)
		return
	}
	delete(s.passwords, name)
	_, _ = w.Write([]byte(`{"entry":[]}`))
}

// input edits an existing input; like splunkd, an input that does not exist is a 404.
func (s *Server) input(w http.ResponseWriter, r *http.Request, scheme, name string) {
	_ = r.ParseForm()
	key := scheme + "/" + name
	s.mu.Lock()
	current, ok := s.inputs[key]
	merged := map[string]string{}
	for k, v := range current {
		merged[k] = v
	}
	for k := range r.PostForm {
		merged[k] = r.PostForm.Get(k)
	}
	validate := s.Validate
	s.mu.Unlock()
	if !ok {
		msg(w, 404, "Could not find object id="+name)
		return
	}
	if validate != nil {
		if err := validate(name, merged); err != nil {
			msg(w, 400, err.Error())
			return
		}
	}
	s.mu.Lock()
	s.inputs[key] = merged
	s.mu.Unlock()
	_, _ = w.Write([]byte(`{"entry":[]}`))
}

// SetInput stores an input's settings as inputs.conf would hold them.
func (s *Server) SetInput(scheme, name string, params map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[string]string{}
	for k, v := range params {
		m[k] = v
	}
	s.inputs[scheme+"/"+name] = m
}

// Input returns an input's settings.
func (s *Server) Input(scheme, name string) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[string]string{}
	for k, v := range s.inputs[scheme+"/"+name] {
		m[k] = v
	}
	return m
}

// SetPassword stores a password as an earlier run (or another app) would have.
func (s *Server) SetPassword(realm, user, password string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.passwords[entity(realm, user)] = pw{realm, user, password}
}

// ServedEntries returns Served: "realm|user" of every entry whose clear password a reply
// carried, in order.
func (s *Server) ServedEntries() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.Served...)
}

// Passwords returns the stored passwords by realm|user.
func (s *Server) Passwords() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[string]string{}
	for _, p := range s.passwords {
		m[p.realm+"|"+p.user] = p.password
	}
	return m
}
