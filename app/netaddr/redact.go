package netaddr

import "strings"

// RedactURL returns raw with whatever sits between "//" (or the start, if there is none) and
// the last "@" replaced by "xxxxx", so that a user name and password never reach a message.
// It works on the string, not on a parsed URL, because the URLs that need it most are the ones
// that fail to parse, or parse wrongly: an unescaped '/', '#' or '?' in a password moves where
// url.Parse thinks the host starts, and url.URL.Redacted then shows the password as a path. It
// may hide more than the credentials (an '@' in a path), never less.
func RedactURL(raw string) string {
	at := strings.LastIndexByte(raw, '@')
	if at < 0 {
		return raw
	}
	start := 0
	if i := strings.Index(raw, "//"); i >= 0 && i < at {
		start = i + 2
	}
	return raw[:start] + "xxxxx" + raw[at:]
}
