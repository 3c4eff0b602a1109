package dynamo_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/federation-gateway/gateway/infra/localtest"
	"github.com/federation-gateway/gateway/shared/directory"
	"github.com/federation-gateway/gateway/shared/dynamo"
	"github.com/federation-gateway/gateway/shared/federation"
)

func newStore(t *testing.T) *dynamo.Store {
	t.Helper()
	return dynamo.NewStore(localtest.DynamoDB(t), localtest.Table(t))
}

func TestRegistryStatesRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	synced := time.Date(2026, 11, 25, 10, 0, 0, 123000000, time.UTC)
	want := []federation.RegistryState{
		{ID: "alpha", Healthy: true, LastSync: synced, Agents: federation.AgentCounts{Active: 12, Stale: 1, Gone: 2}},
		{ID: "beta", Healthy: false, LastError: "GET /api/v1/agent-cards/: 503", ConsecutiveFailures: 3,
			Skipped: 2, Problems: []string{"card x: card_data is not a JSON object", "and 4 more problems"}},
	}
	for _, st := range want {
		if err := s.SaveSyncState(ctx, directory.SyncState{RegistryState: st}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.RegistryStates(ctx, []string{"alpha", "beta", "never-synced"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d states, want 2 (a registry never synced has none): %+v", len(got), got)
	}
	for _, w := range want {
		g := got[w.ID]
		if g.ID != w.ID || g.Healthy != w.Healthy || !g.LastSync.Equal(w.LastSync) || g.LastError != w.LastError ||
			g.Agents != w.Agents || g.ConsecutiveFailures != w.ConsecutiveFailures || g.Skipped != w.Skipped ||
			!slices.Equal(g.Problems, w.Problems) {
			t.Errorf("state %s = %+v, want %+v", w.ID, g, w)
		}
	}
}

// BatchGetItem takes 100 keys a request: more registries than that are read in chunks.
func TestRegistryStatesOverOneBatch(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	var ids []string
	for i := range 230 {
		id := fmt.Sprintf("r%03d", i)
		ids = append(ids, id)
		if i%2 == 0 {
			if err := s.SaveSyncState(ctx, directory.SyncState{RegistryState: federation.RegistryState{ID: id, Healthy: true, Agents: federation.AgentCounts{Active: i}}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	got, err := s.RegistryStates(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 115 {
		t.Fatalf("got %d states, want 115", len(got))
	}
	if got["r228"].Agents.Active != 228 {
		t.Errorf("r228 = %+v", got["r228"])
	}
}

// A targeted lookup counts its agent at once, on the registry's state, which need not
// exist yet; the registry's next sync sets the count again.
func TestAddAgents(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	for _, d := range []int{5000, -3, 1} {
		if err := s.AddAgents(ctx, "alpha", d); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.RegistryStates(ctx, []string{"alpha"})
	if err != nil || got["alpha"].Agents.Active != 4998 {
		t.Errorf("alpha = %+v, %v; want 4998 active", got["alpha"], err)
	}
}

// Discovery sums the registries' facet counts; a registry's counts are replaced whole.
func TestFacetCounts(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	if err := s.SaveFacetCounts(ctx, "alpha", map[string]int{"all#*#active": 3, "tag#x#active": 1, "tag#y#active": 2}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveFacetCounts(ctx, "beta", map[string]int{"all#*#active": 2, "tag#x#active": 2}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveFacetCounts(ctx, "alpha", map[string]int{"all#*#active": 4, "tag#x#active": 0}); err != nil {
		t.Fatal(err)
	}
	got, err := s.FacetCounts(ctx, []string{"alpha", "beta", "never-synced"}, []string{"all#*#active", "tag#x#active", "tag#y#active", "tag#z#active"})
	want := map[string]int{"all#*#active": 6, "tag#x#active": 2, "tag#y#active": 0, "tag#z#active": 0}
	if err != nil || !maps.Equal(got, want) {
		t.Errorf("FacetCounts = %v, %v; want %v", got, err, want)
	}
}

// A missing table is our fault, not the caller's: an internal error whose cause is kept
// for the log.
func TestMissingTableIsInternal(t *testing.T) {
	s := dynamo.NewStore(localtest.DynamoDB(t), "no-such-table")
	_, err := s.FacetCounts(context.Background(), []string{"a"}, []string{"all#*#active"})
	if federation.ErrorCode(err) != federation.EINTERNAL {
		t.Fatalf("err = %v (code %q), want internal", err, federation.ErrorCode(err))
	}
	if _, err := s.RegistryStates(context.Background(), []string{"a"}); federation.ErrorCode(err) != federation.EINTERNAL {
		t.Fatalf("RegistryStates err = %v", err)
	}
}

// DynamoDB refuses a batch that names one item twice (kumo accepts it, moto does not: see
// TestEngine). A repeated DID is read once, a repeated facet written once.
func TestRepeatedKeysInBatches(t *testing.T) {
	ctx := context.Background()
	db, ops := localtest.CountingDynamoDB(t)
	s := dynamo.NewStore(db, localtest.Table(t))
	a := federation.Agent{
		DID: "did:agentvault:test/twice", SourceID: "twice", Registry: "alpha", Status: federation.StatusActive,
		ServiceType: "text", Capabilities: []string{"echo", "echo"}, Tags: []string{"x", "x"},
	}
	// The same agent without the repeats: what writing it takes.
	twin := a
	twin.DID, twin.SourceID, twin.Capabilities, twin.Tags = "did:agentvault:test/once", "once", []string{"echo"}, []string{"x"}
	if _, err := s.PutAgent(ctx, twin, "", nil); err != nil {
		t.Fatal(err)
	}
	want := ops.Writes()
	ops.Reset()
	if _, err := s.PutAgent(ctx, a, "", nil); err != nil {
		t.Fatalf("an agent with a repeated capability and tag: %v", err)
	}
	if ops.Writes() != want {
		t.Errorf("the agent with repeats took %d writes, without them %d", ops.Writes(), want)
	}
	got, err := s.Agents(ctx, []string{a.DID, a.DID, "did:agentvault:test/none", "did:agentvault:test/none"})
	if err != nil {
		t.Fatalf("a repeated DID: %v", err)
	}
	if len(got) != 1 || got[0].DID != a.DID {
		t.Errorf("got %+v, want the agent once", got)
	}
	dids, _, err := s.QueryFacet(ctx, directory.FacetKey("capability", "echo", federation.StatusActive), "", 10)
	if err != nil || !slices.Equal(dids, []string{twin.DID, a.DID}) {
		t.Errorf("the echo facet lists %v, %v; want each agent once", dids, err)
	}
}
