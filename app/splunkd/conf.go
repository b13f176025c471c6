package splunkd

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// confLayer is one .conf file: stanza → key → value.
type confLayer struct {
	file    string
	stanzas map[string]map[string]string
}

// parseConf reads Splunk's .conf syntax: [stanza] headers, key = value lines, # comments
// (only at the start of a line), a trailing backslash continuing a value on the next line.
// Keys before the first header belong to [default].
func parseConf(b []byte) map[string]map[string]string {
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	out := map[string]map[string]string{}
	stanza := "default"
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var pending string
	for sc.Scan() {
		line := pending + sc.Text()
		pending = ""
		if strings.HasSuffix(line, `\`) {
			pending = strings.TrimSuffix(line, `\`) + "\n"
			continue
		}
		t := strings.TrimSpace(line)
		switch {
		case t == "" || strings.HasPrefix(t, "#"):
		case strings.HasPrefix(t, "[") && strings.HasSuffix(t, "]"):
			stanza = strings.TrimSpace(t[1 : len(t)-1])
		default:
			k, v, ok := strings.Cut(t, "=")
			if !ok {
				continue
			}
			if out[stanza] == nil {
				out[stanza] = map[string]string{}
			}
			out[stanza][strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return out
}

// serverConf returns the layers of server.conf in Splunk's order of precedence for global
// settings, highest first: etc/system/local, then each app's local/ (apps in ASCII order of
// their folder names), then each app's default/, then etc/system/default. A file that cannot
// be read (other than a missing one) is an error: guessing past it could pick the wrong CA.
func serverConf(splunkHome string) ([]confLayer, error) {
	etc := filepath.Join(splunkHome, "etc")
	var apps []string
	if ents, err := os.ReadDir(filepath.Join(etc, "apps")); err == nil {
		for _, e := range ents {
			if e.IsDir() {
				apps = append(apps, e.Name())
			}
		}
	}
	sort.Strings(apps)
	files := []string{filepath.Join(etc, "system", "local", "server.conf")}
	for _, dir := range []string{"local", "default"} {
		for _, a := range apps {
			files = append(files, filepath.Join(etc, "apps", a, dir, "server.conf"))
		}
	}
	files = append(files, filepath.Join(etc, "system", "default", "server.conf"))
	var layers []confLayer
	for _, f := range files {
		b, err := os.ReadFile(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s cannot be read: %w", f, err)
		}
		layers = append(layers, confLayer{file: f, stanzas: parseConf(b)})
	}
	return layers, nil
}

// lookup returns the value of stanza/key from the layer of highest precedence that sets it
// (an empty value set there counts: it unsets the key for the layers below), and that layer's
// file; a key no layer sets in the stanza comes from [default], as in Splunk.
func lookup(layers []confLayer, stanza, key string) (value, file string, ok bool) {
	for _, st := range []string{stanza, "default"} {
		for _, l := range layers {
			if v, ok := l.stanzas[st][key]; ok {
				return v, l.file, true
			}
		}
	}
	return "", "", false
}

// caSource is the CA file splunkd's certificate is checked against, and where that choice
// comes from, for messages.
type caSource struct{ path, from string }

// splunkdCA finds the CA splunkd is configured with, as splunkd does: server.conf [sslConfig]
// sslRootCAPath; else the older caCertFile (default cacert.pem) in caPath (default
// $SPLUNK_HOME/etc/auth), which also anchors relative paths.
func splunkdCA(splunkHome string) (caSource, error) {
	layers, err := serverConf(splunkHome)
	if err != nil {
		return caSource{}, err
	}
	expand := func(p string) string {
		p = strings.ReplaceAll(p, "$SPLUNK_HOME", splunkHome)
		p = strings.ReplaceAll(p, "$SPLUNK_ETC", filepath.Join(splunkHome, "etc"))
		return filepath.Clean(p)
	}
	caPath := filepath.Join(splunkHome, "etc", "auth")
	if v, _, _ := lookup(layers, "sslConfig", "caPath"); v != "" {
		caPath = expand(v)
	}
	abs := func(p string) string {
		p = expand(p)
		if !filepath.IsAbs(p) {
			p = filepath.Join(caPath, p)
		}
		return p
	}
	if v, f, _ := lookup(layers, "sslConfig", "sslRootCAPath"); v != "" {
		return caSource{abs(v), "[sslConfig] sslRootCAPath in " + f}, nil
	}
	if v, f, _ := lookup(layers, "sslConfig", "caCertFile"); v != "" {
		return caSource{abs(v), "[sslConfig] caCertFile in " + f}, nil
	}
	return caSource{abs("cacert.pem"), "splunkd's default, as server.conf sets no [sslConfig] sslRootCAPath"}, nil
}

// ConfStanza reads one stanza of a .conf file: nil when the file or the stanza is missing.
func ConfStanza(path, stanza string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return parseConf(b)[stanza], nil
}
