package config_test

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"ta-defender-alerts/app/config"
	"ta-defender-alerts/app/splunkapp"
)

var update = flag.Bool("update", false, "rewrite README/inputs.conf.spec and the README's settings table from the settings table")

const (
	specPath     = "../../README/inputs.conf.spec"
	readmePath   = "../../README.md"
	defaultsPath = "../../default/inputs.conf"
	regenerate   = "go test ./app/config -run TestSettingsDocs -update"
	tableHeader  = "| variable | input parameter | meaning | default |"
)

// The scheme splunkd shows, the spec file, the README's settings table and the app's default
// inputs.conf all say what the settings table says.
func TestSettingsDocs(t *testing.T) {
	t.Run("scheme", testScheme)
	t.Run("spec", func(t *testing.T) { checkFile(t, specPath, renderSpec(t)) })
	t.Run("readme", func(t *testing.T) {
		old, err := os.ReadFile(readmePath)
		if err != nil {
			t.Fatal(err)
		}
		want, err := replaceTable(string(old), renderTable())
		if err != nil {
			t.Fatal(err)
		}
		checkFile(t, readmePath, want)
	})
	t.Run("default inputs.conf", testDefaults)
	t.Run("descriptions name their defaults", func(t *testing.T) {
		for _, s := range config.Settings() {
			if s.Description != "" && s.Default != "" && !strings.Contains(s.Description, s.Default) {
				t.Errorf("%s: the description does not mention the default %q: %s", s.Param, s.Default, s.Description)
			}
		}
	})
}

// checkFile compares a checked-in file with what the table makes, or rewrites it with -update.
func checkFile(t *testing.T, path, want string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) == want {
		return
	}
	g, w := strings.Split(string(got), "\n"), strings.Split(want, "\n")
	for i := range max(len(g), len(w)) {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			t.Fatalf("%s is not what the settings table (app/config/settings.go) makes; line %d\n has: %q\nwant: %q\nTo regenerate it: %s", path, i+1, gl, wl, regenerate)
		}
	}
}

func declared() []config.Setting {
	var out []config.Setting
	for _, s := range config.Settings() {
		if s.Param != "" && !s.Splunk {
			out = append(out, s)
		}
	}
	return out
}

func testScheme(t *testing.T) {
	var b bytes.Buffer
	if err := splunkapp.WriteScheme(&b); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Args []struct {
			Name     string `xml:"name,attr"`
			Title    string `xml:"title"`
			Desc     string `xml:"description"`
			DataType string `xml:"data_type"`
			Required bool   `xml:"required_on_create"`
		} `xml:"endpoint>args>arg"`
	}
	if err := xml.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	want := declared()
	if len(doc.Args) != len(want) {
		t.Fatalf("the scheme declares %d arguments, the table %d", len(doc.Args), len(want))
	}
	for i, a := range doc.Args {
		s := want[i]
		if a.Name != s.Param || a.Title != s.Title || a.Desc != s.Description || a.DataType != s.DataType() || a.Required != s.Required {
			t.Errorf("scheme argument %d: %+v\nthe table says %s %q %q %s required=%v", i, a, s.Param, s.Title, s.Description, s.DataType(), s.Required)
		}
	}
}

