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
	"github.com/federation-gateway/gateway/shared/outbound"
	"github.com/federation-gateway/gateway/shared/registry"
)

func TestHandler(t *testing.T) {
	reg := demo.NewRegistry("alpha", false)
	reg.Put(demo.Card{HumanReadableID: "t/echo", Name: "Echo", URL: "https://agents.example/echo",
		Capabilities: demo.Capabilities{A2AVersion: "1.0"}, Skills: []demo.CardSkill{{ID: "echo", Name: "Echo"}}})
	srv := httptest.NewServer(reg.Handler())
	defer srv.Close()

	cfg := federation.Registry{ID: "alpha", URL: srv.URL, Kind: federation.KindAgentVault}
	client, err := registry.New(cfg, outbound.NewClient(outbound.Options{AllowPrivate: true}), registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	store := dynamo.NewStore(localtest.DynamoDB(t), localtest.Table(t))
	syncer := directory.NewSyncer(store, []federation.Registry{cfg}, map[string]directory.Source{"alpha": client},
		directory.SyncOptions{}, logs.New(&bytes.Buffer{}, "error"))

	event, err := os.ReadFile(filepath.Join(localtest.RepoRoot(t), "events", "sync.json"))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Handler(syncer, nil)(context.Background(), event)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Registries) != 1 || !rep.Registries[0].OK || rep.Registries[0].New != 1 {
		t.Errorf("report = %+v", rep)
	}
	if _, err := store.Agent(context.Background(), "did:agentvault:t/echo"); err != nil {
		t.Errorf("the synced agent: %v", err)
	}

	if _, err := Handler(syncer, nil)(context.Background(), []byte(`[1,2]`)); err == nil {
		t.Error("a payload that is not an EventBridge event was accepted")
	}
}
