package directory_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/federation-gateway/gateway/infra/localtest"
	"github.com/federation-gateway/gateway/shared/directory"
	"github.com/federation-gateway/gateway/shared/dynamo"
	"github.com/federation-gateway/gateway/shared/federation"
)

func TestStatus(t *testing.T) {
	ctx := context.Background()
	store := dynamo.NewStore(localtest.DynamoDB(t), localtest.Table(t))
	registries := []federation.Registry{
		{ID: "alpha", URL: "https://a.example", Kind: federation.KindAgentVault},
		{ID: "beta", URL: "https://b.example", Kind: federation.KindAgentVaultFederation},
	}
	r := directory.NewReporter(store, registries, "1.0.0", "test")

	s, err := r.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Status != "degraded" || len(s.Registries) != 2 || s.Registries[0].Healthy || s.Registries[0].LastSync != nil || s.TotalAgents != 0 {
		t.Errorf("before any sync: %+v", s)
	}

	synced := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	for _, st := range []federation.RegistryState{
		{ID: "alpha", Healthy: true, LastSync: synced, Agents: federation.AgentCounts{Active: 7, Gone: 1}},
		{ID: "beta", Healthy: true, LastSync: synced, Agents: federation.AgentCounts{Active: 5}},
	} {
		if err := store.SaveSyncState(ctx, directory.SyncState{RegistryState: st}); err != nil {
			t.Fatal(err)
		}
	}
	s, err = r.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Status != "ok" || s.TotalAgents != 12 || s.Registries[1].AgentCount != 5 || !s.Registries[0].LastSync.Equal(synced) ||
		s.Registries[0].Agents != (federation.AgentCounts{Active: 7, Gone: 1}) {
		t.Errorf("after a sync: %+v", s)
	}

	// A failing registry's agents, once stale, are no longer counted as its agents.
	if err := store.SaveSyncState(ctx, directory.SyncState{RegistryState: federation.RegistryState{ID: "beta", LastSync: synced, LastError: "503", ConsecutiveFailures: 3,
		Agents: federation.AgentCounts{Stale: 5}, Problems: []string{"card x deferred"}}}); err != nil {
		t.Fatal(err)
	}
	s, err = r.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if b := s.Registries[1]; s.Status != "degraded" || b.Healthy || b.LastError != "503" || !s.Registries[0].Healthy ||
		b.AgentCount != 0 || b.Agents.Stale != 5 || s.TotalAgents != 7 || s.TotalStale != 5 || len(b.Problems) != 1 {
		t.Errorf("one registry failing: %+v", s)
	}

	// The wire shape of the report is the API: keys and an empty pools list, never null.
	raw, _ := json.Marshal(s)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	for _, k := range []string{"status", "version", "stage", "registries", "total_agents", "total_stale", "pools"} {
		if _, ok := m[k]; !ok {
			t.Errorf("report %s lacks %q", raw, k)
		}
	}
	if pools, ok := m["pools"].([]any); !ok || len(pools) != 0 {
		t.Errorf("pools = %v, want []", m["pools"])
	}
}
