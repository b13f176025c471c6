// Package splunkdtest is a stand-in for the parts of splunkd's REST API a modular input uses:
// the session-key check, storage/passwords (list, create, update, delete) and the update of a
// data input, which, as in splunkd, runs the input's validation again.
package splunkdtest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
)

// Server is the stand-in.
type Server struct {
	*httptest.Server
	SessionKey string
	App        string

	mu        sync.Mutex
	passwords map[string]pw                // entity name → password
	inputs    map[string]map[string]string // scheme/name → settings
	// Validate, when set, runs on every input update, as splunkd runs --validate-arguments;
	// its error refuses the update.
	Validate func(name string, params map[string]string) error
	// FailStore makes storage/passwords writes fail (a missing capability, say).
	FailStore bool
	Calls     []string
}

type pw struct{ realm, user, password string }

// New starts a splunkd stand-in over TLS, as splunkd's management port is.
func New(sessionKey, app string) *Server {
	s := &Server{SessionKey: sessionKey, App: app, passwords: map[string]pw{}, inputs: map[string]map[string]string{}}
	mux := http.NewServeMux()
	prefix := "/servicesNS/nobody/" + app
	mux.HandleFunc("GET "+prefix+"/storage/passwords", s.auth(s.list))
	mux.HandleFunc("POST "+prefix+"/storage/passwords", s.auth(s.create))
	mux.HandleFunc("POST "+prefix+"/storage/passwords/{name}", s.auth(s.update))
	mux.HandleFunc("DELETE "+prefix+"/storage/passwords/{name}", s.auth(s.remove))
	mux.HandleFunc("POST "+prefix+"/data/inputs/{scheme}/{name}", s.auth(s.input))
	s.Server = httptest.NewTLSServer(mux)
	return s
}

func msg(w http.ResponseWriter, status int, text string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"messages": []map[string]string{{"type": "ERROR", "text": text}}})
}

func (s *Server) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.Calls = append(s.Calls, r.Method+" "+r.URL.Path)
		s.mu.Unlock()
		if r.Header.Get("Authorization") != "Splunk "+s.SessionKey {
			msg(w, 401, "call not properly authenticated")
			return
		}
		h(w, r)
	}
}

func entity(realm, user string) string {
	esc := strings.NewReplacer(`\`, `\\`, ":", `\:`)
	return esc.Replace(realm) + ":" + esc.Replace(user) + ":"
}

func (s *Server) list(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var entries []map[string]any
	for name, p := range s.passwords {
		entries = append(entries, map[string]any{"name": name, "content": map[string]string{
			"realm": p.realm, "username": p.user, "clear_password": p.password, "encr_password": "$7$…"}})
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"entry": entries})
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

func (s *Server) update(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	s.mu.Lock()
	defer s.mu.Unlock()
	name := r.PathValue("name")
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

func (s *Server) remove(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name := r.PathValue("name")
	if _, ok := s.passwords[name]; !ok {
		msg(w, 404, "Could not find object id="+name)
		return
	}
	delete(s.passwords, name)
	_, _ = w.Write([]byte(`{"entry":[]}`))
}

func (s *Server) input(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	key := r.PathValue("scheme") + "/" + r.PathValue("name")
	s.mu.Lock()
	merged := map[string]string{}
	for k, v := range s.inputs[key] {
		merged[k] = v
	}
	for k := range r.PostForm {
		merged[k] = r.PostForm.Get(k)
	}
	validate := s.Validate
	s.mu.Unlock()
	if validate != nil {
		if err := validate(r.PathValue("name"), merged); err != nil {
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

// Passwords returns the stored passwords by realm:user.
func (s *Server) Passwords() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[string]string{}
	for _, p := range s.passwords {
		m[p.realm+"|"+p.user] = p.password
	}
	return m
}
