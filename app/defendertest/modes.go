package defendertest

import (
	"fmt"
	"strings"
)

// The list orders and the API modes a stand-in can take.

// Order is how the stand-in orders the versions a query selects, before $skip and $top cut
// the page out of them. The real API documents no order, so a client must be complete under
// every one of these.
type Order int

const (
	NewestFirst        Order = iota // newest lastUpdateTime first, ties in a stable order (the default)
	NewestFirstTies                 // newest lastUpdateTime first, ties in a new random order on every call
	OldestFirst                     // oldest lastUpdateTime first
	Shuffled                        // no stable order: a new random order on every call
	NewestCreatedFirst              // newest alertCreationTime first, ties in a stable order
	IDOrder                         // by id, ascending (alert ids begin with their creation ticks)
)

var orderNames = []string{"lastupdate", "lastupdate-ties", "oldest", "shuffled", "created", "id"}

func (o Order) String() string {
	if int(o) < len(orderNames) {
		return orderNames[o]
	}
	return fmt.Sprintf("Order(%d)", int(o))
}

// ParseOrder reads an order by its String name (for flags).
func ParseOrder(s string) (Order, error) {
	for i, n := range orderNames {
		if n == s {
			return Order(i), nil
		}
	}
	return 0, fmt.Errorf("unknown order %q (want one of %s)", s, strings.Join(orderNames, ", "))
}

// Mode is the API a stand-in serves. Each mode answers only its own paths (another mode's path
// is a 404), with its own token audience, field names, query grammar, limits and error shape;
// the tenant's alerts, their updates and late visibility, the quotas and the adversity
// (failures, stalls, cut-off bodies, orders) are shared.
type Mode int

const (
	AlertAPIMode  Mode = iota // Defender for Endpoint's GET /api/alerts (the default)
	GraphMode                 // Microsoft Graph's GET /v1.0/security/alerts_v2
	IncidentsMode             // Defender XDR's GET /api/incidents
)

var modeNames = []string{"endpoint-alerts", "graph-alerts", "incidents"}

func (m Mode) String() string {
	if int(m) < len(modeNames) {
		return modeNames[m]
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ParseMode reads a mode by its String name, the feed's name (for flags).
func ParseMode(s string) (Mode, error) {
	for i, n := range modeNames {
		if n == s {
			return Mode(i), nil
		}
	}
	return 0, fmt.Errorf("unknown mode %q (want one of %s)", s, strings.Join(modeNames, ", "))
}
