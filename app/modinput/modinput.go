// Package modinput speaks splunkd's modular input protocol: the scheme (--scheme), the
// validation request (--validate-arguments), the input configuration on stdin, streaming XML
// events on stdout, and log lines on stderr that splunkd files under the right level.
package modinput

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// Arg is one argument of the scheme.
type Arg struct {
	Name        string
	Title       string
	Description string
	DataType    string // string, number or boolean
	Required    bool   // on create and on edit
}

// Scheme is what --scheme prints.
type Scheme struct {
	Title       string
	Description string
	Args        []Arg
}

type xmlScheme struct {
	XMLName             xml.Name `xml:"scheme"`
	Title               string   `xml:"title"`
	Description         string   `xml:"description"`
	UseExternalValidate bool     `xml:"use_external_validation"`
	UseSingleInstance   bool     `xml:"use_single_instance"`
	StreamingMode       string   `xml:"streaming_mode"`
	Args                []xmlArg `xml:"endpoint>args>arg"`
}

type xmlArg struct {
	Name             string `xml:"name,attr"`
	Title            string `xml:"title"`
	Description      string `xml:"description"`
	DataType         string `xml:"data_type"`
	RequiredOnCreate bool   `xml:"required_on_create"`
	RequiredOnEdit   bool   `xml:"required_on_edit"`
}

