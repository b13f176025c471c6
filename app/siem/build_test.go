package siem_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"ta-defender-alerts/app/siem"
)

const procEvidence = `{"entityType":"Process","evidenceCreationTime":"2021-01-26T20:33:58.6Z","sha1":"s1",
	"sha256":"s256","fileName":"f.exe","filePath":"C:\\p","processId":3276,"processCommandLine":"f.exe /x",
	"ipAddress":null,"url":null,"accountName":null,"domainName":null,"detectionStatus":"Detected"}`

func alertJSON(extra string) []byte {
	return []byte(`{"id":"da1_2","severity":"High","category":"Malware","title":"T","detectorId":"det",
		"computerDnsName":"host1.corp.example","machineId":"m1","rbacGroupName":"G","detectionSource":"WindowsDefenderAv",
		"alertCreationTime":"2024-05-01T10:00:01Z","firstEventTime":"2024-05-01T09:59:00.5Z",
		"lastUpdateTime":"2024-05-01T10:05:00.1234567Z","relatedUser":{"userName":"liz","domainName":"CONTOSO"}` + extra + `}`)
}

func build(t *testing.T, give []byte) []siem.Detection {
	t.Helper()
	ds, err := siem.Build(give)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func TestBuildCommonFields(t *testing.T) {
	ds := build(t, alertJSON(`,"evidence":[`+procEvidence+`]`))
	if len(ds) != 1 {
		t.Fatalf("%d detections, want 1", len(ds))
	}
	d := ds[0]
	for _, c := range []struct{ name, got, want string }{
		{"AlertId", d.AlertID, "da1_2"}, {"AlertTitle", d.AlertTitle, "T"}, {"Severity", d.Severity, "High"},
		{"Category", d.Category, "Malware"}, {"IoaDefinitionId", d.IoaDefinitionID, "det"},
		{"MachineName", d.MachineName, "host1"}, {"MachineDomain", d.MachineDomain, "corp.example"},
		{"ComputerDnsName", d.ComputerDNSName, "host1.corp.example"}, {"DeviceID", d.DeviceID, "m1"},
		{"MachineGroup", d.MachineGroup, "G"}, {"Source", d.Source, "WindowsDefenderAv"},
		{"Sha1", d.Sha1, "s1"}, {"FileHash", d.FileHash, "s1"}, {"Sha256", d.Sha256, "s256"},
		{"FileName", d.FileName, "f.exe"}, {"FilePath", d.FilePath, `C:\p`}, {"CommandLine", d.CommandLine, "f.exe /x"},
		{"UserName", d.UserName, "liz"}, {"UserDomain", d.UserDomain, "CONTOSO"}, {"LogOnUsers", d.LogOnUsers, `CONTOSO\liz`},
		{"LinkToWDATP", d.LinkToWDATP, "https://securitycenter.windows.com/alert/da1_2"},
		{"LinkToMTP", d.LinkToMTP, "https://security.microsoft.com/alert/da1_2"},
		{"IncidentLinkToMTP", d.IncidentLinkToMTP, "https://security.microsoft.com/incidents/byalert?alertId=da1_2&source=SIEM"},
		{"FullId", d.FullID, "da1_2:" + d.IocUniqueID}, {"Md5", d.Md5, ""}, {"Actor", d.Actor, ""},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if want := time.Date(2024, 5, 1, 9, 59, 0, 5e8, time.UTC); !d.AlertTime.Equal(want) {
		t.Errorf("AlertTime %v, want firstEventTime %v", d.AlertTime, want)
	}
	if want := time.Date(2024, 5, 1, 10, 5, 0, 123456700, time.UTC); !d.LastProcessedTimeUTC.Equal(want) {
		t.Errorf("LastProcessedTimeUtc %v, want lastUpdateTime %v", d.LastProcessedTimeUTC, want)
	}
	if len(d.IocUniqueID) != 44 || d.ReportID != nil || d.RemediationIsSuccess != nil {
		t.Errorf("IocUniqueId %q (want 44 base64 characters), ReportID %v, RemediationIsSuccess %v",
			d.IocUniqueID, d.ReportID, d.RemediationIsSuccess)
	}
}

func TestBuildOneDetectionPerEvidenceItem(t *testing.T) {
	tests := []struct {
		name     string
		evidence string
		want     int
	}{
		{"no key", ``, 1}, {"null", `,"evidence":null`, 1}, {"empty", `,"evidence":[]`, 1},
		{"three", `,"evidence":[` + procEvidence + `,{"entityType":"User","accountName":"bob","domainName":"D"},{"entityType":"Ip","ipAddress":"10.0.0.1"}]`, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds := build(t, alertJSON(tt.evidence))
			if len(ds) != tt.want {
				t.Fatalf("%d detections, want %d", len(ds), tt.want)
			}
			seen := map[string]bool{}
			for i, d := range ds {
				if d.AlertPart != i || seen[d.FullID] {
					t.Errorf("detection %d: AlertPart %d, FullId %q (seen before: %v)", i, d.AlertPart, d.FullID, seen[d.FullID])
				}
				seen[d.FullID] = true
			}
			if tt.want == 3 {
				if ds[1].UserName != "bob" || ds[1].UserDomain != "D" || ds[2].IPAddress != "10.0.0.1" || ds[2].UserName != "liz" {
					t.Errorf("evidence fields: user %q\\%q, ip %q, related user %q", ds[1].UserDomain, ds[1].UserName, ds[2].IPAddress, ds[2].UserName)
				}
			}
		})
	}
}

// TestFullIDIsStableAcrossVersions: an alert's later version (new lastUpdateTime, new
// detectionStatus, evidence re-stamped) keeps each detection's FullId; other evidence gets
// another.
func TestFullIDIsStableAcrossVersions(t *testing.T) {
	v1 := build(t, alertJSON(`,"evidence":[`+procEvidence+`]`))[0]
	later := strings.NewReplacer(`"Detected"`, `"Blocked"`, `20:33:58.6Z`, `21:00:00Z`, `"processId":3276`, `"processId": 3276`).Replace(procEvidence)
	v2 := build(t, []byte(strings.Replace(string(alertJSON(`,"evidence":[`+later+`]`)), "10:05:00.1234567Z", "11:00:00Z", 1)))[0]
	if v1.FullID != v2.FullID {
		t.Errorf("FullId changed between versions: %q, %q", v1.FullID, v2.FullID)
	}
	other := build(t, alertJSON(`,"evidence":[`+strings.Replace(procEvidence, `"s1"`, `"s2"`, 1)+`]`))[0]
	if other.FullID == v1.FullID {
		t.Errorf("other evidence, same FullId %q", v1.FullID)
	}
	nullPID := build(t, alertJSON(`,"evidence":[{"entityType":"User","processId":null}]`))[0]
	noPID := build(t, alertJSON(`,"evidence":[{"entityType":"User"}]`))[0]
	if nullPID.FullID != noPID.FullID {
		t.Errorf("a null and a missing processId differ: %q, %q", nullPID.FullID, noPID.FullID)
	}
}

func TestBuildTimes(t *testing.T) {
	tests := []struct {
		name string
		give string
		want string
	}{
		{"first event", `{"id":"a","firstEventTime":"2024-01-01T00:00:01Z","alertCreationTime":"2024-01-01T00:00:02Z","lastUpdateTime":"2024-01-01T00:00:03Z"}`, "2024-01-01T00:00:01Z"},
		{"else creation", `{"id":"a","firstEventTime":null,"alertCreationTime":"2024-01-01T00:00:02Z","lastUpdateTime":"2024-01-01T00:00:03Z"}`, "2024-01-01T00:00:02Z"},
		{"else last update", `{"id":"a","lastUpdateTime":"2024-01-01T00:00:03+01:00"}`, "2024-01-01T00:00:03+01:00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := build(t, []byte(tt.give))[0]
			want, _ := time.Parse(time.RFC3339, tt.want)
			if !d.AlertTime.Equal(want) || d.AlertTime.Location() != time.UTC {
				t.Errorf("AlertTime %v, want %v in UTC", d.AlertTime, want)
			}
		})
	}
}

