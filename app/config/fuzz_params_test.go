package config

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

// FuzzSettingValue feeds one setting of the table an arbitrary value through the stanza
// reader, which decodes every kind the table has (durations, numbers, booleans, URLs and
// their lists, levels, names): whatever the value, the reader returns a configuration or an
// *Error naming a setting of the table, and no error shows a secret's value.
func FuzzSettingValue(f *testing.F) {
	f.Add(uint8(0), "200000d", false)
	f.Add(uint8(3), "yes", true)
	f.Add(uint8(7), "https://user:pa55word@proxy.example.com:8080", true)
	f.Add(uint8(11), "-1", false)
	f.Add(uint8(20), " ", true)
	f.Fuzz(func(t *testing.T, which uint8, value string, hec bool) {
		s := settings[int(which)%len(settings)]
		if s.Param == "" {
			return // the modular input has no parameter for it
		}
		p := goodParams()
		if hec {
			p["output"], p["hec_url"], p["hec_token"] = "hec", "https://hec.example.com:8088", "8a3f2b1c-4d5e-6f70-8192-a3b4c5d6e7f8"
		}
		p[s.Param] = value
		_, err := FromParams(p, t.TempDir(), "tenant1")
		if err == nil {
			return
		}
		var ce *Error
		if !errors.As(err, &ce) {
			t.Fatalf("%s=%q: error %v is not a *config.Error", s.Param, value, err)
		}
		if find(func(x *Setting) bool { return x.Param == ce.Var }) == nil && ce.Var != "output" {
			t.Fatalf("%s=%q: error names %q, which is no setting: %v", s.Param, value, ce.Var, err)
		}
		msg := err.Error()
		for _, sec := range []string{"sup3r~secret", "8a3f2b1c-4d5e-6f70-8192-a3b4c5d6e7f8"} {
			if strings.Contains(msg, sec) {
				t.Fatalf("%s=%q: error shows a secret: %v", s.Param, value, err)
			}
		}
		if v := secretPart(s, value); len(v) >= 8 && strings.Contains(msg, v) {
			t.Fatalf("%s = %q: error shows its secret part: %v", s.Param, value, err)
		}
	})
}

// secretPart is what of a setting's value must never show: a secret's whole value, but a
// certificate's path is no secret, nor a proxy URL's other parts than its password.
func secretPart(s Setting, value string) string {
	v := strings.TrimSpace(value)
	switch {
	case !s.Secret:
		return ""
	case s.Param == "certificate" && !IsPEM(v):
		return ""
	case s.Param == "proxy_url":
		u, err := url.Parse(v)
		if err != nil {
			return v // where a password starts is not known: none of it may show
		}
		if u.User == nil {
			return ""
		}
		pw, _ := u.User.Password()
		return pw
	}
	return v
}
