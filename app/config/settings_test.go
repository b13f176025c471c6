package config

import (
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"ta-defender-alerts/app/defender"
	"ta-defender-alerts/app/hec"
)

// envconfig reads the environment through raw's tags: they name and default exactly what the
// table does, and every row fills a field of a type the stanza reader decodes.
func TestTagsMatchTable(t *testing.T) {
	rt := reflect.TypeFor[raw]()
	for i := range rt.NumField() {
		f := rt.Field(i)
		if !f.IsExported() {
			continue
		}
		s := find(func(s *Setting) bool { return s.field == f.Name })
		if s == nil {
			t.Errorf("raw.%s is in no row of the settings table", f.Name)
			continue
		}
		env := ""
		if tag := f.Tag.Get("envconfig"); tag != "" {
			env = "DEFENDER_" + tag
		} else if f.Tag.Get("ignored") != "true" {
			t.Errorf("raw.%s has neither an envconfig tag nor ignored:\"true\"; envconfig would read DEFENDER_%s", f.Name, strings.ToUpper(f.Name))
		}
		if env != s.Env || (env != "" && f.Tag.Get("default") != s.Default) {
			t.Errorf("raw.%s reads %q, default %q; the table says %q, default %q", f.Name, env, f.Tag.Get("default"), s.Env, s.Default)
		}
	}
	seen := map[string]bool{}
	for i := range settings {
		s := &settings[i]
		if _, ok := rt.FieldByName(s.field); !ok {
			t.Errorf("the row of %s%s fills raw.%s, which does not exist", s.Env, s.Param, s.field)
			continue
		}
		for _, n := range []string{"field " + s.field, "env " + s.Env, "param " + s.Param} {
			if !strings.HasSuffix(n, " ") && seen[n] {
				t.Errorf("two rows have the %s", n)
			}
			seen[n] = true
		}
		if s.Param != "" && !s.Splunk && (s.Title == "" || s.Description == "") {
			t.Errorf("%s is declared without a title or a description", s.Param)
		}
		if s.Env != "" && s.Doc == "" {
			t.Errorf("%s has no text for the README", s.Env)
		}
		var r raw
		if err := r.set(s, s.Default); err != nil {
			t.Errorf("%s%s: the default %q: %v", s.Env, s.Param, s.Default, err)
		}
	}
}

// Each defender and hec field the table maps exists, and its errors name the setting in
// either vocabulary; a field no setting fills keeps its own name.
func TestExplainNamesTheSetting(t *testing.T) {
	for i := range settings {
		s := &settings[i]
		if s.defender != "" {
			if _, ok := reflect.TypeFor[defender.Config]().FieldByName(s.defender); !ok {
				t.Errorf("defender.Config has no field %s", s.defender)
			}
			checkExplain(t, &defender.FieldError{Field: s.defender, Msg: "is wrong"}, s)
		}
		if s.hec != "" {
			if _, ok := reflect.TypeFor[hec.Config]().FieldByName(s.hec); !ok {
				t.Errorf("hec.Config has no field %s", s.hec)
			}
			checkExplain(t, &hec.FieldError{Field: s.hec, Msg: "is wrong"}, s)
		}
	}
	for _, f := range []string{"BatchCount", "GzipLevel"} {
		var ce *Error
		if err := envNames.explain(&hec.FieldError{Field: f, Msg: "is wrong"}, "APIURL"); !errors.As(err, &ce) || ce.Var != f {
			t.Errorf("hec's %s: %v, want it named %s (no setting fills it)", f, err, f)
		}
	}
	plain := errors.New("not a field error")
	if err := envNames.explain(plain, "APIURL"); err != plain {
		t.Errorf("explain changed %v into %v", plain, err)
	}
}

func checkExplain(t *testing.T, fe error, s *Setting) {
	t.Helper()
	want := map[vocab]string{envNames: s.Env, paramNames: s.Param}
	if s.Param == "" {
		want[paramNames] = s.Env // the modular input cannot set it: the only name it has
	}
	for v, name := range want {
		var ce *Error
		if err := v.explain(fe, "APIURL"); !errors.As(err, &ce) || ce.Var != name || ce.Msg != "is wrong" {
			t.Errorf("%v becomes %v, want it named %s", fe, err, name)
		}
	}
}

// A value of the wrong type names the setting as its source calls it, in both sources.
func TestDecodeErrorsNameTheSetting(t *testing.T) {
	for i := range settings {
		s := &settings[i]
		if (&raw{}).set(s, "bogus") == nil {
			continue // a string takes anything
		}
		if s.Env != "" {
			t.Run(s.Env, func(t *testing.T) {
				env := good()
				env[s.Env] = "bogus"
				setEnv(t, env)
				_, err := FromEnv()
				var ce *Error
				if !errors.As(err, &ce) || ce.Var != s.Env || ce.Value != "bogus" {
					t.Errorf("err = %#v, want one naming %s and its value", err, s.Env)
				}
			})
		}
		if s.Param != "" {
			t.Run(s.Param, func(t *testing.T) {
				p := goodParams()
				p[s.Param] = " bogus "
				_, err := FromParams(p, t.TempDir(), "tenant1")
				var ce *Error
				if !errors.As(err, &ce) || ce.Var != s.Param || ce.Value != "bogus" {
					t.Errorf("err = %#v, want one naming %s and its value", err, s.Param)
				}
			})
		}
	}
}

