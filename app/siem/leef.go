package siem

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
)

// LEEFOptions are the header's static values and the delimiter. Empty ones take the same
// defaults as CEF's (Microsoft, Microsoft Defender ATP, 2.0) and the caret.
type LEEFOptions struct {
	Vendor  string
	Product string
	Version string
	// Delimiter is '\t' or printable ASCII punctuation other than '=', '|', '.' and ':' (which
	// would break addresses); default '^'.
	Delimiter byte
}

// ErrDelimiter is returned by NewLEEF for a delimiter LEEF cannot use.
var ErrDelimiter = errors.New("LEEF delimiter must be a tab or one ASCII punctuation character other than = | . :")

// LEEF encodes detections as LEEF 2.0 lines. It is safe for concurrent use.
//
// LEEF has no escape, so no value may hold the delimiter, a pipe, a tab or a caret (QRadar's
// habitual delimiters), nor a line break; nor may a header field, except for the delimiter.
// Each is replaced, always the same way: tab, CR and LF by a space; '|' by '¦' (U+00A6); '^' by
// 'ˆ' (U+02C6); a delimiter of another choice by U+FFFD (so a delimiter common in text, such
// as ',' or '/', changes many values: prefer the caret or the tab). Values are otherwise sent
// whole (LEEF sets no length limit), except usrName and the EventID, cut at 255 characters as
// the guide says.
type LEEF struct {
	delim  byte
	prefix []byte // "LEEF:2.0|vendor|product|version|"
	dfield []byte // "^|": the delimiter field and its pipe
}

// NewLEEF returns an encoder with o's header values and delimiter.
func NewLEEF(o LEEFOptions) (*LEEF, error) {
	if o.Vendor == "" {
		o.Vendor = "Microsoft"
	}
	if o.Product == "" {
		o.Product = "Microsoft Defender ATP"
	}
	if o.Version == "" {
		o.Version = "2.0"
	}
	if o.Delimiter == 0 {
		o.Delimiter = '^'
	}
	c := o.Delimiter
	if c != '\t' && (c < '!' || c > '~' || c == '=' || c == '|' || c == '.' || c == ':' ||
		'0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
		return nil, fmt.Errorf("%w: %q", ErrDelimiter, c)
	}
	l := &LEEF{delim: c}
	l.prefix = []byte("LEEF:2.0|")
	for _, v := range []string{o.Vendor, o.Product, o.Version} {
		l.prefix = append(appendLEEF(l.prefix, v, 0, 0), '|')
	}
	if c == '\t' {
		l.dfield = []byte("x09|") // a tab in the header would be unreadable and is the 1.0 default
	} else {
		l.dfield = []byte{c, '|'}
	}
	return l, nil
}

// Append appends d as one LEEF 2.0 line (no line break): EventID as CEF's class id (see
// classID), then QRadar's predefined keys where one means the field (devTime=AlertTime in epoch
// milliseconds, sev 1-10 by severityNumber, cat=Category, src=IpAddress when it is an address,
// usrName=UserName, resource=ComputerDnsName, url=Url), then the other fields under their old
// SIEM API names, which are single words (LastProcessedTimeUtc in epoch milliseconds too, so
// that no delimiter can touch a time). Empty fields and nulls are left out. identSrc and
// identHostName are not sent: the Alert API gives no address of the device, and QRadar takes
// identHostName only with identSrc.
func (l *LEEF) Append(dst []byte, d *Detection) []byte {
	return l.append(dst, d, classID(d))
}

