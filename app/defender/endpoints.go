package defender

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"

	"ta-defender-alerts/app/netaddr"
)

// Cloud is a Microsoft cloud: commercial, or one of the US Government clouds.
type Cloud string

const (
	Commercial Cloud = "commercial"
	GCC        Cloud = "gcc"
	GCCHigh    Cloud = "gcc-high"
	DoD        Cloud = "dod"
)

type cloudHosts struct {
	api      string // default API base
	resource string // token resource; the scope is resource + "/.default"
	login    string
}

var clouds = map[Cloud]cloudHosts{
	Commercial: {api: "https://api.security.microsoft.com", resource: "https://api.securitycenter.microsoft.com", login: "https://login.microsoftonline.com"},
	GCC:        {api: "https://api-gcc.securitycenter.microsoft.us", resource: "https://api-gcc.securitycenter.microsoft.us", login: "https://login.microsoftonline.com"},
	GCCHigh:    {api: "https://api-gov.securitycenter.microsoft.us", resource: "https://api-gov.securitycenter.microsoft.us", login: "https://login.microsoftonline.us"},
	DoD:        {api: "https://api-gov.securitycenter.microsoft.us", resource: "https://api-gov.securitycenter.microsoft.us", login: "https://login.microsoftonline.us"},
}

// regions are the documented regional hosts of the commercial cloud (<region>.api.security.microsoft.com).
var regions = []string{"au", "eu", "ina", "swa", "uk", "us"}

// regionalFeeds names the feeds whose API has regional hosts, sorted.
func regionalFeeds() []string {
	var names []string
	for _, n := range Feeds() {
		if len(dialects[n].regions) > 0 {
			names = append(names, n)
		}
	}
	return names
}

// FeedRegions lists the regions (Config.Region) a feed's API has hosts for; none for a feed
// without regional hosts or one not known.
func FeedRegions(feed string) []string {
	if dl, ok := dialects[feed]; ok {
		return slices.Clone(dl.regions)
	}
	return nil
}

// Endpoints are the resolved addresses of one tenant's API and token service.
type Endpoints struct {
	API      *url.URL // base; requests go to API + the feed's path ("/api/alerts")
	TokenURL string   // Entra ID v2 token endpoint of the tenant
	Scope    string   // the API resource + "/.default"
}

// cloudNames lists the accepted cloud names, for messages.
func cloudNames() []string {
	names := make([]string, 0, len(clouds))
	for c := range clouds {
		names = append(names, string(c))
	}
	sort.Strings(names)
	return names
}

func resolveEndpoints(c *Config, dl *dialect) (Endpoints, error) {
	cloud := c.Cloud
	if cloud == "" {
		cloud = Commercial
	}
	hosts, ok := dl.clouds[Cloud(strings.ToLower(string(cloud)))]
	if !ok {
		return Endpoints{}, &FieldError{Field: "Cloud", Value: string(c.Cloud),
			Msg: "is not a cloud; use one of " + strings.Join(cloudNames(), ", ")}
	}
	cloud = Cloud(strings.ToLower(string(cloud)))
	api := hosts.api
	if c.Region != "" {
		region := strings.ToLower(c.Region)
		if len(dl.regions) == 0 {
			return Endpoints{}, &FieldError{Field: "Region", Value: c.Region,
				Msg: "applies to the " + strings.Join(regionalFeeds(), " and ") + " feeds only; leave it empty for " + dl.name}
		}
		if cloud != Commercial {
			return Endpoints{}, &FieldError{Field: "Region", Value: c.Region,
				Msg: "applies to the commercial cloud only; leave it empty for " + string(cloud)}
		}
		if !slices.Contains(dl.regions, region) {
			return Endpoints{}, &FieldError{Field: "Region", Value: c.Region,
				Msg: "is not a documented region; use one of " + strings.Join(dl.regions, ", ") + ", or leave it empty"}
		}
		api = dl.regionHost(region)
	}
	if c.APIURL != "" {
		api = c.APIURL
	}
	apiURL, err := baseURL("APIURL", api)
	if err != nil {
		return Endpoints{}, err
	}
	login := hosts.login
	if c.LoginURL != "" {
		login = c.LoginURL
	}
	loginURL, err := baseURL("LoginURL", login)
	if err != nil {
		return Endpoints{}, err
	}
	return Endpoints{
		API:      apiURL,
		TokenURL: loginURL.String() + "/" + url.PathEscape(c.TenantID) + "/oauth2/v2.0/token",
		Scope:    hosts.resource + "/.default", // an overridden API URL keeps its cloud's scope
	}, nil
}

// baseURL checks a base URL: https, or http for a loopback host only (tests and the demo).
func baseURL(field, raw string) (*url.URL, error) {
	shown := netaddr.RedactURL(raw) // what messages show: never the credentials a URL may carry
	u, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil || u.Host == "" {
		return nil, &FieldError{Field: field, Value: shown, Msg: "is not an absolute URL such as https://host"}
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !netaddr.IsLoopback(u.Hostname()) {
			return nil, &FieldError{Field: field, Value: shown, Msg: "must use https (plain http is allowed for loopback addresses only)"}
		}
	default:
		return nil, &FieldError{Field: field, Value: shown, Msg: "must be an https:// URL"}
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, &FieldError{Field: field, Value: shown, Msg: "must not carry credentials, a query or a fragment"}
	}
	return u, nil
}

var (
	guidRE   = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	domainRE = regexp.MustCompile(`^(?i)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$`)
)

// isGUID reports whether s is a GUID such as an Entra tenant or client id.
func isGUID(s string) bool { return guidRE.MatchString(s) }

func validTenant(s string) bool { return isGUID(s) || (len(s) <= 253 && domainRE.MatchString(s)) }

// FieldError names the setting that is wrong and why.
type FieldError struct {
	Field string // the Config field; callers map it to their own setting names
	Value string // the bad value, never a secret
	Msg   string
	Err   error
}

func (e *FieldError) Error() string {
	s := e.Field
	if e.Value != "" {
		s += fmt.Sprintf(" %q", e.Value)
	}
	s += " " + e.Msg
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *FieldError) Unwrap() error { return e.Err }

// Retryable is false: a setting is wrong until someone changes it.
func (e *FieldError) Retryable() bool { return false }
