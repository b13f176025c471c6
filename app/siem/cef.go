package siem

import (
	"strconv"
	"strings"
)

// CEFOptions are the header's static values. Empty ones take Microsoft's, from its documented
// ArcSight mapping, so that ArcSight content written for the old connector matches.
type CEFOptions struct {
	Vendor  string // default "Microsoft"
	Product string // default "Microsoft Defender ATP"
	Version string // default "2.0" (the mapping's version, not the product's)
}

// Header field limits of the CEF standard, in characters.
const (
	cefVendorMax  = 63
	cefProductMax = 63
	cefVersionMax = 31
	cefClassMax   = 1023
	cefNameMax    = 512
)

// CEF encodes detections as CEF:0 lines. It is safe for concurrent use.
type CEF struct {
	prefix []byte // "CEF:0|vendor|product|version|", escaped
}

// NewCEF returns an encoder with o's header values, each cut to its limit and escaped.
func NewCEF(o CEFOptions) *CEF {
	if o.Vendor == "" {
		o.Vendor = "Microsoft"
	}
	if o.Product == "" {
		o.Product = "Microsoft Defender ATP"
	}
	if o.Version == "" {
		o.Version = "2.0"
	}
	p := []byte("CEF:0|")
	p = appendCEFHeader(p, o.Vendor, cefVendorMax)
	p = appendCEFHeader(p, o.Product, cefProductMax)
	p = appendCEFHeader(p, o.Version, cefVersionMax)
	return &CEF{prefix: p}
}

// Append appends d as one CEF line (no line break). The header carries the class id (see
// classID), AlertTitle as Name, and the severity (severityNumber, else "Unknown"). The
// extension follows Microsoft's ArcSight mapping of the detection fields:
//
//	cat=Category sourceServiceName=Source shost=MachineName sourceDnsDomain=MachineDomain
//	fname=FileName filePath=FilePath sntdom=UserDomain suser=UserName suid=LogOnUsers
//	fileHash=Sha1 cs1=ThreatName cs4=Actor cs5=Md5 cs6=Sha256 src=IpAddress request=Url
//	cn1=WasExecutingWhileDetected cn2=RemediationIsSuccess (1 or 0) externalId=AlertId
//	flexString1=LinkToWDATP rt=AlertTime
//
// and adds what the mapping leaves out but content needs: cs2=CommandLine, cs3=FullId,
// msg=Description, deviceExternalId=DeviceID, each custom field with its label. Empty fields
// and null numbers are left out. IpAddress goes to src when it is IPv4 (an IPv4-mapped IPv6
// address included), to c6a2 ("Source IPv6 Address") when IPv6, and nowhere when it is not an
// address; either way in its canonical text. rt is epoch milliseconds (left out for a time
// before 1970) and comes last, so the rule that the last value loses its trailing spaces
// touches no text field.
func (c *CEF) Append(dst []byte, d *Detection) []byte {
	return c.append(dst, d, classID(d))
}

