package routing_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/federation-gateway/gateway/infra/demo"
	"github.com/federation-gateway/gateway/shared/config"
	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/logs"
	"github.com/federation-gateway/gateway/shared/outbound"
	"github.com/federation-gateway/gateway/shared/registry"
	"github.com/federation-gateway/gateway/shared/routing"
)

// demoLookup is the targeted lookup over the demo federation's registries, as the route
// function builds it.
func (f *fixture) demoLookup(t *testing.T) func(context.Context, string) (federation.Agent, error) {
	t.Helper()
	doc, err := config.Parse(f.fed.Config())
	if err != nil {
		t.Fatal(err)
	}
	sources, err := registry.NewClients(context.Background(), doc.Registries, outbound.Options{AllowPrivate: true, Timeout: 5 * time.Second},
		registry.Options{Retries: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return routing.RegistryLookup(sources, []string{demo.Alpha, demo.Beta}, f.store, logs.New(&bytes.Buffer{}, "error"))
}

// A target that joined an AgentVault v1 registry after the last sync is found by the
// registry's search (its card UUID is not in the DID), stored, counted and delivered to.
func TestRouteLookupOnAgentVaultV1(t *testing.T) {
	f := newFixture(t)
	known := f.betaTarget(t)
	f.fed.Registry(demo.Alpha).Put(demo.Card{
		HumanReadableID: "late/comer", Name: "Late Comer", Description: "Joined after the sync.",
		URL: known.Endpoint, Capabilities: demo.Capabilities{A2AVersion: "1.0"},
		Skills: []demo.CardSkill{{ID: "echo", Name: "Echo"}},
	})
	active := func() int {
		states, err := f.store.RegistryStates(context.Background(), []string{demo.Alpha})
		if err != nil {
			t.Fatal(err)
		}
		return states[demo.Alpha].Agents.Active
	}
	before := active()
	r := f.router(t, routing.Options{Lookup: f.demoLookup(t)})

	res, err := r.Route(context.Background(), federation.RouteRequest{From: f.senderDID(), To: "did:agentvault:late/comer", Payload: json.RawMessage(`{}`)}, f.token(t, sender))
	if err != nil || res.TargetRegistry != demo.Alpha || res.Status != "delivered" {
		t.Fatalf("route to an agent found on alpha by search: %+v, %v", res, err)
	}
	a, err := f.store.Agent(context.Background(), "did:agentvault:late/comer")
	rec, _ := f.fed.Registry(demo.Alpha).Find("late/comer")
	if err != nil || a.Registry != demo.Alpha || a.SourceID != rec.ID {
		t.Errorf("the agent found was not stored under its card's UUID: %+v, %v", a, err)
	}
	if n := active(); n != before+1 {
		t.Errorf("agent count %d after the lookup stored a new agent, want %d", n, before+1)
	}
	searched := false
	for _, req := range f.fed.Registry(demo.Alpha).Requests() {
		searched = searched || bytes.Contains([]byte(req.Query), []byte("search="))
	}
	if !searched {
		t.Error("alpha was not searched")
	}

	_, err = r.Route(context.Background(), federation.RouteRequest{From: f.senderDID(), To: "did:agentvault:never/heard", Payload: json.RawMessage(`{}`)}, f.token(t, sender))
	if federation.ErrorCode(err) != federation.ENOTFOUND {
		t.Errorf("an agent no registry knows: %v, want ENOTFOUND", err)
	}
}

// When every registry fails, the target may exist: the route is a 502 (EUNAVAILABLE), not
// a 404.
func TestRouteLookupAllRegistriesFailed(t *testing.T) {
	f := newFixture(t)
	r := f.router(t, routing.Options{Lookup: f.demoLookup(t)})
	for _, id := range []string{demo.Alpha, demo.Beta} {
		if err := f.fed.StopRegistry(id); err != nil {
			t.Fatal(err)
		}
	}
	_, err := r.Route(context.Background(), federation.RouteRequest{From: f.senderDID(), To: "did:agentvault:late/comer", Payload: json.RawMessage(`{}`)}, f.token(t, sender))
	if federation.ErrorCode(err) != federation.EUNAVAILABLE {
		t.Errorf("every registry down: %v, want EUNAVAILABLE (502)", err)
	}

	// One registry answering that it does not know the agent is a 404 again.
	if err := f.fed.StartRegistry(demo.Beta); err != nil {
		t.Fatal(err)
	}
	_, err = r.Route(context.Background(), federation.RouteRequest{From: f.senderDID(), To: "did:agentvault:late/comer", Payload: json.RawMessage(`{}`)}, f.token(t, sender))
	if federation.ErrorCode(err) != federation.ENOTFOUND {
		t.Errorf("one registry answering: %v, want ENOTFOUND", err)
	}
}