func TestBuildRefusesNamingTheAlertAndKey(t *testing.T) {
	tests := []struct {
		name, give, want string
	}{
		{"not JSON", `{"id":`, "unexpected end"},
		{"not an object", `[1]`, "cannot unmarshal array"},
		{"no id", `{"lastUpdateTime":"2024-01-01T00:00:00Z"}`, "no id"},
		{"id of the wrong type", `{"id":5,"lastUpdateTime":"2024-01-01T00:00:00Z"}`, "id"},
		{"no lastUpdateTime", `{"id":"a1"}`, `alert "a1": no lastUpdateTime`},
		{"bad lastUpdateTime", `{"id":"a1","lastUpdateTime":"yesterday"}`, `alert "a1": lastUpdateTime "yesterday"`},
		{"bad firstEventTime", `{"id":"a1","lastUpdateTime":"2024-01-01T00:00:00Z","firstEventTime":"2024-13-01T00:00:00Z"}`, `alert "a1": firstEventTime`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := siem.Build([]byte(tt.give))
			if !errors.Is(err, siem.ErrAlert) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err %v, want ErrAlert naming %q", err, tt.want)
			}
		})
	}
}

func TestPortalLinks(t *testing.T) {
	p := siem.Portal{WDATP: "https://gcc.example/", MTP: "https://mtp.example"}
	ds, err := p.Build([]byte(`{"id":"a/b&c","lastUpdateTime":"2024-01-01T00:00:00Z"}`))
	if err != nil {
		t.Fatal(err)
	}
	d := ds[0]
	if d.LinkToWDATP != "https://gcc.example/alert/a%2Fb&c" ||
		d.IncidentLinkToWDATP != "https://gcc.example/incidents/byalert?alertId=a%2Fb%26c&source=SIEM" ||
		d.LinkToMTP != "https://mtp.example/alert/a%2Fb&c" {
		t.Errorf("links %q %q %q", d.LinkToWDATP, d.IncidentLinkToWDATP, d.LinkToMTP)
	}
	js, err := d.AppendJSON([]byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(js), `x{"AlertTime":"2024-01-01T00:00:00Z",`) || !strings.Contains(string(js), `&source=SIEM"`) ||
		strings.HasSuffix(string(js), "\n") {
		t.Errorf("JSON: %s", js)
	}
}
