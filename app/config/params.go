package config

import (
	"log/slog"
	"strings"

	"ta-defender-alerts/app/secret"
)

// FromParams builds the configuration of a modular input stanza. params hold the stanza's
// values with secrets already resolved; certificate is PEM text, or a path already resolved by
// the caller. Only the parameters of the settings table are read, Splunk's own among them
// (index, sourcetype, source, host); any other (interval, disabled, …) is Splunk's business.
// A setting the modular input has no parameter for takes its default. Errors name the
// parameter. An unset source is the input's name (the modular input sets its stanza's
// name first).
func FromParams(params map[string]string, checkpointDir, input string) (*Config, error) {
	r := &raw{names: paramNames}
	for i := range settings {
		s := &settings[i]
		v := s.Default
		if p := params[s.Param]; s.Param != "" && strings.TrimSpace(p) != "" {
			v = p
		}
		if err := r.set(s, v); err != nil {
			shown := strings.TrimSpace(v)
			if s.Secret {
				shown = ""
			}
			return nil, &Error{Var: r.names.name(s.field), Value: shown, Msg: err.Error()}
		}
	}
	r.StateDir, r.Input = checkpointDir, input
	if r.StateDir == "" {
		return nil, &Error{Var: "checkpoint_dir", Msg: "must not be empty"}
	}
	if r.Output = strings.ToLower(r.Output); r.Output != "stdout" && r.Output != "hec" {
		return nil, &Error{Var: "output", Value: r.Output, Msg: "must be stdout (events go to splunkd) or hec"}
	}
	if r.HECIndex == "default" {
		r.HECIndex = "" // Splunk's "default" means: the default index, so send none
	}
	if IsPEM(r.CertFile) {
		r.certPEM, r.CertFile = secret.String(r.CertFile), ""
	}
	return r.build()
}

// ParamLogLevel reads a stanza's log_level (unset: info) before the rest, so that the input
// logs at its level from its first line; FromParams checks it again, alike.
func ParamLogLevel(params map[string]string) (slog.Level, error) {
	v := strings.TrimSpace(params["log_level"])
	l, err := parseLevel(v)
	if err != nil {
		return 0, &Error{Var: "log_level", Value: v, Msg: logLevelMsg}
	}
	return l, nil
}
