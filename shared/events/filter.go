package events

import (
	"slices"
	"strings"
)

// Filter is what a subscription asks for. Every field that is set must match; an empty
// Filter matches every event the subscriber may see.
type Filter struct {
	// Types are event types or families ("agent.*"); any of them matches.
	Types []string `json:"types,omitempty"`
	// Registry matches events that concern the registry.
	Registry string `json:"registry,omitempty"`
	// Agent matches events that concern the agent (its DID).
	Agent string `json:"agent,omitempty"`
	// Transfer matches the events of one bridge transfer.
	Transfer string `json:"transfer,omitempty"`
}

// Match reports whether e passes the filter.
func (f Filter) Match(e Event) bool {
	if len(f.Types) > 0 && !slices.ContainsFunc(f.Types, func(t string) bool { return typeMatches(t, e.Type) }) {
		return false
	}
	if f.Registry != "" && !slices.Contains(e.Audience.Registries, f.Registry) {
		return false
	}
	if f.Agent != "" && !slices.Contains(e.Audience.Agents, f.Agent) {
		return false
	}
	if f.Transfer != "" && e.Audience.Transfer != f.Transfer {
		return false
	}
	return true
}

func typeMatches(pattern, t string) bool {
	if family, ok := strings.CutSuffix(pattern, ".*"); ok {
		return strings.HasPrefix(t, family+".")
	}
	return pattern == t
}

// Viewer is a subscriber as the gateway verified it when it connected.
type Viewer struct {
	// Subject is the verified identity (a DID or SPIFFE ID).
	Subject string `json:"subject"`
	// Operator viewers see every event.
	Operator bool `json:"operator,omitempty"`
	// Acting are the agents (DIDs) the subject may act for besides itself: those whose
	// directory record declares the subject as one of its identities.
	Acting []string `json:"acting,omitempty"`
}

// CanSee reports whether the viewer may receive e: directory, registry and lane events
// go to any viewer, message and bridge events to their parties only, and everything to
// operators.
func (v Viewer) CanSee(e Event) bool {
	if v.Operator || len(e.Audience.Parties) == 0 {
		return true
	}
	for _, p := range e.Audience.Parties {
		if p != "" && (p == v.Subject || slices.Contains(v.Acting, p)) {
			return true
		}
	}
	return false
}
