// Package netaddr answers the address questions several packages ask: is a host this machine
// (plain http and unverified TLS are allowed only for such hosts), and how to show a URL in a
// message without the credentials it may carry.
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
