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
	// IndexPending says a write of the record was cut short before its index entries
	// were brought to Facets: the sync repairs them (SyncStore.RepairIndex) before
	// anything else, so that no failure hides an agent from discovery for good.
	IndexPending bool
}

// View is what the directory holds of one registry.
type View struct {
	// Records are the registry's records, owned and shadows, by source ID.
	Records map[string]Record
	// Versions are the Card.Version of each record's card as last stored, by source ID:
	// the Source's change token, kept beside the records, never read by the directory.
	Versions map[string]string
	// Extra are the registry's other records of a source ID already in Records: the
	// records of DIDs its card named before (Records holds the live one).
	Extra []Record
}

// SyncState is what the sync keeps of a registry between runs.
type SyncState struct {
	federation.RegistryState
	Cursor          string
	LastFullRefresh time.Time
	Duration        time.Duration
	Pages           int
	Requests        int
	// CountsHash identifies the facet counts last saved for the registry, so an
	// unchanged run does not write them again.
	CountsHash string
}

// Write says what PutAgent did.
type Write struct {
	// Owner is the registry that owns the DID's record after the write; it differs from
	// the agent's registry when another registry's active record kept it (a conflict).
	Owner string
	// New is true when the DID had no live record before (the directory grew by one).
	New bool
	// TakenFrom is the registry whose (gone or stale) record of the DID the write took
	// over, "" when there was none: that registry's counts changed too.
	TakenFrom string
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
	// A write cut short leaves the record IndexPending or absent, never indexed wrongly
	// unbeknown: repeating it, or RepairIndex, completes it.
	PutAgent(ctx context.Context, a federation.Agent, version string, prev *Record) (Write, error)
	// SetStatus changes the status of a record (a gone record expires after ttl), with
	// the same guarantee as PutAgent.
	SetStatus(ctx context.Context, r Record, status string, now time.Time, ttl time.Duration) error
	// RepairIndex brings the index entries of an IndexPending record to its facets.
	RepairIndex(ctx context.Context, r Record) error
	// Agents returns the records of those DIDs that exist.
	Agents(ctx context.Context, dids []string) ([]federation.Agent, error)
	// Promote makes a shadow the DID's record, as PutAgent would write the agent the
	// shadow keeps, and returns the registry's record after it: still a shadow when an
	// active owner's record came back meanwhile. Errors: ENOTFOUND when the shadow does
	// not keep the whole agent (one written before shadows did): the card's next change
	// rewrites it.
	Promote(ctx context.Context, shadow Record) (Record, Write, error)
	// SaveFacetCounts replaces the counts of the discovery facets the registry's records
	// are indexed under.
	SaveFacetCounts(ctx context.Context, registryID string, counts map[string]int) error
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
