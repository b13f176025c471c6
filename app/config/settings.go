package config

import (
	"errors"
	"reflect"
	"strconv"
	"strings"

	"ta-defender-alerts/app/defender"
	"ta-defender-alerts/app/hec"
	"ta-defender-alerts/app/secret"
	"ta-defender-alerts/app/syslog"
)

// Setting is one setting in both of the collector's vocabularies: an environment variable of
// the standalone collector and a parameter of the modular input. The table below is the one
// place a setting is named, defaulted and described; the environment reader (through the raw
// struct's envconfig tags, which a test holds equal to it), the stanza reader, the errors, the
// input's scheme, README/inputs.conf.spec and the README's settings table all follow it.
type Setting struct {
	Env   string // environment variable; "" when the standalone collector has none
	Param string // modular input parameter; "" when the modular input has none
	Title string // the input page's label

	// Default is the value of an unset or empty setting, in the setting's own syntax.
	Default string
	// Required: the input page asks for it (the environment's required settings are
	// checked when the configuration is validated).
	Required bool
	// Secret: it may hold a secret, which never appears in an error and which the modular
	// input moves to Splunk's password storage (a certificate given as a path is no secret,
	// nor a proxy URL without a password: the input keeps those, errors show them).
	Secret bool
	// Splunk: Param is one of Splunk's own (index, host, …), which come with every stanza:
	// the stanza reader reads it, the scheme and the spec leave it to Splunk.
	Splunk bool

	Description string // the input page's and inputs.conf.spec's text
	Doc         string // the README's text (markdown)
	DocDefault  string // the README's default when Default does not tell it all

	field    string // the raw field it fills
	defender string // the defender.Config field whose errors are about it
	hec      string // the hec.Config field whose errors are about it
	syslog   string // the syslog.Options field whose errors are about it
}

// Settings returns the table, in the order of the scheme and the documentation.
func Settings() []Setting { return append([]Setting(nil), settings...) }

// DataType is the setting's type for the scheme: string, number or boolean.
func (s Setting) DataType() string {
	f, _ := reflect.TypeFor[raw]().FieldByName(s.field)
	switch f.Type.Kind() {
	case reflect.Bool:
		return "boolean"
	case reflect.Int:
		return "number"
	}
	return "string" // strings, secrets, lists and durations
}

const outputDoc = "output = hec: "

