package dynamo_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/federation-gateway/gateway/infra/localtest"
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
		{ID: "alpha", Healthy: true, LastSync: synced, AgentCount: 12},
		{ID: "beta", Healthy: false, LastError: "GET /api/v1/agent-cards/: 503", ConsecutiveFailures: 3},
	}
	for _, st := range want {
		if err := s.RecordRegistryState(ctx, st); err != nil {
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
			g.AgentCount != w.AgentCount || g.ConsecutiveFailures != w.ConsecutiveFailures {
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
			if err := s.RecordRegistryState(ctx, federation.RegistryState{ID: id, Healthy: true, AgentCount: i}); err != nil {
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
	if got["r228"].AgentCount != 228 {
		t.Errorf("r228 = %+v", got["r228"])
	}
}

func TestAgentCount(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	n, err := s.AgentCount(ctx)
	if err != nil || n != 0 {
		t.Fatalf("empty directory: %d, %v", n, err)
	}
	for _, d := range []int{5000, -3, 1} {
		if err := s.AddAgents(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if n, err = s.AgentCount(ctx); err != nil || n != 4998 {
		t.Errorf("AgentCount = %d, %v; want 4998", n, err)
	}
}

// A missing table is our fault, not the caller's: an internal error whose cause is kept
// for the log.
func TestMissingTableIsInternal(t *testing.T) {
	s := dynamo.NewStore(localtest.DynamoDB(t), "no-such-table")
	_, err := s.AgentCount(context.Background())
	if federation.ErrorCode(err) != federation.EINTERNAL {
		t.Fatalf("err = %v (code %q), want internal", err, federation.ErrorCode(err))
	}
	if _, err := s.RegistryStates(context.Background(), []string{"a"}); federation.ErrorCode(err) != federation.EINTERNAL {
		t.Fatalf("RegistryStates err = %v", err)
	}
}