// defaults reads the [defender_alerts] stanza of default/inputs.conf.
func defaults(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open(defaultsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string]string{}
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			in = line == "["+splunkapp.Scheme+"]"
		case in:
			k, v, _ := strings.Cut(line, "=")
			m[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return m
}

func testDefaults(t *testing.T) {
	byParam := map[string]config.Setting{}
	for _, s := range config.Settings() {
		if s.Param != "" {
			byParam[s.Param] = s
		}
	}
	for k, v := range defaults(t) {
		s, ok := byParam[k]
		switch {
		case !ok && k != "interval" && k != "disabled" && k != "start_by_shell":
			t.Errorf("%s sets %s, which is no setting of the table nor Splunk's interval, disabled or start_by_shell", defaultsPath, k)
		case ok && v != s.Default:
			t.Errorf("%s sets %s = %s; the table's default is %q", defaultsPath, k, v, s.Default)
		}
	}
}

func renderSpec(t *testing.T) string {
	var splunks []string
	for _, s := range config.Settings() {
		if s.Splunk {
			switch {
			case s.Param == "source":
				// Set by the input, not by the table: the stanza's name.
				splunks = append(splunks, s.Param+" (default the stanza's name, "+splunkapp.Scheme+"://<name>)")
			case s.Param == "sourcetype":
				// Set by the input, not by the table: the feed's.
				var st []string
				for _, f := range config.FeedNames() {
					st = append(st, config.FeedSourcetype(f)+" for "+f)
				}
				splunks = append(splunks, s.Param+" (default "+strings.Join(st, ", ")+")")
			case s.Default != "":
				splunks = append(splunks, fmt.Sprintf("%s (default %s)", s.Param, s.Default))
			default:
				splunks = append(splunks, s.Param)
			}
		}
	}
	interval := defaults(t)["interval"]
	var b strings.Builder
	fmt.Fprintf(&b, "# Settings of the %s modular input (Microsoft Defender alerts).\n", splunkapp.Scheme)
	wrap(&b, "# ", fmt.Sprintf("Splunk's own %s and interval (default %s seconds) apply too. An index of \"default\" sends no index: the default one.",
		strings.Join(splunks, ", "), interval))
	fmt.Fprintf(&b, "\n[%s://<name>]\n", splunkapp.Scheme)
	b.WriteString("* Reads alerts (with evidence) from the Defender for Endpoint Alert API (feed\n")
	b.WriteString("  endpoint-alerts) or the Microsoft Graph security API (feed graph-alerts).\n")
	b.WriteString("* Run each tenant's input on exactly one node (a heavy forwarder), not on every member\n")
	b.WriteString("  of a search head cluster: each node would send every alert.\n")
	for _, s := range declared() {
		req := ""
		if s.Required {
			req = " Required."
		}
		fmt.Fprintf(&b, "\n%s = <%s>\n* %s.%s\n* %s\n", s.Param, s.DataType(), s.Title, req, s.Description)
	}
	return b.String()
}

// wrap writes text in lines of at most 92 characters, each starting with prefix.
func wrap(b *strings.Builder, prefix, text string) {
	line := prefix
	for _, w := range strings.Fields(text) {
		if len(line) > len(prefix) && len(line)+1+len(w) > 92 {
			b.WriteString(line + "\n")
			line = prefix
		}
		if len(line) > len(prefix) {
			line += " "
		}
		line += w
	}
	b.WriteString(line + "\n")
}

func renderTable() string {
	var b strings.Builder
	b.WriteString(tableHeader + "\n|---|---|---|---|\n")
	for _, s := range config.Settings() {
		if s.Env == "" {
			continue
		}
		param := ""
		switch {
		case s.Splunk:
			param = "`" + s.Param + "` (Splunk's)"
		case s.Param != "":
			param = "`" + s.Param + "`"
		}
		def := s.DocDefault
		if def == "" && s.Default != "" {
			def = "`" + s.Default + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", s.Env, param, s.Doc, def)
	}
	return b.String()
}

// replaceTable puts table in place of the README's settings table, found by its header.
func replaceTable(readme, table string) (string, error) {
	start := strings.Index(readme, tableHeader+"\n")
	if start < 0 {
		return "", fmt.Errorf("%s has no line %q to find the settings table by", readmePath, tableHeader)
	}
	end := start
	for end < len(readme) && strings.HasPrefix(readme[end:], "|") {
		nl := strings.IndexByte(readme[end:], '\n')
		if nl < 0 {
			end = len(readme)
			break
		}
		end += nl + 1
	}
	return readme[:start] + table + readme[end:], nil
}
