package siem

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Portal links written into detections. The defaults are the commercial cloud's, as in
// Microsoft's example detection; government clouds have their own portals.
type Portal struct {
	WDATP string // LinkToWDATP and IncidentLinkToWDATP; default "https://securitycenter.windows.com"
	MTP   string // LinkToMTP and IncidentLinkToMTP; default "https://security.microsoft.com"
}

// DefaultPortal is the commercial cloud's portals.
var DefaultPortal = Portal{WDATP: "https://securitycenter.windows.com", MTP: "https://security.microsoft.com"}

// ErrAlert is wrapped by every error Build returns: the alert cannot be made into detections.
var ErrAlert = errors.New("alert cannot be made into detections")

// alert is the part of an Alert API alert that detections use. Keys may be missing or null
// (both read as ""); a key of the wrong JSON type is an error.
type alert struct {
	ID                string     `json:"id"`
	Severity          string     `json:"severity"`
	DetectionSource   string     `json:"detectionSource"`
	DetectorID        string     `json:"detectorId"`
	Category          string     `json:"category"`
	ThreatFamilyName  string     `json:"threatFamilyName"`
	ThreatName        string     `json:"threatName"`
	Title             string     `json:"title"`
	Description       string     `json:"description"`
	AlertCreationTime string     `json:"alertCreationTime"`
	FirstEventTime    string     `json:"firstEventTime"`
	LastUpdateTime    string     `json:"lastUpdateTime"`
	MachineID         string     `json:"machineId"`
	ComputerDNSName   string     `json:"computerDnsName"`
	RBACGroupName     string     `json:"rbacGroupName"`
	RelatedUser       *user      `json:"relatedUser"`
	Evidence          []evidence `json:"evidence"`
}

type user struct {
	UserName   string `json:"userName"`
	DomainName string `json:"domainName"`
}

// evidence is one evidence item. The fields from EntityType to UserPrincipalName identify the
// item (see iocUniqueID); detectionStatus and evidenceCreationTime are left out on purpose.
type evidence struct {
	EntityType          string          `json:"entityType"`
	Sha1                string          `json:"sha1"`
	Sha256              string          `json:"sha256"`
	FileName            string          `json:"fileName"`
	FilePath            string          `json:"filePath"`
	ProcessID           json.RawMessage `json:"processId"`
	ProcessCommandLine  string          `json:"processCommandLine"`
	ProcessCreationTime string          `json:"processCreationTime"`
	IPAddress           string          `json:"ipAddress"`
	URL                 string          `json:"url"`
	RegistryKey         string          `json:"registryKey"`
	RegistryHive        string          `json:"registryHive"`
	RegistryValue       string          `json:"registryValue"`
	AccountName         string          `json:"accountName"`
	DomainName          string          `json:"domainName"`
	UserSid             string          `json:"userSid"`
	AadUserID           string          `json:"aadUserId"`
	UserPrincipalName   string          `json:"userPrincipalName"`
}

// Build makes the detections of one alert version with the default portals.
func Build(alertJSON []byte) ([]Detection, error) {
	return DefaultPortal.Build(alertJSON)
}

// Build makes the detections of one alert version: one per evidence item, in the alert's
// order, or one without evidence fields when the alert has none. The alert must have an id and
// a lastUpdateTime; times must be RFC 3339. The error names the alert (when it has an id) and
// the key, and wraps ErrAlert.
//
// Where the Alert API has no counterpart of an old field, the field is "" (or null), never a
// made-up value, except FullId and IocUniqueId, which Microsoft built from an internal id:
// here IocUniqueId is the base64 SHA-256 of the evidence item's identifying fields (stable
// across versions of the alert, unique within it), and FullId is "<AlertId>:<IocUniqueId>",
// the old shape.
func (p Portal) Build(alertJSON []byte) ([]Detection, error) {
	var a alert
	if err := json.Unmarshal(alertJSON, &a); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrAlert, err)
	}
	if a.ID == "" {
		return nil, fmt.Errorf("%w: no id", ErrAlert)
	}
	updated, err := alertTime(a.ID, "lastUpdateTime", a.LastUpdateTime)
	if err == nil && updated.IsZero() {
		err = fmt.Errorf("%w: alert %q: no lastUpdateTime", ErrAlert, a.ID)
	}
	if err != nil {
		return nil, err
	}
	// AlertTime was "the time the event occurred": the alert's first event, else its
	// creation, else its last update (a later entry here wins over an earlier one).
	at := updated
	for _, k := range [...][2]string{
		{"alertCreationTime", a.AlertCreationTime},
		{"firstEventTime", a.FirstEventTime},
	} {
		t, err := alertTime(a.ID, k[0], k[1])
		if err != nil {
			return nil, err
		}
		if !t.IsZero() {
			at = t
		}
	}
	base := p.common(&a)
	base.AlertTime, base.LastProcessedTimeUTC = at, updated
	n := max(len(a.Evidence), 1)
	out := make([]Detection, n)
	for i := range out {
		out[i] = base
		var e evidence
		if i < len(a.Evidence) {
			e = a.Evidence[i]
		}
		withEvidence(&out[i], &e, a.RelatedUser)
		out[i].AlertPart = i
	}
	return out, nil
}