// WriteScheme writes the scheme XML: external validation, one process per input, XML streaming.
func WriteScheme(w io.Writer, s Scheme) error {
	x := xmlScheme{Title: s.Title, Description: s.Description, UseExternalValidate: true, StreamingMode: "xml"}
	for _, a := range s.Args {
		x.Args = append(x.Args, xmlArg{Name: a.Name, Title: a.Title, Description: a.Description, DataType: a.DataType,
			RequiredOnCreate: a.Required, RequiredOnEdit: false})
	}
	b, err := xml.MarshalIndent(x, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// Stanza is one input's configuration.
type Stanza struct {
	Name   string // e.g. defender_alerts://tenant1
	App    string
	Params map[string]string
}

// Input is the configuration splunkd sends on stdin when it runs an input.
type Input struct {
	ServerHost    string
	ServerURI     string
	SessionKey    string
	CheckpointDir string
	Stanzas       []Stanza
}

type xmlParam struct {
	Name   string   `xml:"name,attr"`
	Value  string   `xml:",chardata"`
	Values []string `xml:"value"`
}

type xmlStanza struct {
	Name   string     `xml:"name,attr"`
	App    string     `xml:"app,attr"`
	Params []xmlParam `xml:"param"`
	Lists  []xmlParam `xml:"param_list"`
}

func (x xmlStanza) stanza() Stanza {
	s := Stanza{Name: x.Name, App: x.App, Params: map[string]string{}}
	for _, p := range x.Params {
		s.Params[p.Name] = strings.TrimSpace(p.Value)
	}
	for _, p := range x.Lists {
		s.Params[p.Name] = strings.Join(p.Values, ",")
	}
	return s
}

// ParseInput reads the <input> document.
func ParseInput(r io.Reader) (*Input, error) {
	var x struct {
		XMLName       xml.Name    `xml:"input"`
		ServerHost    string      `xml:"server_host"`
		ServerURI     string      `xml:"server_uri"`
		SessionKey    string      `xml:"session_key"`
		CheckpointDir string      `xml:"checkpoint_dir"`
		Stanzas       []xmlStanza `xml:"configuration>stanza"`
	}
	if err := decode(r, &x); err != nil {
		return nil, fmt.Errorf("the input configuration from splunkd cannot be read: %w", err)
	}
	in := &Input{ServerHost: x.ServerHost, ServerURI: strings.TrimSpace(x.ServerURI), SessionKey: strings.TrimSpace(x.SessionKey), CheckpointDir: strings.TrimSpace(x.CheckpointDir)}
	for _, s := range x.Stanzas {
		in.Stanzas = append(in.Stanzas, s.stanza())
	}
	if len(in.Stanzas) == 0 {
		return nil, errors.New("the input configuration from splunkd holds no stanza")
	}
	return in, nil
}

// Validation is the <items> document of --validate-arguments.
type Validation struct {
	ServerHost    string
	ServerURI     string
	SessionKey    string
	CheckpointDir string
	Item          Stanza
}

// ParseValidation reads the <items> document.
func ParseValidation(r io.Reader) (*Validation, error) {
	var x struct {
		XMLName       xml.Name    `xml:"items"`
		ServerHost    string      `xml:"server_host"`
		ServerURI     string      `xml:"server_uri"`
		SessionKey    string      `xml:"session_key"`
		CheckpointDir string      `xml:"checkpoint_dir"`
		Items         []xmlStanza `xml:"item"`
	}
	if err := decode(r, &x); err != nil {
		return nil, fmt.Errorf("the validation request from splunkd cannot be read: %w", err)
	}
	if len(x.Items) != 1 {
		return nil, fmt.Errorf("the validation request holds %d items, want 1", len(x.Items))
	}
	return &Validation{ServerHost: x.ServerHost, ServerURI: strings.TrimSpace(x.ServerURI), SessionKey: strings.TrimSpace(x.SessionKey),
		CheckpointDir: strings.TrimSpace(x.CheckpointDir), Item: x.Items[0].stanza()}, nil
}

// WriteError writes the <error> document splunkd shows the user after a failed validation.
func WriteError(w io.Writer, msg string) error {
	var b bytes.Buffer
	b.WriteString("<error><message>")
	_ = xml.EscapeText(&b, []byte(msg))
	b.WriteString("</message></error>\n")
	_, err := w.Write(b.Bytes())
	return err
}

// decode parses XML sent as UTF-8, or as UTF-16 (with a byte-order mark, or recognisable by
// its zero bytes), whatever its declaration says.
func decode(r io.Reader, v any) error {
	b, err := io.ReadAll(io.LimitReader(r, 16<<20))
	if err != nil {
		return err
	}
	b = toUTF8(b)
	d := xml.NewDecoder(bytes.NewReader(b))
	d.CharsetReader = func(label string, in io.Reader) (io.Reader, error) {
		switch strings.ToLower(label) {
		case "utf-16", "utf-16le", "utf-16be", "utf-8", "utf8", "us-ascii", "ascii":
			return in, nil // already UTF-8 by now
		}
		return nil, fmt.Errorf("unsupported XML encoding %q", label)
	}
	return d.Decode(v)
}

func toUTF8(b []byte) []byte {
	le := false // little-endian UTF-16; big-endian otherwise
	switch {
	case len(b) >= 2 && b[0] == 0xFF && b[1] == 0xFE:
		le, b = true, b[2:]
	case len(b) >= 2 && b[0] == 0xFE && b[1] == 0xFF:
		b = b[2:]
	case len(b) >= 2 && b[0] == '<' && b[1] == 0:
		le = true
	case len(b) >= 2 && b[0] == 0 && b[1] == '<':
	case len(b) >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF:
		return b[3:]
	default:
		return b
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		if le {
			u[i] = uint16(b[2*i]) | uint16(b[2*i+1])<<8
		} else {
			u[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
		}
	}
	return []byte(string(utf16.Decode(u)))
}

// Event is one event in the XML stream.
type Event struct {
	Stanza     string
	Time       time.Time
	Source     string
	Sourcetype string
	Index      string
	Host       string
	Data       []byte
}

// EventWriter writes <stream><event>…</event>…</stream>.
type EventWriter struct {
	w       *bufio.Writer
	started bool
	buf     bytes.Buffer
}

// NewEventWriter writes events to w.
func NewEventWriter(w io.Writer) *EventWriter {
	return &EventWriter{w: bufio.NewWriterSize(w, 256<<10)}
}

// Write adds one event; it is buffered until Flush.
func (e *EventWriter) Write(ev Event) error {
	b := &e.buf
	b.Reset()
	if !e.started {
		b.WriteString("<stream>")
		e.started = true
	}
	b.WriteString(`<event stanza="`)
	_ = xml.EscapeText(b, []byte(ev.Stanza))
	b.WriteString(`" unbroken="1"><time>`)
	us := ev.Time.UnixMicro()
	fmt.Fprintf(b, "%d.%06d", us/1e6, us%1e6)
	b.WriteString("</time>")
	for _, f := range []struct{ tag, v string }{{"source", ev.Source}, {"sourcetype", ev.Sourcetype}, {"index", ev.Index}, {"host", ev.Host}} {
		if f.v == "" {
			continue
		}
		b.WriteString("<" + f.tag + ">")
		_ = xml.EscapeText(b, []byte(f.v))
		b.WriteString("</" + f.tag + ">")
	}
	b.WriteString("<data>")
	escapeData(b, ev.Data)
	b.WriteString("</data><done/></event>\n")
	_, err := e.w.Write(b.Bytes())
	return err
}

// Flush hands buffered events to splunkd.
func (e *EventWriter) Flush() error { return e.w.Flush() }

// Close ends the stream.
func (e *EventWriter) Close() error {
	if e.started {
		if _, err := e.w.WriteString("</stream>\n"); err != nil {
			return err
		}
	}
	return e.w.Flush()
}

// escapeData escapes element text: only &, < and > need it (quotes, plentiful in JSON, do not).
// What XML 1.0 cannot carry becomes U+FFFD, so the stream stays well-formed whatever the alert
// text holds: controls other than tab, newline and return (JSON text escapes those, so they are
// rare), and what xmlText replaces.
func escapeData(b *bytes.Buffer, data []byte) {
	data = xmlText(data)
	last := 0
	for i, c := range data {
		var rep string
		switch {
		case c == '&':
			rep = "&amp;"
		case c == '<':
			rep = "&lt;"
		case c == '>':
			rep = "&gt;"
		case c < 0x20 && c != '\t' && c != '\n' && c != '\r':
			rep = "\uFFFD"
		default:
			continue
		}
		b.Write(data[last:i])
		b.WriteString(rep)
		last = i + 1
	}
	b.Write(data[last:])
}

// xmlText returns data with U+FFFD for each byte that is not part of valid UTF-8 (alerts are
// passed on as the API's bytes, which nothing has checked) and for U+FFFE and U+FFFF, which XML
// 1.0 forbids. Surrogates need nothing more: their UTF-8 forms are invalid. Valid text, the
// usual case, is returned as it is after a fast check, without a copy.
func xmlText(data []byte) []byte {
	if utf8.Valid(data) && !hasNonCharacter(data) {
		return data
	}
	out := make([]byte, 0, len(data)+16)
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && n == 1 || r == 0xFFFE || r == 0xFFFF {
			out = utf8.AppendRune(out, utf8.RuneError)
		} else {
			out = append(out, data[i:i+n]...)
		}
		i += n
	}
	return out
}

// hasNonCharacter reports whether valid UTF-8 text holds U+FFFE or U+FFFF (EF BF BE, EF BF BF;
// EF only ever starts a character).
func hasNonCharacter(b []byte) bool {
	for {
		i := bytes.Index(b, []byte{0xEF, 0xBF})
		if i < 0 || i+2 >= len(b) {
			return false
		}
		if b[i+2] == 0xBE || b[i+2] == 0xBF {
			return true
		}
		b = b[i+2:]
	}
}