// append is Append with the EventID given: a shortened copy of d keeps its original's.
func (l *LEEF) append(dst []byte, d *Detection, class string) []byte {
	dst = append(dst, l.prefix...)
	dst = append(appendLEEF(dst, class, 255, 0), '|')
	dst = append(dst, l.dfield...)
	n := len(dst)
	kv := func(k, v string, limit int) {
		if v == "" {
			return
		}
		if len(dst) > n {
			dst = append(dst, l.delim)
		}
		dst = append(dst, k...)
		dst = append(dst, '=')
		dst = appendLEEF(dst, v, limit, l.delim)
	}
	var num [20]byte
	if ms, ok := epochMillis(d.AlertTime); ok && ms >= 1e12 && ms < 1e13 {
		kv("devTime", string(strconv.AppendInt(num[:0], ms, 10)), 0)
	}
	if s, ok := severityNumber(d.Severity); ok {
		kv("sev", strconv.Itoa(s), 0)
	}
	kv("cat", d.Category, 0)
	kv("src", canonicalIP(d.IPAddress), 0)
	kv("usrName", d.UserName, 255)
	kv("resource", d.ComputerDNSName, 0)
	kv("url", d.URL, 0)
	kv("AlertId", d.AlertID, 0)
	kv("AlertTitle", d.AlertTitle, 0)
	kv("Severity", d.Severity, 0)
	kv("Source", d.Source, 0)
	kv("MachineName", d.MachineName, 0)
	kv("MachineDomain", d.MachineDomain, 0)
	kv("UserDomain", d.UserDomain, 0)
	kv("LogOnUsers", d.LogOnUsers, 0)
	kv("FileName", d.FileName, 0)
	kv("FilePath", d.FilePath, 0)
	kv("Sha1", d.Sha1, 0)
	kv("Sha256", d.Sha256, 0)
	kv("Md5", d.Md5, 0)
	kv("CommandLine", d.CommandLine, 0)
	kv("ThreatName", d.ThreatName, 0)
	kv("ThreatFamily", d.ThreatFamily, 0)
	kv("Actor", d.Actor, 0)
	kv("IoaDefinitionId", d.IoaDefinitionID, 0)
	kv("DeviceID", d.DeviceID, 0)
	kv("MachineGroup", d.MachineGroup, 0)
	kv("Description", d.Description, 0)
	kv("LinkToWDATP", d.LinkToWDATP, 0)
	kv("LinkToMTP", d.LinkToMTP, 0)
	kv("FullId", d.FullID, 0)
	kv("AlertPart", strconv.Itoa(d.AlertPart), 0)
	if ms, ok := epochMillis(d.LastProcessedTimeUTC); ok {
		kv("LastProcessedTimeUtc", string(strconv.AppendInt(num[:0], ms, 10)), 0)
	}
	if b := d.WasExecutingWhileDetected; b != nil {
		kv("WasExecutingWhileDetected", strconv.FormatBool(*b), 0)
	}
	if b := d.RemediationIsSuccess; b != nil {
		kv("RemediationIsSuccess", strconv.FormatBool(*b), 0)
	}
	return dst
}

// appendLEEF appends v, cut to limit when limit > 0, with LEEF's forbidden characters
// replaced (see LEEF). A header field passes 0 as delim: the delimiter is free there.
func appendLEEF(dst []byte, v string, limit int, delim byte) []byte {
	if limit > 0 {
		v = cut(v, limit)
	} else {
		v = cut(v, len(v)+1) // only the UTF-8 repair
	}
	from := 0 // copy runs of plain bytes whole
	for i := 0; i < len(v); i++ {
		var r string
		switch c := v[i]; {
		case c == '\t' || c == '\r' || c == '\n':
			r = " "
		case c == '|':
			r = "¦"
		case c == '^':
			r = "ˆ"
		case c == delim && delim != 0:
			r = "\uFFFD"
		default:
			continue
		}
		dst = append(append(dst, v[from:i]...), r...)
		from = i + 1
	}
	return append(dst, v[from:]...)
}

// canonicalIP is s as an address in canonical form (an IPv4-mapped address as IPv4, no zone),
// or "" when s is not an address.
func canonicalIP(s string) string {
	if s == "" {
		return "" // ParseAddr would allocate its error
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return ""
	}
	return ip.Unmap().WithZone("").String()
}
