package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/federation-gateway/gateway/infra/demo"
	"github.com/federation-gateway/gateway/infra/localtest"
	"github.com/federation-gateway/gateway/shared/directory"
	"github.com/federation-gateway/gateway/shared/dynamo"
	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/logs"
	"github.com/federation-gateway/gateway/shared/metrics"
	"github.com/federation-gateway/gateway/shared/outbound"
	"github.com/federation-gateway/gateway/shared/registry"
)

func TestHandler(t *testing.T) {
	reg := demo.NewRegistry("alpha", false)
	reg.Put(demo.Card{HumanReadableID: "t/echo", Name: "Echo", URL: "https://agents.example/echo",
		Capabilities: demo.Capabilities{A2AVersion: "1.0"}, Skills: []demo.CardSkill{{ID: "echo", Name: "Echo"}}})
	srv := httptest.NewServer(reg.Handler())
	defer srv.Close()

	down := httptest.NewServer(nil)
	down.Close() // a registry that refuses connections

	cfg := federation.Registry{ID: "alpha", URL: srv.URL, Kind: federation.KindAgentVault}
	downCfg := federation.Registry{ID: "down", URL: down.URL, Kind: federation.KindAgentVault}
	sources := map[string]directory.Source{}
	for _, c := range []federation.Registry{cfg, downCfg} {
		client, err := registry.New(c, outbound.NewClient(outbound.Options{AllowPrivate: true}), registry.Options{})
		if err != nil {
			t.Fatal(err)
		}
		sources[c.ID] = client
	}
	store := dynamo.NewStore(localtest.DynamoDB(t), localtest.Table(t))
	syncer := directory.NewSyncer(store, []federation.Registry{cfg, downCfg}, sources,
		directory.SyncOptions{}, logs.New(&bytes.Buffer{}, "error"))
	var emitted bytes.Buffer
	m := metrics.New(&emitted, "test", "sync")

	event, err := os.ReadFile(filepath.Join(localtest.RepoRoot(t), "events", "sync.json"))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Handler(syncer, nil, m)(context.Background(), event)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Registries) != 2 || !rep.Registries[0].OK || rep.Registries[0].New != 1 || rep.Registries[1].OK {
		t.Errorf("report = %+v", rep)
	}
	// Each registry's run is counted under its ID; the one that is down says so, and on
	// the next run for how long.
	if _, err := Handler(syncer, nil, m)(context.Background(), event); err != nil {
		t.Fatal(err)
	}
	agg := metrics.NewAggregator()
	for _, line := range bytes.Split(emitted.Bytes(), []byte("\n")) {
		agg.Observe(line)
	}
	one := func(metric, reg string) metrics.Series {
		t.Helper()
		s := agg.Find(metric, map[string]string{metrics.DimRegistry: reg})
		if len(s) != 1 || s[0].SampleCount != 2 {
			t.Fatalf("%s of %s: %+v", metric, reg, s)
		}
		return s[0]
	}
	if s := one(metrics.SyncChanges, "alpha"); s.Sum != 1 || s.Last != 0 {
		t.Errorf("alpha's changes: %+v (one new agent, then none)", s)
	}
	if s := one(metrics.SyncRequests, "alpha"); s.Min < 1 {
		t.Errorf("alpha's requests: %+v", s)
	}
	if s := one(metrics.SyncDuration, "alpha"); s.Max <= 0 {
		t.Errorf("alpha's duration: %+v", s)
	}
	if h, d := one(metrics.RegistryHealthy, "alpha"), one(metrics.RegistryUnhealthySeconds, "alpha"); h.Min != 1 || d.Max != 0 {
		t.Errorf("alpha healthy %+v, unhealthy for %+v", h, d)
	}
	if h, d := one(metrics.RegistryHealthy, "down"), one(metrics.RegistryUnhealthySeconds, "down"); h.Max != 0 || d.Last <= 0 || d.Unit != metrics.UnitSeconds {
		t.Errorf("down healthy %+v, unhealthy for %+v", h, d)
	}
	if _, err := store.Agent(context.Background(), "did:agentvault:t/echo"); err != nil {
		t.Errorf("the synced agent: %v", err)
	}

	if _, err := Handler(syncer, nil, m)(context.Background(), []byte(`[1,2]`)); err == nil {
		t.Error("a payload that is not an EventBridge event was accepted")
	}
}
