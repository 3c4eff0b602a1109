// Package directory is the federated directory: what the gateway knows of the registries
// and their agents, and the reports built from it.
package directory

import (
	"context"
	"fmt"

	"github.com/federation-gateway/gateway/shared/federation"
)

// StateStore reads what the sync recorded.
type StateStore interface {
	// RegistryStates returns the recorded state of each of the registries asked for that
	// has one; a registry never synced is absent from the map. Errors: EINTERNAL,
	// EUNAVAILABLE.
	RegistryStates(ctx context.Context, ids []string) (map[string]federation.RegistryState, error)
}

// Reporter builds the status report of the configured registries.
type Reporter struct {
	store      StateStore
	registries []federation.Registry
	version    string
	stage      string
}

// NewReporter returns a Reporter over the store for the configured registries.
func NewReporter(store StateStore, registries []federation.Registry, version, stage string) *Reporter {
	return &Reporter{store: store, registries: registries, version: version, stage: stage}
}

// Status reports every configured registry's health, warnings and agents by status, and
// the size of the directory: the sum of the registries' counts, which each sync sets from
// the registry's records (never adds to), so no failure can make them drift.
func (r *Reporter) Status(ctx context.Context) (federation.Status, error) {
	ids := make([]string, len(r.registries))
	for i, reg := range r.registries {
		ids[i] = reg.ID
	}
	states, err := r.store.RegistryStates(ctx, ids)
	if err != nil {
		return federation.Status{}, fmt.Errorf("status: %w", err)
	}
	s := federation.Status{
		Status:     "ok",
		Version:    r.version,
		Stage:      r.stage,
		Registries: make([]federation.RegistryStatus, 0, len(r.registries)),
		Pools:      []federation.PoolStatus{},
	}
	for _, reg := range r.registries {
		rs := federation.RegistryStatus{ID: reg.ID, URL: reg.URL, Kind: reg.Kind}
		if st, ok := states[reg.ID]; ok {
			rs.Healthy = st.Healthy
			rs.LastError = st.LastError
			rs.Agents, rs.AgentCount = st.Agents, st.Agents.Active
			rs.Skipped, rs.Problems = st.Skipped, st.Problems
			if !st.LastSync.IsZero() {
				t := st.LastSync.UTC()
				rs.LastSync = &t
			}
		}
		if !rs.Healthy {
			s.Status = "degraded"
		}
		s.TotalAgents += rs.Agents.Active
		s.TotalStale += rs.Agents.Stale
		s.Registries = append(s.Registries, rs)
	}
	return s, nil
}
