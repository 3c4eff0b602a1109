package events

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/federation-gateway/gateway/shared/federation"
)

// Event types.
const (
	AgentAdded   = "agent.added"   // a registry lists an agent the directory did not hold
	AgentChanged = "agent.changed" // an active agent's card changed
	AgentStale   = "agent.stale"   // its registry failed repeatedly; the record is kept
	AgentGone    = "agent.gone"    // its registry no longer lists it (or lists it inactive)
	AgentBack    = "agent.back"    // a stale or gone agent is active again

	RegistryUnhealthy = "registry.unhealthy" // a sync of the registry failed
	RegistryHealthy   = "registry.healthy"   // it synced again after failing

	MessageDelivered = "message.delivered" // a routed message reached its target
	MessageFailed    = "message.failed"    // its delivery failed

	LanePaused       = "lane.paused"        // an operator paused a bridge lane
	LaneResumed      = "lane.resumed"       // and resumed it
	LaneLowLiquidity = "lane.low_liquidity" // the gateway's liquidity on a registry fell below its threshold

	// BridgePrefix starts the type of a transfer's events: bridge.<status>, one per
	// status the transfer reaches (see BridgeStatuses).
	BridgePrefix = "bridge."
)

// BridgeStatuses are the statuses of a bridge transfer, each the type of an event
// (bridge.pending ... bridge.completed).
var BridgeStatuses = []string{"pending", "verified", "reserved", "minted", "completed", "refunding", "refunded", "rejected", "manual_review"}

// Types returns every event type.
func Types() []string {
	types := []string{AgentAdded, AgentChanged, AgentStale, AgentGone, AgentBack, RegistryUnhealthy, RegistryHealthy,
		MessageDelivered, MessageFailed, LanePaused, LaneResumed, LaneLowLiquidity}
	for _, s := range BridgeStatuses {
		types = append(types, BridgePrefix+s)
	}
	return types
}

// families are the prefixes a filter may name as "<family>.*".
var families = []string{"agent", "registry", "message", "bridge", "lane"}

// KnownType reports whether t is an event type, or a family of them written "agent.*".
func KnownType(t string) bool {
	if f, ok := strings.CutSuffix(t, ".*"); ok {
		return slices.Contains(families, f)
	}
	return slices.Contains(Types(), t)
}

// Event is one change of the federation, as subscribers receive it.
type Event struct {
	ID       string          `json:"id"`
	Type     string          `json:"type"`
	Time     time.Time       `json:"time"`
	Subject  string          `json:"subject"`
	Registry string          `json:"registry,omitempty"`
	Data     json.RawMessage `json:"data"`
	// Position is the event's place in the log, set when it is appended.
	Position Position `json:"position"`
	// Audience is who may see the event and what it concerns; it is not sent.
	Audience Audience `json:"-"`
}

// Audience says who may see an event and what it concerns, for authorization and
// subscription filters.
type Audience struct {
	// Parties are the identities (DIDs, SPIFFE IDs) that may see the event; none means any
	// authenticated subscriber.
	Parties []string
	// Agents, Registries and Transfer are what the agent, registry and transfer filters
	// match.
	Agents     []string
	Registries []string
	Transfer   string
}

// Position is an event's place in the log. The zero Position is before the first event.
type Position uint64

// positionWidth keeps positions of one width, so their text sorts as their numbers do.
const positionWidth = 16

// String returns the position's opaque text form.
func (p Position) String() string { return fmt.Sprintf("%0*d", positionWidth, uint64(p)) }

// MarshalJSON writes the text form.
func (p Position) MarshalJSON() ([]byte, error) { return json.Marshal(p.String()) }

// UnmarshalJSON reads the text form.
func (p *Position) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return federation.Errorf(federation.EINVALID, "a position is a string")
	}
	v, err := ParsePosition(s)
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// ParsePosition reads a position's text form. Errors: EINVALID.
func ParsePosition(s string) (Position, error) {
	if s == "" || len(s) > positionWidth+4 {
		return 0, federation.Errorf(federation.EINVALID, "%q is not a position; use the position of an event you received", truncate(s, 40))
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || strings.HasPrefix(s, "+") {
		return 0, federation.Errorf(federation.EINVALID, "%q is not a position; use the position of an event you received", truncate(s, 40))
	}
	return Position(n), nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
