package directory

import (
	"context"
	"time"

	"github.com/federation-gateway/gateway/shared/federation"
)

// Record is what the directory holds of one registry's view of an agent: the record the
// registry owns, or a shadow when another registry owns the DID.
type Record struct {
	DID         string
	SourceID    string
	Registry    string
	ContentHash string
	Status      string
	Owner       bool     // the registry owns the agent's record (else this is a shadow)
	Facets      []string // the discovery facets the record is indexed under
}

// View is what the directory holds of one registry.
type View struct {
	// Records are the registry's records, owned and shadows, by source ID.
	Records map[string]Record
	// Versions are the Card.Version of each record's card as last stored, by source ID:
	// the Source's change token, kept beside the records, never read by the directory.
	Versions map[string]string
}

// SyncState is what the sync keeps of a registry between runs.
type SyncState struct {
	federation.RegistryState
	Cursor          string
	LastFullRefresh time.Time
	Duration        time.Duration
	Pages           int
	Requests        int
}

// Write says what PutAgent did.
type Write struct {
	// Owner is the registry that owns the DID's record after the write; it differs from
	// the agent's registry when another registry's active record kept it (a conflict).
	Owner string
	// New is true when the DID had no live record before (the directory grew by one).
	New bool
}

// SyncStore is the storage the sync needs.
type SyncStore interface {
	StateStore
	// Lease takes the named lease for ttl unless another holder's lease is unexpired.
	// Errors: ECONFLICT when it is held.
	Lease(ctx context.Context, name, holder string, ttl time.Duration) error
	// ReleaseLease gives a lease back if holder still holds it.
	ReleaseLease(ctx context.Context, name, holder string) error
	// SyncState returns a registry's state; a registry never synced has a zero state.
	SyncState(ctx context.Context, registryID string) (SyncState, error)
	// SaveSyncState stores it.
	SaveSyncState(ctx context.Context, s SyncState) error
	// View returns every record of the registry, owned and shadow, with their cards'
	// versions.
	View(ctx context.Context, registryID string) (View, error)
	// PutAgent writes a's record. It takes the DID's record when there is none, the
	// registry already owns it, or the owner's record is not active; otherwise it writes a
	// shadow for a's registry and notes the conflict on the owner's record. prev is the
	// registry's previous record of the agent, if any; version is the card's Version.
	PutAgent(ctx context.Context, a federation.Agent, version string, prev *Record) (Write, error)
	// SetStatus changes the status of a record (a gone record expires after ttl).
	SetStatus(ctx context.Context, r Record, status string, now time.Time, ttl time.Duration) error
	// AddAgents adds delta to the directory's agent count.
	AddAgents(ctx context.Context, delta int) error
	// AddFacetCounts adds to the per-facet counts discovery chooses its index by.
	AddFacetCounts(ctx context.Context, deltas map[string]int) error
}

// Facets returns the discovery index keys of an agent: one per filterable value, each
// with the agent's status, so a Query on one key yields exactly the agents that match.
func Facets(a federation.Agent) []string {
	keys := []string{
		FacetKey("all", "*", a.Status),
		FacetKey("type", a.ServiceType, a.Status),
		FacetKey("registry", a.Registry, a.Status),
	}
	for _, c := range a.Capabilities {
		keys = append(keys, FacetKey("capability", c, a.Status))
	}
	for _, t := range a.Tags {
		keys = append(keys, FacetKey("tag", t, a.Status))
	}
	return keys
}

// FacetKey is the index key of one filter value and status.
func FacetKey(facet, value, status string) string {
	return facet + "#" + value + "#" + status
}