var settings = []Setting{
	{Env: "DEFENDER_TENANT_ID", Param: "tenant_id", Title: "Tenant ID", Required: true, field: "TenantID", defender: "TenantID",
		Description: "The Entra ID tenant: its GUID, or a domain such as contoso.onmicrosoft.com.",
		Doc:         "the Entra app's tenant: its GUID or a domain such as `contoso.onmicrosoft.com`", DocDefault: "required"},
	{Env: "DEFENDER_CLIENT_ID", Param: "client_id", Title: "Client ID", Required: true, field: "ClientID", defender: "ClientID",
		Description: "Application (client) ID of the Entra app, with admin consent for its feed's application permission: WindowsDefenderATP Alert.Read.All (endpoint-alerts) or Microsoft Graph SecurityAlert.Read.All (graph-alerts).",
		Doc:         "the Entra app's application (client) ID", DocDefault: "required"},
	{Env: "DEFENDER_CLIENT_SECRET", Param: "client_secret", Title: "Client secret", Secret: true, field: "ClientSecret", defender: "ClientSecret",
		Description: "The app's client secret (its Value, not its Secret ID). Moved to Splunk's password storage on the first run; the field then shows ********. Set this or certificate.",
		Doc:         "the app's client secret (its Value); set it, `DEFENDER_CLIENT_SECRET_FILE` or `DEFENDER_CERT_FILE`"},
	{Env: "DEFENDER_CLIENT_SECRET_FILE", field: "ClientSecretFile",
		Doc: "a file holding the client secret, instead of `DEFENDER_CLIENT_SECRET`"},
	{Env: "DEFENDER_CERT_FILE", Param: "certificate", Title: "Certificate", Secret: true, field: "CertFile", defender: "CertificatePEM",
		Description: "Instead of a secret: PEM text holding the app's certificate and its unencrypted RSA key (moved to password storage like a secret), or the path of such a file inside this app's folder.",
		Doc:         "instead of a secret: a PEM file with the certificate and its unencrypted RSA key"},
	{Env: "DEFENDER_CLOUD", Param: "cloud", Title: "Cloud", Default: "commercial", field: "Cloud", defender: "Cloud",
		Description: "commercial (default), gcc, gcc-high or dod.",
		Doc:         "`commercial` `gcc` `gcc-high` `dod`"},
	{Env: "DEFENDER_REGION", Param: "region", Title: "Region", field: "Region", defender: "Region",
		Description: "Commercial cloud only, optional: us, eu, uk, au, swa or ina, for the regional API host.",
		Doc:         "commercial cloud only, for the regional API host: `us` `eu` `uk` `au` `swa` `ina`", DocDefault: "the cloud's own host"},
	{Env: "DEFENDER_API_URL", Param: "api_url", Title: "API URL (advanced)", field: "APIURL", defender: "APIURL",
		Description: "Overrides the cloud's API base URL (https). The token scope stays the cloud's.",
		Doc:         "API base URL override (https, or http on loopback); the token scope stays the cloud's", DocDefault: "from the cloud"},
	{Env: "DEFENDER_LOGIN_URL", Param: "login_url", Title: "Login URL (advanced)", field: "LoginURL", defender: "LoginURL",
		Description: "Overrides the cloud's Entra ID login base URL (https).",
		Doc:         "Entra ID login base URL override (https, or http on loopback)", DocDefault: "from the cloud"},
	{Env: "DEFENDER_PROXY_URL", Param: "proxy_url", Title: "Proxy URL", Secret: true, field: "ProxyURL", defender: "ProxyURL",
		Description: "http(s)://[user:password@]host:port for calls to Microsoft. A URL with a password is moved to password storage and masked. Default: HTTPS_PROXY and NO_PROXY.",
		Doc:         "proxy for calls to Microsoft, `http(s)://[user:password@]host:port`", DocDefault: "`HTTPS_PROXY`, `NO_PROXY`"},
	{Env: "DEFENDER_CA_FILE", Param: "ca_file", Title: "CA file", field: "CAFile", defender: "CAFile",
		Description: "Extra CA certificates (PEM file) for calls to Microsoft, such as a TLS-inspecting proxy's.",
		Doc:         "extra CA certificates (PEM file) for calls to Microsoft, such as a TLS-inspecting proxy's"},
	{Env: "DEFENDER_START", Param: "start", Title: "Start", Default: "24h", field: "Start",
		Description: "How far back the first run reads: 90s, 10m, 24h or 7d. Default 24h.",
		Doc:         "how far back the first run reads"},
	{Env: "DEFENDER_OVERLAP", Param: "overlap", Title: "Overlap", Default: "10m", field: "Overlap",
		Description: "How far back each run re-reads for alerts that show up late; versions already sent are not sent again. Default 10m.",
		Doc:         "re-read window for alerts that show up late"},
	{Env: "DEFENDER_INTERVAL", Default: "60s", field: "Interval",
		Doc: "poll interval of `run` (the modular input's runs follow its `interval`)"},
	{Env: "DEFENDER_STATE_DIR", Default: "./state", field: "StateDir",
		Doc: "checkpoint folder (with its quick saves and the dead-letter file), created 0700; on Unix refused if group or others can write to it or another user owns it (the modular input uses splunkd's `checkpoint_dir`)"},
	{Env: "DEFENDER_INPUT", field: "Input",
		Doc: "name of this input's checkpoint (the modular input's is its stanza name)", DocDefault: "the tenant id"},
	{Env: "DEFENDER_PAGE_SIZE", field: "PageSize", defender: "PageSize",
		Doc: "alerts per API call (`$top`)", DocDefault: "the feed's largest: `10000` (endpoint-alerts), `500` (graph-alerts), `100` (incidents)"},
	{Env: "DEFENDER_FEED", Param: "feed", Title: "Feed", Default: DefaultFeed, field: "Feed", defender: "Feed",
		Description: "What the input reads: endpoint-alerts (default: the Defender for Endpoint Alert API, sourcetype ms:defender:atp:alerts, permission WindowsDefenderATP Alert.Read.All), graph-alerts (the Microsoft Graph security API's alerts of every Defender product, sourcetype ms:defender:graph:alerts, permission Microsoft Graph SecurityAlert.Read.All) or incidents (Defender XDR incidents, sourcetype ms365:defender:incident, each new alert version of an incident as ms365:defender:incident:alerts, permission Microsoft Threat Protection Incident.Read.All). One feed per input; each keeps its own checkpoint.",
		Doc:         "what to read, one feed or several comma-separated, each on its own checkpoint: `endpoint-alerts` (the Defender for Endpoint Alert API), `graph-alerts` (Microsoft Graph security alerts of every Defender product), `incidents` (Defender XDR incidents and their alerts)"},
	{Env: "DEFENDER_SHAPE", Param: "shape", Title: "Event shape", Default: "alert", field: "Shape",
		Description: "endpoint-alerts: alert (default) sends each alert as the Alert API gives it (sourcetype ms:defender:atp:alerts); detection sends it as the old SIEM API's detections, one per evidence item, with that API's field names (sourcetype ms:defender:atp:detections), for content written for that feed.",
		Doc:         "`endpoint-alerts`: `alert` sends each alert as the API gives it; `detection` sends the old SIEM API's detections, one per evidence item (sourcetype `ms:defender:atp:detections`)"},
	{Env: "DEFENDER_INCIDENTS_URL", Param: "incidents_url", Title: "Incidents API URL (advanced)", field: "IncidentsURL",
		Description: "incidents: overrides the cloud's Defender XDR API base URL (https). The token scope stays the cloud's.",
		Doc:         "`incidents`: Defender XDR API base URL override (https, or http on loopback); the token scope stays the cloud's", DocDefault: "from the cloud and region"},
	{Env: "DEFENDER_GRAPH_URL", Param: "graph_url", Title: "Graph URL (advanced)", field: "GraphURL",
		Description: "graph-alerts: overrides the cloud's Microsoft Graph base URL (https). The token scope stays the cloud's.",
		Doc:         "`graph-alerts`: Microsoft Graph base URL override (https, or http on loopback); the token scope stays the cloud's", DocDefault: "from the cloud"},
	{Env: "DEFENDER_GRAPH_EXCLUDE_SOURCES", Param: "graph_exclude_sources", Title: "Graph: service sources left out", field: "GraphExcludeSources",
		Description: "graph-alerts, optional: service sources whose alerts are not indexed, comma-separated, such as microsoftDefenderForEndpoint where an endpoint-alerts input already indexes them.",
		Doc:         "`graph-alerts`: service sources left out, comma-separated, such as `microsoftDefenderForEndpoint` where `endpoint-alerts` already reads them", DocDefault: "none"},
	{Param: "output", Title: "Output", Default: "stdout", field: "Output",
		Description: "stdout (default): events go to splunkd through this input, on this node's own connection. hec: events go to the HTTP Event Collector at hec_url."},
	{Env: "DEFENDER_OUTPUT", Default: "hec", field: "EnvOutput",
		Doc: "where events go: `hec` (Splunk's HTTP Event Collector) or `syslog` (other SIEMs, see \"Send to other SIEMs over syslog\")"},
	{Env: "DEFENDER_SYSLOG_URL", field: "SyslogURL", syslog: "URL",
		Doc: "`DEFENDER_OUTPUT=syslog`: the receiver, `tcp://host:port`, `tls://host:port` or `udp://host:port`", DocDefault: "required with syslog"},
	{Env: "DEFENDER_SYSLOG_FORMAT", Default: "cef", field: "SyslogFormat",
		Doc: "syslog: `cef` (ArcSight, NetWitness) or `leef` (QRadar), one message per detection (endpoint-alerts only); `json`: each alert as it came"},
	{Env: "DEFENDER_SYSLOG_VENDOR", field: "SyslogVendor",
		Doc: "syslog, `cef` and `leef`: the header's vendor", DocDefault: "`Microsoft`"},
	{Env: "DEFENDER_SYSLOG_PRODUCT", field: "SyslogProduct",
		Doc: "syslog, `cef` and `leef`: the header's product (the old ArcSight connector's, so its content matches)", DocDefault: "`Microsoft Defender ATP`"},
	{Env: "DEFENDER_SYSLOG_PRODUCT_VERSION", field: "SyslogVersion",
		Doc: "syslog, `cef` and `leef`: the header's product version", DocDefault: "`2.0`"},
	{Env: "DEFENDER_SYSLOG_CA_FILE", field: "SyslogCAFile", syslog: "CAFile",
		Doc: "syslog over TLS: CA certificates (PEM file) to trust instead of the system's", DocDefault: "the system's"},
	{Env: "DEFENDER_SYSLOG_CERT_FILE", field: "SyslogCertFile", syslog: "CertFile",
		Doc: "syslog over TLS: a client certificate (PEM file), with `DEFENDER_SYSLOG_KEY_FILE`", DocDefault: "none"},
	{Env: "DEFENDER_SYSLOG_KEY_FILE", field: "SyslogKeyFile", syslog: "KeyFile",
		Doc: "syslog over TLS: the client certificate's unencrypted key (PEM file; keep it 0600)", DocDefault: "none"},
	{Env: "DEFENDER_SYSLOG_SERVER_NAME", field: "SyslogServerName", syslog: "ServerName",
		Doc: "syslog over TLS: the name to verify the receiver's certificate against", DocDefault: "the URL's host"},
	{Env: "DEFENDER_SYSLOG_FRAMING", Default: "octet-counting", field: "SyslogFraming", syslog: "Framing",
		Doc: "syslog over TCP or TLS: `octet-counting` (RFC 5425) or `lf` (one message a line, for receivers that want it)"},
	{Env: "DEFENDER_HEC_URL", Param: "hec_url", Title: "HEC URL", field: "HECURL", hec: "URLs",
		Description: outputDoc + "HEC URL(s), comma-separated, such as https://http-inputs-<stack>.splunkcloud.com or https://splunk.example.com:8088.",
		Doc:         "HEC URL(s), comma-separated: base or full endpoint", DocDefault: "required"},
	{Env: "DEFENDER_HEC_TOKEN", Param: "hec_token", Title: "HEC token", Secret: true, field: "HECToken", hec: "Token",
		Description: outputDoc + "the HEC token. Moved to Splunk's password storage on the first run.",
		Doc:         "HEC token; set it or `DEFENDER_HEC_TOKEN_FILE`", DocDefault: "required"},
	{Env: "DEFENDER_HEC_TOKEN_FILE", field: "HECTokenFile",
		Doc: "a file holding the HEC token, instead of `DEFENDER_HEC_TOKEN`"},
	{Env: "DEFENDER_HEC_INDEX", Param: "index", Splunk: true, field: "HECIndex",
		Doc: "event index (the modular input's `default` sends none)", DocDefault: "the token's index"},
	{Env: "DEFENDER_HEC_SOURCETYPE", Param: "sourcetype", Splunk: true, field: "HECSourcetype",
		Doc: "event sourcetype, for an input with one feed", DocDefault: "the feed's: `ms:defender:atp:alerts` (endpoint-alerts), `ms:defender:graph:alerts` (graph-alerts)"},
	{Env: "DEFENDER_HEC_SOURCE", Param: "source", Splunk: true, field: "HECSource",
		Doc: "event source (the modular input's default is its stanza, `defender_alerts://<name>`)", DocDefault: "the input's name: `DEFENDER_INPUT`, else the tenant id"},
	{Env: "DEFENDER_HEC_HOST", Param: "host", Splunk: true, field: "HECHost",
		Doc: "event host", DocDefault: "this host"},
	{Env: "DEFENDER_HEC_ACK", Param: "hec_ack", Title: "HEC acknowledgement", Default: "auto", field: "HECAck", hec: "Ack",
		Description: outputDoc + "auto (default: use indexer acknowledgement when the token has it), on (require it) or off.",
		Doc:         "indexer acknowledgement: `auto` (use it when the token has it), `on` (require it), `off`"},
	{Env: "DEFENDER_HEC_ACK_TIMEOUT", Param: "hec_ack_timeout", Title: "HEC acknowledgement timeout", Default: "2m", field: "HECAckTimeout",
		Description: outputDoc + "send a batch again when its acknowledgement has not come after this long. Default 2m.",
		Doc:         "send a batch again when its acknowledgement has not come after this long"},
	{Env: "DEFENDER_HEC_ACK_INTERVAL", Param: "hec_ack_interval", Title: "HEC acknowledgement polls", Default: "1s", field: "HECAckInterval",
		Description: outputDoc + "the longest wait between polls for acknowledgements. Default 1s.",
		Doc:         "the longest wait between polls for acknowledgements"},
	{Env: "DEFENDER_HEC_CA_FILE", Param: "hec_ca_file", Title: "HEC CA file", field: "HECCAFile", hec: "CAFile",
		Description: outputDoc + "CA certificates (PEM file) for the HEC server.",
		Doc:         "CA certificates (PEM file) for the HEC server"},
	{Env: "DEFENDER_HEC_INSECURE_SKIP_VERIFY", Param: "hec_insecure_skip_verify", Title: "HEC: skip TLS verification", Default: "false", field: "HECInsecureSkipVerify",
		Description: outputDoc + "do not verify the HEC server's certificate (logged as a warning). Default false.",
		Doc:         "do not verify the HEC server's certificate (logged as a warning)"},
	{Env: "DEFENDER_HEC_BATCH_BYTES", Default: "1048576", field: "HECBatchBytes", hec: "BatchBytes",
		Doc: "batch size, uncompressed"},
	{Env: "DEFENDER_HEC_GZIP", Default: "true", field: "HECGzip",
		Doc: "compress batches with gzip"},
	{Env: "DEFENDER_HEC_LINGER", Param: "hec_linger", Title: "HEC linger", Default: "2s", field: "HECLinger",
		Description: outputDoc + "the longest wait to fill a batch before it is sent. Default 2s.",
		Doc:         "the longest wait to fill a batch before it is sent"},
	{Env: "DEFENDER_HEC_MAX_IN_FLIGHT", Param: "hec_max_in_flight", Title: "HEC batches in flight", Default: "64", field: "HECMaxInFlight", hec: "MaxInFlight",
		Description: outputDoc + "the most batches sent and awaiting confirmation at once (1 to 256); with acks, requests still go one at a time. Default 64.",
		Doc:         "the most batches sent and awaiting confirmation at once, 1–256 (see \"Delivery guarantee\")"},
	{Env: "DEFENDER_HEC_WINDOW", Param: "hec_window", Title: "HEC window", Default: "adaptive", field: "HECWindow", hec: "Window",
		Description: outputDoc + "adaptive (one batch in flight when caught up, up to hec_max_in_flight while a backlog drains) or fixed (always hec_max_in_flight). Default adaptive.",
		Doc:         "`adaptive`: one batch in flight when caught up, up to the maximum while a backlog drains; `fixed`: always the maximum"},
	{Env: "DEFENDER_HEC_MAX_BYTES_IN_FLIGHT", Default: "25165824", field: "HECMaxBytesInFlight", hec: "MaxBytesInFlight",
		Doc: "the most compressed bytes held by the batches in flight (at least 1 MiB)"},
	{Env: "DEFENDER_LOG_LEVEL", Param: "log_level", Title: "Log level", Default: "info", field: "LogLevel",
		Description: "The least severe lines this input writes to splunkd.log (component ExecProcessor): debug, info, warn or error. Default info. Debug lines reach splunkd.log only while splunkd's ExecProcessor log channel is at DEBUG too (log-local.cfg).",
		Doc:         "`debug` `info` `warn` `error`"},
	{Env: "DEFENDER_LOG_FORMAT", Default: "text", field: "LogFormat",
		Doc: "`text` or `json` (on stderr)"},
	{Env: "DEFENDER_METRICS_ADDR", field: "MetricsAddr",
		Doc: "serve `/metrics` (Prometheus) and `/healthz` here, e.g. `127.0.0.1:9108`", DocDefault: "off"},
}

