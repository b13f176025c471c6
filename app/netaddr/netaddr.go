// Package netaddr answers the one address question several packages ask: is a host this
// machine? Plain http and unverified TLS are allowed only for such hosts.
package netaddr

import (
	"net"
	"strings"
)

// IsLoopback reports whether host names this machine: localhost or a loopback IP.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
