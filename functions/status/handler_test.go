package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/federation-gateway/gateway/docs"
	"github.com/federation-gateway/gateway/infra/localtest"
	"github.com/federation-gateway/gateway/shared/apigw"
	"github.com/federation-gateway/gateway/shared/apigw/openapitest"
	"github.com/federation-gateway/gateway/shared/directory"
	"github.com/federation-gateway/gateway/shared/dynamo"
	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/logs"
)

func loadEvent(t testing.TB, name string) events.APIGatewayV2HTTPRequest {
	t.Helper()
	return localtest.HTTPEvent(t, name)
}

func TestHandler(t *testing.T) {
	registries := []federation.Registry{{ID: "alpha", URL: "https://a.example", Kind: federation.KindAgentVault}}
	goodStore := dynamo.NewStore(localtest.DynamoDB(t), localtest.Table(t))
	if err := goodStore.SaveSyncState(context.Background(), directory.SyncState{RegistryState: federation.RegistryState{ID: "alpha", Healthy: true, Agents: federation.AgentCounts{Active: 3, Stale: 1}}}); err != nil {
		t.Fatal(err)
	}
	brokenStore := dynamo.NewStore(localtest.DynamoDB(t), "status-test-no-such-table")

	tests := []struct {
		name   string
		store  *dynamo.Store
		event  string
		status int
		check  func(t *testing.T, body []byte)
	}{
		{"status", goodStore, "status.json", 200, func(t *testing.T, body []byte) {
			var s federation.Status
			if err := json.Unmarshal(body, &s); err != nil {
				t.Fatal(err)
			}
			if s.TotalAgents != 3 || len(s.Registries) != 1 || s.Registries[0].ID != "alpha" || s.Stage != "test" {
				t.Errorf("status = %+v", s)
			}
		}},
		{"wrong method", goodStore, "status-wrong-method.json", 405, nil},
		{"openapi", goodStore, "openapi.json", 200, func(t *testing.T, body []byte) {
			if !bytes.Equal(body, docs.OpenAPI()) {
				t.Error("GET /api/v1/openapi.json does not serve docs/openapi.json")
			}
		}},
		{"table unavailable", brokenStore, "status.json", 500, func(t *testing.T, body []byte) {
			if bytes.Contains(body, []byte("no-such-table")) {
				t.Errorf("the problem shows internal detail: %s", body)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := logs.New(&bytes.Buffer{}, "debug")
			reporter := directory.NewReporter(tt.store, registries, "1.0.0", "test")
			resp, err := openapitest.New(t).Lambda(t, apigw.Lambda(Handler(reporter, docs.OpenAPI(), log), log))(context.Background(), loadEvent(t, tt.event))
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, resp.Body)
			}
			wantType := "application/json"
			if tt.status >= 400 {
				wantType = apigw.ProblemContentType
			}
			if ct := resp.Headers["Content-Type"]; ct != wantType {
				t.Errorf("Content-Type = %q, want %q", ct, wantType)
			}
			if tt.check != nil {
				tt.check(t, []byte(resp.Body))
			}
		})
	}
}

// With the bridge, status shows each lane (liquidity on both sides, paused, bucket,
// transfers in flight) and each registry's books.
func TestHandlerWithBridge(t *testing.T) {
	fx := localtest.Bridge(t, nil)
	log := logs.New(&bytes.Buffer{}, "debug")
	reporter := WithBridge{Reporter: directory.NewReporter(fx.Store, []federation.Registry{{ID: "alpha", Kind: federation.KindAgentVault, URL: "https://a.example"}, {ID: "beta", Kind: federation.KindAgentVault, URL: "https://b.example"}}, "1.0.0", "test"), Bridge: fx.Bridge}
	resp, err := openapitest.New(t).Lambda(t, apigw.Lambda(Handler(reporter, docs.OpenAPI(), log), log))(context.Background(), loadEvent(t, "status.json"))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %s %v", resp.StatusCode, resp.Body, err)
	}
	var s federation.Status
	if err := json.Unmarshal([]byte(resp.Body), &s); err != nil {
		t.Fatal(err)
	}
	if s.Bridge == nil || len(s.Bridge.Lanes) != 2 || len(s.Bridge.Books) != 2 || len(s.Pools) != 2 ||
		s.Bridge.Lanes[0].Lane != "alpha->beta" || s.Bridge.Lanes[0].SourceLiquidity != "10000" || s.Bridge.Lanes[0].Bucket == "" ||
		s.Bridge.Books[1].Available != "10000" || s.Pools[0].Liquidity != "10000" {
		t.Errorf("status: %s", resp.Body)
	}
}
