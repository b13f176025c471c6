package siemtest_test

import (
	"testing"

	"ta-defender-alerts/app/siem/siemtest"
)

// FuzzParsers: no line panics the strict parsers, and what they accept has the fields the
// formats require.
func FuzzParsers(f *testing.F) {
	f.Add(cefHead + `msg=a\=b cat=x rt=1611693092956`)
	f.Add(leefHead + "devTime=1611693092956^sev=3^usrName=u")
	f.Add("LEEF:2.0|V|P|1|id|x09|a=1\tb=2")
	f.Fuzz(func(t *testing.T, line string) {
		if e, err := siemtest.ParseCEF(line); err == nil && (e.Vendor == "" || e.ClassID == "" || len(e.Keys) != len(e.Ext)) {
			t.Errorf("accepted CEF without a vendor or class id, or keys out of step: %+v", e)
		}
		if e, err := siemtest.ParseLEEF(line); err == nil && (e.EventID == "" || e.Delimiter == 0 || len(e.Keys) != len(e.Attrs)) {
			t.Errorf("accepted LEEF without an event id or a delimiter, or keys out of step: %+v", e)
		}
	})
}