// The stanza reader reads the table's parameters and nothing else: Splunk's own settings and
// whatever else a stanza holds change nothing and fail nothing, among them the names of
// settings only the standalone collector has.
func TestStanzaIgnoresWhatItDoesNotDeclare(t *testing.T) {
	cp := t.TempDir()
	want, err := FromParams(goodParams(), cp, "tenant1")
	if err != nil {
		t.Fatal(err)
	}
	p := goodParams()
	for k, v := range map[string]string{
		"interval": "-1", "disabled": "maybe", "python.version": "python3", "start_by_shell": "false",
		"log_format": "xml", "page_size": "lots", "hec_batch_bytes": "x", "hec_gzip": "sometimes",
		"hec_max_in_flight": "0", "metrics_addr": ":1", "state_dir": "/nowhere", "input": "other", "client_secret_file": "/nope",
		"hec_token_file": "/nope", "DEFENDER_START": "0s", "Start": "0s",
	} {
		p[k] = v
	}
	got, err := FromParams(p, cp, "tenant1")
	if err != nil {
		t.Fatalf("a stanza with settings the input does not declare: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("undeclared parameters changed the configuration:\n got %+v\nwant %+v", got, want)
	}
}

// No error shows a secret, whichever setting is wrong, in either source.
func TestSecretsNeverInErrors(t *testing.T) {
	const mark = "Mark-s3cr3t"
	dir := t.TempDir()
	breakers := []map[string]string{
		{"cloud": "mars", "DEFENDER_CLOUD": "mars"},
		{"overlap": "ages", "DEFENDER_OVERLAP": "ages"},
		{"start": "0s", "DEFENDER_START": "0s"},
		{"output": "hec", "hec_url": "htp://x", "DEFENDER_HEC_URL": "htp://x"},
		{"hec_ack": "sometimes", "DEFENDER_HEC_ACK": "sometimes", "output": "hec", "hec_url": "https://splunk:8088"},
		{"hec_ca_file": filepath.Join(dir, "nope"), "DEFENDER_HEC_CA_FILE": filepath.Join(dir, "nope"), "output": "hec", "hec_url": "https://splunk:8088"},
		{"hec_insecure_skip_verify": "perhaps", "DEFENDER_HEC_INSECURE_SKIP_VERIFY": "perhaps"},
		{"ca_file": filepath.Join(dir, "nope"), "DEFENDER_CA_FILE": filepath.Join(dir, "nope")},
	}
	// What each secret holds to be a secret (the environment's certificate is a path, not a
	// secret), and what makes that value itself refused.
	values := map[string]string{
		"client_secret": mark, "hec_token": mark, "proxy_url": "http://alice:" + mark + "@proxy.example.com:3128",
		"certificate": "-----BEGIN CERTIFICATE-----\n" + mark + "\n-----END CERTIFICATE-----",
	}
	refused := map[string]map[string]string{
		"client_secret": {"certificate": values["certificate"], "DEFENDER_CLIENT_SECRET_FILE": "/nope"},
		"hec_token":     {"output": "hec", "DEFENDER_HEC_TOKEN_FILE": "/nope"},
		"proxy_url":     {"proxy_url": "ftp://alice:" + mark + "@proxy.example.com", "DEFENDER_PROXY_URL": "ftp://alice:" + mark + "@proxy.example.com"},
		"certificate":   {"client_secret": ""},
	}
	for i := range settings {
		s := &settings[i]
		if !s.Secret {
			continue
		}
		v, ok := values[s.Param]
		if !ok {
			t.Fatalf("no test value for the secret %s", s.Param)
		}
		for _, brk := range append([]map[string]string{refused[s.Param]}, breakers...) {
			check := func(t *testing.T, err error) {
				t.Helper()
				var ce *Error
				if err == nil {
					t.Fatalf("no error with %v", brk)
				}
				if strings.Contains(err.Error(), mark) || (errors.As(err, &ce) && strings.Contains(ce.Value, mark)) {
					t.Errorf("the error shows %s: %v", s.Param, err)
				}
			}
			t.Run(s.Param, func(t *testing.T) {
				p := goodParams()
				p[s.Param] = v
				for k, bv := range brk {
					if !strings.HasPrefix(k, "DEFENDER_") {
						p[k] = bv
					}
				}
				_, err := FromParams(p, t.TempDir(), "tenant1")
				check(t, err)
			})
			if s.Env == "" || s.Param == "certificate" {
				continue
			}
			t.Run(s.Env, func(t *testing.T) {
				env := good()
				env[s.Env] = v
				for k, bv := range brk {
					if strings.HasPrefix(k, "DEFENDER_") {
						env[k] = bv
					}
				}
				setEnv(t, env)
				_, err := FromEnv()
				check(t, err)
			})
		}
	}
}