// append is Append with the class id given: a shortened copy of d keeps its original's.
func (c *CEF) append(dst []byte, d *Detection, class string) []byte {
	dst = append(dst, c.prefix...)
	dst = appendCEFHeader(dst, class, cefClassMax)
	dst = appendCEFHeader(dst, d.AlertTitle, cefNameMax)
	if n, ok := severityNumber(d.Severity); ok {
		dst = strconv.AppendInt(dst, int64(n), 10)
	} else {
		dst = append(dst, "Unknown"...)
	}
	dst = append(dst, '|')
	x := extension{dst: dst, start: len(dst), last: -1}
	x.add("cat", d.Category, 1023)
	x.add("sourceServiceName", d.Source, 1023)
	x.add("shost", d.MachineName, 1023)
	x.add("sourceDnsDomain", d.MachineDomain, 255)
	x.add("fname", d.FileName, 1023)
	x.add("filePath", d.FilePath, 1023)
	x.add("sntdom", d.UserDomain, 255)
	x.add("suser", d.UserName, 1023)
	x.add("suid", d.LogOnUsers, 1023)
	x.add("fileHash", d.Sha1, 255)
	x.custom("cs1", "cs1Label", "ThreatName", d.ThreatName, 4000)
	x.custom("cs2", "cs2Label", "CommandLine", d.CommandLine, 4000)
	x.custom("cs3", "cs3Label", "FullId", d.FullID, 4000)
	x.custom("cs4", "cs4Label", "Actor", d.Actor, 4000)
	x.custom("cs5", "cs5Label", "Md5", d.Md5, 4000)
	x.custom("cs6", "cs6Label", "Sha256", d.Sha256, 4000)
	if ip := canonicalIP(d.IPAddress); strings.Contains(ip, ":") {
		x.custom("c6a2", "c6a2Label", "Source IPv6 Address", ip, 45)
	} else {
		x.add("src", ip, 15)
	}
	x.add("request", d.URL, 1023)
	if b := d.WasExecutingWhileDetected; b != nil {
		x.custom("cn1", "cn1Label", "WasExecutingWhileDetected", boolNumber(*b), 20)
	}
	if b := d.RemediationIsSuccess; b != nil {
		x.custom("cn2", "cn2Label", "RemediationIsSuccess", boolNumber(*b), 20)
	}
	x.add("externalId", d.AlertID, 40)
	x.add("deviceExternalId", d.DeviceID, 255)
	x.custom("flexString1", "flexString1Label", "LinkToWDATP", d.LinkToWDATP, 1023)
	x.add("msg", d.Description, 1023)
	if ms, ok := epochMillis(d.AlertTime); ok {
		x.key("rt")
		x.dst = strconv.AppendInt(x.dst, ms, 10)
	}
	return x.end()
}

// extension writes CEF's key=value pairs, one space apart.
type extension struct {
	dst   []byte
	start int // where the extension begins
	last  int // where the last value begins
}

func (x *extension) key(k string) {
	if len(x.dst) > x.start {
		x.dst = append(x.dst, ' ')
	}
	x.dst = append(x.dst, k...)
	x.dst = append(x.dst, '=')
	x.last = len(x.dst)
}

// add writes k=v unless v is empty: v cut to limit, then escaped (backslash, equals sign, CR
// and LF; a pipe needs no escape here).
func (x *extension) add(k, v string, limit int) {
	if v == "" {
		return
	}
	x.key(k)
	v = cut(v, limit)
	from := 0 // copy runs of plain bytes whole
	for i := 0; i < len(v); i++ {
		var esc byte
		switch v[i] {
		case '\\':
			esc = '\\'
		case '=':
			esc = '='
		case '\n':
			esc = 'n'
		case '\r':
			esc = 'r'
		default:
			continue
		}
		x.dst = append(append(x.dst, v[from:i]...), '\\', esc)
		from = i + 1
	}
	x.dst = append(x.dst, v[from:]...)
}

// custom writes a custom field and its label.
func (x *extension) custom(k, labelKey, label, v string, limit int) {
	if v == "" {
		return
	}
	x.add(k, v, limit)
	x.key(labelKey)
	x.dst = append(x.dst, label...)
}

// end drops the trailing spaces of the last value, which a receiver would drop anyway.
func (x *extension) end() []byte {
	for x.last >= 0 && len(x.dst) > x.last && x.dst[len(x.dst)-1] == ' ' {
		x.dst = x.dst[:len(x.dst)-1]
	}
	return x.dst
}

// appendCEFHeader appends v cut to limit, escaped for the header (backslash and pipe; an
// equals sign as is), then the closing pipe. The header cannot hold a line break: CR and LF
// become spaces.
func appendCEFHeader(dst []byte, v string, limit int) []byte {
	v = cut(v, limit)
	from := 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\', '|':
			dst = append(append(dst, v[from:i]...), '\\', c)
		case '\n', '\r':
			dst = append(append(dst, v[from:i]...), ' ')
		default:
			continue
		}
		from = i + 1
	}
	return append(append(dst, v[from:]...), '|')
}
