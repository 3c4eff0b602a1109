package federation

import "time"

// Agent statuses. An agent is active while its registry lists it; stale when its registry
// has failed repeatedly (it is kept and still discoverable with status=stale); gone when a
// complete listing of its registry no longer names it or names it inactive (kept, with a
// TTL, so a reappearance is recognised).
const (
	StatusActive = "active"
	StatusStale  = "stale"
	StatusGone   = "gone"
)

// Card signature statuses (A2A v1.0 JWS signatures over the RFC 8785 canonical card).
const (
	SignatureNone       = "unsigned"   // the card carries no signature
	SignatureValid      = "valid"      // a signature verifies with the key it names
	SignatureInvalid    = "invalid"    // a signature does not verify
	SignatureUnverified = "unverified" // signed, but with a key the gateway cannot obtain offline
)

// Agent is the directory's normalized record of one agent, whatever kind of registry and
// card it came from.
type Agent struct {
	DID         string   `json:"did"`
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Registry    string   `json:"registry"`  // the registry whose record this is
	SourceID    string   `json:"source_id"` // the registry's own ID for it
	Endpoint    string   `json:"endpoint"`  // where A2A messages go
	Protocol    string   `json:"protocol"`  // the endpoint's protocol binding, e.g. JSONRPC
	Version     string   `json:"protocol_version,omitempty"`
	Skills      []Skill  `json:"skills"`
	Tags        []string `json:"tags"`
	ServiceType string   `json:"service_type"`
	// Capabilities are the card's capability features and skill IDs: what discovery's
	// capability filter matches.
	Capabilities []string `json:"capabilities"`
	// Identities are the DIDs and SPIFFE IDs the card binds to the agent.
	Identities []string  `json:"identities"`
	Signature  string    `json:"signature"`
	Status     string    `json:"status"`
	LastSeen   time.Time `json:"last_seen"`
	// ContentHash is the SHA-256 of the normalized card: what the sync compares to write
	// only what changed.
	ContentHash string `json:"content_hash"`
	// AlsoListedBy names the other registries that list the same DID (a conflict,
	// resolved in this record's favour; see directory.Resolve).
	AlsoListedBy []string `json:"also_listed_by,omitempty"`
}

// Skill is one skill of an agent.
type Skill struct {
	ID   string   `json:"id"`
	Name string   `json:"name"`
	Tags []string `json:"tags,omitempty"`
}
