package config

import (
	"strconv"
	"strings"

	"ta-defender-alerts/app/secret"
)

// ParamOfVar is the modular input's name for each standalone setting.
var ParamOfVar = map[string]string{
	"DEFENDER_TENANT_ID": "tenant_id", "DEFENDER_CLIENT_ID": "client_id", "DEFENDER_CLIENT_SECRET": "client_secret",
	"DEFENDER_CERT_FILE": "certificate", "DEFENDER_CLOUD": "cloud", "DEFENDER_REGION": "region",
	"DEFENDER_API_URL": "api_url", "DEFENDER_LOGIN_URL": "login_url", "DEFENDER_PROXY_URL": "proxy_url",
	"DEFENDER_CA_FILE": "ca_file", "DEFENDER_START": "start", "DEFENDER_OVERLAP": "overlap",
	"DEFENDER_HEC_URL": "hec_url", "DEFENDER_HEC_TOKEN": "hec_token", "DEFENDER_HEC_ACK": "hec_ack",
	"DEFENDER_HEC_CA_FILE": "hec_ca_file", "DEFENDER_HEC_INSECURE_SKIP_VERIFY": "hec_insecure_skip_verify",
	"DEFENDER_HEC_INDEX": "index", "DEFENDER_HEC_SOURCETYPE": "sourcetype", "DEFENDER_HEC_HOST": "host",
	"DEFENDER_HEC_SOURCE": "source", "DEFENDER_PAGE_SIZE": "page_size", "DEFENDER_STATE_DIR": "checkpoint_dir",
}

// FromParams builds the configuration of a modular input stanza. params hold the stanza's
// values with secrets already resolved; certificate is PEM text, or a path already resolved by
// the caller. Errors name the stanza parameter.
func FromParams(params map[string]string, checkpointDir, input string) (*Config, error) {
	name := func(v string) string {
		if p, ok := ParamOfVar[v]; ok {
			return p
		}
		return strings.ToLower(strings.TrimPrefix(v, "DEFENDER_"))
	}
	get := func(k, def string) string {
		if v := strings.TrimSpace(params[k]); v != "" {
			return v
		}
		return def
	}
	e := &env{
		TenantID: get("tenant_id", ""), ClientID: get("client_id", ""), ClientSecret: secret.String(params["client_secret"]),
		Cloud: get("cloud", "commercial"), Region: get("region", ""), APIURL: get("api_url", ""), LoginURL: get("login_url", ""),
		ProxyURL: get("proxy_url", ""), CAFile: get("ca_file", ""), PageSize: 10000, StateDir: checkpointDir, Input: input,
		HECURL: get("hec_url", ""), HECToken: secret.String(params["hec_token"]), HECAck: get("hec_ack", "auto"),
		HECCAFile: get("hec_ca_file", ""), HECSourcetype: get("sourcetype", "ms:defender:atp:alerts"),
		HECSource: get("source", "defender_alerts"), HECHost: get("host", ""), HECBatchBytes: 1 << 20, HECGzip: true,
		HECMaxInFlight: 1, LogLevel: get("log_level", "info"), LogFormat: "text",
		output: strings.ToLower(get("output", "stdout")), name: name,
	}
	if idx := get("index", ""); idx != "default" {
		e.HECIndex = idx // Splunk's "default" means: the default index, so send none
	}
	if cert := strings.TrimSpace(params["certificate"]); strings.HasPrefix(cert, "-----BEGIN") {
		e.certPEM = secret.String(cert)
	} else {
		e.CertFile = cert
	}
	if e.output != "stdout" && e.output != "hec" {
		return nil, &Error{Var: "output", Value: e.output, Msg: "must be stdout (events go to splunkd) or hec"}
	}
	for _, d := range []struct {
		param string
		def   string
		dst   *Duration
	}{{"start", "24h", &e.Start}, {"overlap", "10m", &e.Overlap}, {"hec_ack_timeout", "2m", &e.HECAckTimeout}, {"hec_ack_interval", "1s", &e.HECAckInterval}, {"hec_linger", "2s", &e.HECLinger}} {
		if err := d.dst.Decode(get(d.param, d.def)); err != nil {
			return nil, &Error{Var: d.param, Value: params[d.param], Msg: "is not a duration such as 90s, 10m, 24h or 7d"}
		}
	}
	e.Interval = Duration(60e9) // splunkd's interval schedules runs; this is unused
	if v := get("hec_insecure_skip_verify", "false"); v != "" {
		b, err := parseBool(v)
		if err != nil {
			return nil, &Error{Var: "hec_insecure_skip_verify", Value: v, Msg: "must be true or false"}
		}
		e.HECInsecureSkipVerify = b
	}
	return e.build()
}

// parseBool reads Splunk's booleans: 1/0, true/false, yes/no, t/f, y/n.
func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "1", "true", "yes", "t", "y":
		return true, nil
	case "0", "false", "no", "f", "n":
		return false, nil
	}
	return strconv.ParseBool(v)
}