// vocab is the set of names a configuration's source gives its settings.
type vocab int

const (
	envNames   vocab = iota // DEFENDER_* variables (the standalone collector)
	paramNames              // stanza parameters (the modular input)
)

// nameOf is the setting's name in v, "" when it has none there.
func (v vocab) nameOf(s *Setting) string {
	if v == paramNames {
		return s.Param
	}
	return s.Env
}

// name is the name in v of the setting that fills the raw field; a setting v has no name for
// is called by its other name rather than by none.
func (v vocab) name(field string) string {
	s := find(func(s *Setting) bool { return s.field == field })
	switch {
	case s == nil:
		return field
	case v.nameOf(s) != "":
		return v.nameOf(s)
	case s.Env != "":
		return s.Env
	}
	return s.Param
}

func find(match func(*Setting) bool) *Setting {
	for i := range settings {
		if match(&settings[i]) {
			return &settings[i]
		}
	}
	return nil
}

// explain turns a *defender.FieldError or *hec.FieldError into an *Error naming the
// setting; a field no setting fills keeps its own name.
// apiURLField is the raw field that sets the feed's API base URL, which the defender
// package calls APIURL whatever the feed.
func (v vocab) explain(err error, apiURLField string) error {
	var de *defender.FieldError
	if errors.As(err, &de) {
		msg := de.Msg
		if de.Err != nil {
			msg += ": " + de.Err.Error()
		}
		name := v.fieldName(de.Field, func(s *Setting) string { return s.defender })
		if de.Field == "APIURL" {
			name = v.name(apiURLField)
		}
		return &Error{Var: name, Value: de.Value, Msg: msg}
	}
	var he *hec.FieldError
	if errors.As(err, &he) {
		return &Error{Var: v.fieldName(he.Field, func(s *Setting) string { return s.hec }), Value: he.Value, Msg: he.Msg}
	}
	var se *syslog.SettingError
	if errors.As(err, &se) {
		return &Error{Var: v.fieldName(se.Setting, func(s *Setting) string { return s.syslog }), Value: se.Value, Msg: se.Err.Error()}
	}
	return err
}

func (v vocab) fieldName(field string, of func(*Setting) string) string {
	if s := find(func(s *Setting) bool { return of(s) == field }); s != nil {
		return v.name(s.field)
	}
	return field
}

// set decodes a value into the raw field the setting fills: strings are trimmed, secrets
// taken as given, booleans in Splunk's words (1/0, true/false, yes/no). The error says what
// is wrong with the value, for the caller to name the setting.
func (r *raw) set(s *Setting, v string) error {
	switch p := reflect.ValueOf(r).Elem().FieldByName(s.field).Addr().Interface().(type) {
	case *secret.String:
		*p = secret.String(v)
	case *string:
		*p = strings.TrimSpace(v)
	case *int:
		if strings.TrimSpace(v) == "" {
			*p = 0 // unset: the default is the feed's (a page size)
			return nil
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return errors.New("is not a number")
		}
		*p = n
	case *bool:
		b, err := parseBool(strings.TrimSpace(v))
		if err != nil {
			return errors.New("must be true or false")
		}
		*p = b
	case *duration:
		if err := p.Decode(v); err != nil {
			return err // it says what is wrong: not a duration, or too long
		}
	default:
		panic("config: setting " + s.field + " has a type the stanza reader does not decode")
	}
	return nil
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
