// Package defender reads alerts from the Microsoft Defender for Endpoint Alert API, or from
// Microsoft Graph's security alerts_v2 (Config.Feed): one drain, each API's names, limits and
// error shape in a dialect (dialect.go).
//
// It owns everything on the Microsoft side: the Entra ID token (client secret or certificate),
// the cloud and regional hosts, the HTTP transport (proxy, CA bundle), the client-side rate
// limit, retries, and the drain of a lastUpdateTime window that stays complete while alerts
// change under it. It knows nothing of Splunk: alerts leave it as the exact bytes the API sent.
//
// The package does not log; it returns errors that say what to fix, and counts what it did
// in Stats.
package defender
