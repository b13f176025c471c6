package secret

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestStringNeverPrints(t *testing.T) {
	const value = "s3cr3t-Value~123"
	s := String(value)
	outs := map[string]string{}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10s"} {
		outs[verb] = fmt.Sprintf(verb, s)
	}
	outs["Sprint"] = fmt.Sprint(s)
	outs["struct"] = fmt.Sprintf("%+v", struct{ S String }{s})
	j, err := json.Marshal(struct{ S String }{s})
	if err != nil {
		t.Fatal(err)
	}
	outs["json"] = string(j)
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("m", "s", s)
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("m", "s", s)
	outs["slog"] = buf.String()
	for name, out := range outs {
		if strings.Contains(out, value) || strings.Contains(out, fmt.Sprintf("%x", value)) {
			t.Errorf("%s printed the secret: %s", name, out)
		}
		if !strings.Contains(out, "redacted") {
			t.Errorf("%s does not say redacted: %s", name, out)
		}
	}
	if s.Reveal() != value {
		t.Errorf("Reveal() = %q", s.Reveal())
	}
	if String("").String() != "" || !String("").IsZero() {
		t.Error("an empty secret should print as empty")
	}
}
