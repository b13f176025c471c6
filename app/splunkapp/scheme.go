package splunkapp

import (
	"io"

	"ta-defender-alerts/app/config"
	"ta-defender-alerts/app/modinput"
)

// schemeArgs are the input's own arguments: the settings that have a parameter, from config's
// settings table. Splunk's index, sourcetype, host, source and interval come with every
// stanza and are honoured, but are Splunk's to declare.
var schemeArgs = args()

func args() []modinput.Arg {
	var out []modinput.Arg
	for _, s := range config.Settings() {
		if s.Param != "" && !s.Splunk {
			out = append(out, modinput.Arg{Name: s.Param, Title: s.Title, Description: s.Description,
				DataType: s.DataType(), Required: s.Required})
		}
	}
	return out
}

// WriteScheme prints the scheme.
func WriteScheme(w io.Writer) error {
	return modinput.WriteScheme(w, modinput.Scheme{
		Title:       "Microsoft Defender for Endpoint alerts",
		Description: "Reads alerts (with evidence) from the Defender for Endpoint Alert API, as sourcetype ms:defender:atp:alerts.",
		Args:        schemeArgs,
	})
}

// secretFields are the settings that move to password storage: the table's secrets.
var secretFields = secretParams()

func secretParams() []string {
	var out []string
	for _, s := range config.Settings() {
		if s.Secret && s.Param != "" {
			out = append(out, s.Param)
		}
	}
	return out
}
