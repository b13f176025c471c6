package siem

import (
	"bytes"
	"encoding/json"
	"time"
)

// Detection is one record of the old SIEM API's shape: the field names, their order and their
// value conventions ("" for missing text; null for the old API's nullable numbers and booleans)
// follow Microsoft's documented example, so that content written for that feed keeps working.
// It is both the `ms:defender:atp:detections` event (JSON) and what CEF and LEEF map from.
//
// Go names follow Go's initialisms; the JSON names are the old API's.
type Detection struct {
	AlertTime                 time.Time `json:"AlertTime"`
	ComputerDNSName           string    `json:"ComputerDnsName"`
	AlertTitle                string    `json:"AlertTitle"`
	Category                  string    `json:"Category"`
	Severity                  string    `json:"Severity"`
	AlertID                   string    `json:"AlertId"`
	Actor                     string    `json:"Actor"`
	LinkToWDATP               string    `json:"LinkToWDATP"`
	IocName                   string    `json:"IocName"`
	IocValue                  string    `json:"IocValue"`
	CreatorIocName            string    `json:"CreatorIocName"`
	CreatorIocValue           string    `json:"CreatorIocValue"`
	Sha1                      string    `json:"Sha1"`
	FileName                  string    `json:"FileName"`
	FilePath                  string    `json:"FilePath"`
	IPAddress                 string    `json:"IpAddress"`
	URL                       string    `json:"Url"`
	IoaDefinitionID           string    `json:"IoaDefinitionId"`
	UserName                  string    `json:"UserName"`
	AlertPart                 int       `json:"AlertPart"`
	FullID                    string    `json:"FullId"`
	LastProcessedTimeUTC      time.Time `json:"LastProcessedTimeUtc"`
	ThreatCategory            string    `json:"ThreatCategory"`
	ThreatFamily              string    `json:"ThreatFamily"`
	ThreatName                string    `json:"ThreatName"`
	RemediationAction         string    `json:"RemediationAction"`
	RemediationIsSuccess      *bool     `json:"RemediationIsSuccess"`
	Source                    string    `json:"Source"`
	Md5                       string    `json:"Md5"`
	Sha256                    string    `json:"Sha256"`
	WasExecutingWhileDetected *bool     `json:"WasExecutingWhileDetected"`
	UserDomain                string    `json:"UserDomain"`
	LogOnUsers                string    `json:"LogOnUsers"`
	MachineDomain             string    `json:"MachineDomain"`
	MachineName               string    `json:"MachineName"`
	InternalIPv4List          string    `json:"InternalIPv4List"`
	InternalIPv6List          string    `json:"InternalIPv6List"`
	FileHash                  string    `json:"FileHash"`
	DeviceID                  string    `json:"DeviceID"`
	MachineGroup              string    `json:"MachineGroup"`
	Description               string    `json:"Description"`
	DeviceCreatedMachineTags  string    `json:"DeviceCreatedMachineTags"`
	CloudCreatedMachineTags   string    `json:"CloudCreatedMachineTags"`
	CommandLine               string    `json:"CommandLine"`
	IncidentLinkToWDATP       string    `json:"IncidentLinkToWDATP"`
	ReportID                  *int64    `json:"ReportID"`
	LinkToMTP                 string    `json:"LinkToMTP"`
	IncidentLinkToMTP         string    `json:"IncidentLinkToMTP"`
	ExternalID                string    `json:"ExternalId"`
	IocUniqueID               string    `json:"IocUniqueId"`
}

// AppendJSON appends the detection as one JSON object, fields in the old API's order, times
// in RFC 3339 UTC with as many fractional digits as they need (the API's own style), and
// without HTML escaping (the old feed wrote `&` in its links as is). It fails only for a time
// outside the years 0-9999, which Build never makes.
func (d *Detection) AppendJSON(dst []byte) ([]byte, error) {
	b := bytes.NewBuffer(dst)
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	v := *d
	v.AlertTime = v.AlertTime.UTC()
	v.LastProcessedTimeUTC = v.LastProcessedTimeUTC.UTC()
	if err := enc.Encode((*plainDetection)(&v)); err != nil {
		return dst, err
	}
	out := b.Bytes()
	return out[:len(out)-1], nil // Encode ends with a line break
}

// plainDetection has Detection's fields without its methods.
type plainDetection Detection
