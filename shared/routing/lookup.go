package routing

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/federation-gateway/gateway/shared/directory"
	"github.com/federation-gateway/gateway/shared/federation"
)

// AgentWriter stores an agent found by a targeted lookup; *dynamo.Store is one.
type AgentWriter interface {
	// PutAgent is directory.SyncStore's.
	PutAgent(ctx context.Context, a federation.Agent, version string, prev *directory.Record) (directory.Write, error)
	// Agent returns the directory's record of a DID. Errors: ENOTFOUND.
	Agent(ctx context.Context, did string) (federation.Agent, error)
	// AddAgents adds delta to a registry's count of active agents.
	AddAgents(ctx context.Context, registryID string, delta int) error
}

// RegistryLookup returns an Options.Lookup that asks each registry, in order, for the
// agent with a DID (directory.Source.LookupDID: each kind of registry by its own means),
// not a full sync. What it finds is normalized, checked to have that DID, stored as the
// sync would store it, counted, and routed to. A registry that fails is logged and passed
// over; when every registry failed, the lookup fails with EUNAVAILABLE (the caller's 502:
// the agent may well exist), and when none knows the DID, with ENOTFOUND.
func RegistryLookup(sources map[string]directory.Source, order []string, store AgentWriter, log *slog.Logger) func(context.Context, string) (federation.Agent, error) {
	return func(ctx context.Context, did string) (federation.Agent, error) {
		asked, failed := 0, 0
		for _, reg := range order {
			src, ok := sources[reg]
			if !ok {
				continue
			}
			asked++
			card, err := src.LookupDID(ctx, did)
			switch {
			case federation.ErrorCode(err) == federation.ENOTFOUND:
				continue
			case err != nil:
				failed++
				log.WarnContext(ctx, "targeted lookup: the registry failed", "registry", reg, "did", did, "error", err.Error())
				continue
			case !card.Active:
				continue
			}
			a, err := directory.Normalize(reg, card, time.Now())
			if err != nil {
				log.InfoContext(ctx, "targeted lookup: unusable card", "registry", reg, "did", did, "reason", err.Error())
				continue
			}
			if a.DID != did {
				continue
			}
			w, err := store.PutAgent(ctx, a, card.Version, nil)
			if err != nil {
				return federation.Agent{}, fmt.Errorf("store %s found in %s: %w", did, reg, err)
			}
			if w.Owner != reg {
				// Another registry's active record took the DID meanwhile: it is the one.
				return store.Agent(ctx, did)
			}
			if w.New {
				if err := store.AddAgents(ctx, reg, 1); err != nil {
					log.WarnContext(ctx, "targeted lookup: count the agent", "did", did, "error", err.Error())
				}
			}
			return a, nil
		}
		if asked > 0 && failed == asked {
			return federation.Agent{}, federation.Errorf(federation.EUNAVAILABLE, "no registry could be asked for %s: every one failed", did)
		}
		return federation.Agent{}, federation.Errorf(federation.ENOTFOUND, "no registry knows %s", did)
	}
}