func alertTime(id, key, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: alert %q: %s %q is not an RFC 3339 time", ErrAlert, id, key, v)
	}
	return t.UTC(), nil
}

// common fills the fields every detection of the alert shares.
func (p Portal) common(a *alert) Detection {
	wdatp, mtp := p.WDATP, p.MTP
	if wdatp == "" {
		wdatp = DefaultPortal.WDATP
	}
	if mtp == "" {
		mtp = DefaultPortal.MTP
	}
	wdatp, mtp = strings.TrimRight(wdatp, "/"), strings.TrimRight(mtp, "/")
	path, query := url.PathEscape(a.ID), url.QueryEscape(a.ID)
	name, domain, _ := strings.Cut(a.ComputerDNSName, ".")
	return Detection{
		ComputerDNSName:     a.ComputerDNSName,
		AlertTitle:          a.Title,
		Category:            a.Category,
		Severity:            a.Severity,
		AlertID:             a.ID,
		LinkToWDATP:         wdatp + "/alert/" + path,
		IoaDefinitionID:     a.DetectorID,
		ThreatFamily:        a.ThreatFamilyName,
		ThreatName:          a.ThreatName,
		Source:              a.DetectionSource,
		MachineDomain:       domain,
		MachineName:         name,
		DeviceID:            a.MachineID,
		MachineGroup:        a.RBACGroupName,
		Description:         a.Description,
		IncidentLinkToWDATP: wdatp + "/incidents/byalert?alertId=" + query + "&source=SIEM",
		LinkToMTP:           mtp + "/alert/" + path,
		IncidentLinkToMTP:   mtp + "/incidents/byalert?alertId=" + query + "&source=SIEM",
	}
}

// withEvidence fills the fields of one evidence item. The user is the evidence's account when
// it names one, else the alert's related user; LogOnUsers is the related user as DOMAIN\user
// (the old field's form), the nearest the Alert API has to "the users logged on".
func withEvidence(d *Detection, e *evidence, related *user) {
	d.Sha1, d.Sha256, d.FileHash = e.Sha1, e.Sha256, e.Sha1
	d.FileName, d.FilePath = e.FileName, e.FilePath
	d.IPAddress, d.URL = e.IPAddress, e.URL
	d.CommandLine = e.ProcessCommandLine
	if e.AccountName != "" {
		d.UserName, d.UserDomain = e.AccountName, e.DomainName
	} else if related != nil {
		d.UserName, d.UserDomain = related.UserName, related.DomainName
	}
	if related != nil && related.UserName != "" {
		d.LogOnUsers = related.UserName
		if related.DomainName != "" {
			d.LogOnUsers = related.DomainName + `\` + related.UserName
		}
	}
	d.IocUniqueID = iocUniqueID(e)
	d.FullID = d.AlertID + ":" + d.IocUniqueID
}

// iocUniqueID hashes the evidence item's identifying fields, each length-prefixed so that no
// two different items hash the same input.
func iocUniqueID(e *evidence) string {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	pid := strings.TrimSpace(string(e.ProcessID))
	if pid == "null" {
		pid = "" // a null and a missing processId are the same
	}
	for _, f := range [...]string{e.EntityType, e.Sha1, e.Sha256, e.FileName, e.FilePath,
		pid, e.ProcessCommandLine, e.ProcessCreationTime,
		e.IPAddress, e.URL, e.RegistryKey, e.RegistryHive, e.RegistryValue, e.AccountName,
		e.DomainName, e.UserSid, e.AadUserID, e.UserPrincipalName} {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(f)))])
		h.Write([]byte(f))
	}
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}
