package defendertest

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"
)

// sampleAlerts makes n alerts as the tenant does, one version each.
func sampleAlerts(n int) ([]*alert, Version) {
	t0 := time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC)
	as := make([]*alert, n)
	for i := range as {
		as[i] = &alert{id: AlertID(i + 1), incident: 1001 + i, created: t0, pad: (i * 389) % 2000}
	}
	return as, Version{LastUpdate: t0.Add(time.Minute), VisibleAt: t0, Status: "InProgress"}
}

func gzipRatio(t *testing.T, b []byte) float64 {
	t.Helper()
	var z bytes.Buffer
	w := gzip.NewWriter(&z)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return float64(len(b)) / float64(z.Len())
}

var (
	hexRE  = regexp.MustCompile(`^[0-9a-f]+$`)
	guidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	// leftRE finds a placeholder left in the output, spelled as the templates' or not.
	leftRE = regexp.MustCompile(`"@[A-Za-z0-9_]+@"`)
)

// Both renderings vary per alert the way real alerts do (devices, users, files, detectors),
// and neither compresses far better than the other: the feeds bench compares their CPU.
func TestRenderedAlertsVary(t *testing.T) {
	as, v := sampleAlerts(300)
	var ep, gr []byte
	devices, files, titles, sev := map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
	users := map[string]bool{}
	gdevices := map[string]bool{}
	for _, a := range as {
		one := render(nil, a, v)
		var m struct {
			ID, Title, Severity, MachineID, ComputerDNSName string
			LastUpdateTime                                  time.Time
			Evidence                                        []struct {
				EntityType, Sha1, Sha256, FileName string
				AadUserID, UserSid                 string
				ProcessID, ParentProcessID         *int
			}
		}
		if err := json.Unmarshal(one, &m); err != nil {
			t.Fatalf("endpoint alert %s is not JSON: %v\n%s", a.id, err, one)
		}
		if leftRE.Match(one) {
			t.Fatalf("endpoint alert %s keeps a placeholder: %s", a.id, one)
		}
		if m.ID != a.id || !m.LastUpdateTime.Equal(v.LastUpdate) {
			t.Fatalf("endpoint alert: id %q time %v, want %q %v", m.ID, m.LastUpdateTime, a.id, v.LastUpdate)
		}
		if len(m.MachineID) != 40 || !hexRE.MatchString(m.MachineID) || !strings.HasSuffix(m.ComputerDNSName, ".contoso.com") {
			t.Fatalf("endpoint alert device %q %q", m.MachineID, m.ComputerDNSName)
		}
		devices[m.MachineID], titles[m.Title], sev[m.Severity] = true, true, true
		for _, e := range m.Evidence {
			switch {
			case e.EntityType == "File":
				if len(e.Sha1) != 40 || len(e.Sha256) != 64 || !hexRE.MatchString(e.Sha1+e.Sha256) || e.FileName == "" {
					t.Fatalf("file evidence %+v", e)
				}
				files[e.Sha256] = true
			case e.EntityType == "User":
				if !guidRE.MatchString(e.AadUserID) || !strings.HasPrefix(e.UserSid, "S-1-5-21-") {
					t.Fatalf("user evidence %+v", e)
				}
				users[e.AadUserID] = true
			case e.EntityType == "Process":
				if e.ProcessID == nil || e.ParentProcessID == nil || *e.ProcessID%4 != 0 || *e.ProcessID == *e.ParentProcessID {
					t.Fatalf("process evidence %+v", e)
				}
			}
		}
		ep = append(ep, one...)

		g := renderGraph(nil, a, v, true)
		var gm struct {
			Evidence []struct {
				Type        string `json:"@odata.type"`
				MdeDeviceID string `json:"mdeDeviceId"`
				ProcessID   *int   `json:"processId"`
				FileDetails *struct {
					Sha1, FileName string
				}
			}
		}
		if err := json.Unmarshal(g, &gm); err != nil {
			t.Fatalf("graph alert %s is not JSON: %v\n%s", a.id, err, g)
		}
		if leftRE.Match(g) {
			t.Fatalf("graph alert %s keeps a placeholder: %s", a.id, g)
		}
		for _, e := range gm.Evidence {
			if e.MdeDeviceID != "" {
				gdevices[e.MdeDeviceID] = true
			}
			switch e.Type {
			case "#microsoft.graph.security.processEvidence":
				if e.ProcessID == nil {
					t.Fatalf("graph alert %s: process evidence without a numeric processId", a.id)
				}
			case "#microsoft.graph.security.fileEvidence":
				if e.FileDetails == nil || len(e.FileDetails.Sha1) != 40 || !strings.HasSuffix(e.FileDetails.FileName, ".dll") {
					t.Fatalf("graph alert %s: file evidence %+v", a.id, e.FileDetails)
				}
			}
		}
		gr = append(gr, g...)
	}
	if len(devices) < 250 || len(files) < 200 || len(users) < 250 || len(titles) != len(detectors) || len(sev) != 4 {
		t.Errorf("endpoint alerts vary too little: %d devices, %d files, %d users, %d titles, %d severities of 300 alerts",
			len(devices), len(files), len(users), len(titles), len(sev))
	}
	if len(gdevices) < 100 {
		t.Errorf("graph evidence names %d devices in 300 alerts", len(gdevices))
	}
	re, rg := gzipRatio(t, ep), gzipRatio(t, gr)
	t.Logf("gzip ratio of 300 alerts: endpoint %.1f:1 (%d bytes), graph %.1f:1 (%d bytes)", re, len(ep), rg, len(gr))
	if re > 1.3*rg || rg > 1.3*re {
		t.Errorf("the renderings compress unlike each other: endpoint %.1f:1, graph %.1f:1", re, rg)
	}
}
