package routing

import (
	"context"
	"strings"
	"time"

	"github.com/federation-gateway/gateway/shared/directory"
	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/registry"
)

// AgentWriter stores an agent found by a targeted lookup; *dynamo.Store is one.
type AgentWriter interface {
	PutAgent(ctx context.Context, a federation.Agent, cache registry.Known, prev *directory.Record) (directory.Write, error)
}

// RegistryLookup returns an Options.Lookup that asks each registry for one agent by the ID
// its DID implies, not a full sync: the humanReadableId of a did:agentvault, the base URL
// of a did:web (an A2A agent). What it finds is normalized, stored as the sync would store
// it, and routed to. A registry that does not know the ID, or fails, is passed over.
func RegistryLookup(clients map[string]registry.Client, order []string, store AgentWriter) func(context.Context, string) (federation.Agent, error) {
	return func(ctx context.Context, did string) (federation.Agent, error) {
		id := sourceIDOf(did)
		if id == "" {
			return federation.Agent{}, federation.Errorf(federation.ENOTFOUND, "no agent %s", did)
		}
		for _, reg := range order {
			c, ok := clients[reg]
			if !ok {
				continue
			}
			card, err := c.Lookup(ctx, id)
			if err != nil || !card.Active {
				continue
			}
			a, err := directory.Normalize(reg, card, time.Now())
			if err != nil || a.DID != did {
				continue
			}
			if _, err := store.PutAgent(ctx, a, registry.Known{ListHash: card.ListHash, ETag: card.ETag}, nil); err != nil {
				return federation.Agent{}, err
			}
			return a, nil
		}
		return federation.Agent{}, federation.Errorf(federation.ENOTFOUND, "no registry knows %s", did)
	}
}

// sourceIDOf is the registry ID a DID implies, or "".
func sourceIDOf(did string) string {
	if id, ok := strings.CutPrefix(did, "did:agentvault:"); ok {
		return id
	}
	if host, ok := strings.CutPrefix(did, "did:web:"); ok {
		parts := strings.Split(host, ":")
		parts[0] = strings.ReplaceAll(parts[0], "%3A", ":")
		return "https://" + strings.Join(parts, "/")
	}
	return ""
}
