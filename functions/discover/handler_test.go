package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/federation-gateway/gateway/infra/localtest"
	"github.com/federation-gateway/gateway/shared/apigw"
	"github.com/federation-gateway/gateway/shared/apigw/openapitest"
	"github.com/federation-gateway/gateway/shared/delivery"
	"github.com/federation-gateway/gateway/shared/directory"
	"github.com/federation-gateway/gateway/shared/dynamo"
	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/logs"
	"github.com/federation-gateway/gateway/shared/metrics"
)

func loadEvent(t testing.TB, name string) events.APIGatewayV2HTTPRequest {
	t.Helper()
	return localtest.HTTPEvent(t, name)
}

func TestHandler(t *testing.T) {
	ctx := context.Background()
	store := dynamo.NewStore(localtest.DynamoDB(t), localtest.Table(t))
	regs := []federation.Registry{{ID: "alpha"}, {ID: "beta"}}
	counts := map[string]map[string]int{"alpha": {}, "beta": {}}
	for i, caps := range [][]string{{"echo"}, {"echo", "sum"}, {"sum"}} {
		a := federation.Agent{DID: "did:agentvault:t/" + string(rune('a'+i)), Name: "A", Registry: regs[i%2].ID, Endpoint: "https://a.example",
			ServiceType: "text", Capabilities: caps, Status: federation.StatusActive, Skills: []federation.Skill{{ID: caps[0]}}}
		if _, err := store.PutAgent(ctx, a, "", nil); err != nil {
			t.Fatal(err)
		}
		for _, f := range directory.Facets(a) {
			counts[a.Registry][f]++
		}
	}
	for reg, c := range counts {
		if err := store.SaveFacetCounts(ctx, reg, c); err != nil {
			t.Fatal(err)
		}
	}
	d, err := directory.NewDiscoverer(store, regs, []byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	log := logs.New(&bytes.Buffer{}, "debug")
	var emitted bytes.Buffer
	h := openapitest.New(t).Lambda(t, apigw.Lambda(Handler(d, log, metrics.New(&emitted, "test", "discover")), log))

	resp, err := h(ctx, loadEvent(t, "discover.json"))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("discover.json: %d %s %v", resp.StatusCode, resp.Body, err)
	}
	var a struct {
		Results []struct {
			DID          string   `json:"did"`
			Capabilities []string `json:"capabilities"`
			Skills       []any    `json:"skills"`
			LastSeen     string   `json:"last_seen"`
		} `json:"results"`
		Count              int      `json:"count"`
		NextCursor         *string  `json:"next_cursor"`
		RegistriesSearched int      `json:"registries_searched"`
		Registries         []string `json:"registries"`
	}
	if err := json.Unmarshal([]byte(resp.Body), &a); err != nil {
		t.Fatal(err)
	}
	if a.Count != 2 || len(a.Results) != 2 || a.NextCursor != nil || a.RegistriesSearched != 2 || len(a.Registries) != 2 {
		t.Errorf("answer = %s", resp.Body)
	}
	if !strings.Contains(resp.Body, `"next_cursor":null`) {
		t.Errorf("the last page must say next_cursor null: %s", resp.Body)
	}
	// The page is counted: its results, the items read for them, and the ratio.
	m, ok := metrics.Parse(bytes.TrimSpace(emitted.Bytes()))
	if v := m.Values; !ok || v[metrics.DiscoveryResults] != 2 || v[metrics.DiscoveryItemsRead] < 2 ||
		v[metrics.DiscoveryItemsReadPerResult] != v[metrics.DiscoveryItemsRead]/2 {
		t.Errorf("discovery metrics: %s", emitted.String())
	}

	resp, _ = h(ctx, loadEvent(t, "discover-invalid.json"))
	if resp.StatusCode != 400 || resp.Headers["Content-Type"] != apigw.ProblemContentType || !strings.Contains(resp.Body, `colour`) {
		t.Errorf("discover-invalid.json: %d %s", resp.StatusCode, resp.Body)
	}
}

func TestParseQuery(t *testing.T) {
	store := dynamo.NewStore(localtest.DynamoDB(t), localtest.Table(t))
	d, err := directory.NewDiscoverer(store, nil, []byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		query   string
		mention string // "" for valid
	}{
		{"capability=a&capability=b&limit=5&status=stale", ""},
		{"limit=abc", "not a whole number"},
		{"limit=0", "limit 0"},
		{"limit=1&limit=2", "given 2 times"},
		{"size=3", `unknown query parameter`},
	}
	for _, tt := range tests {
		ev := loadEvent(t, "discover.json")
		ev.RawQueryString, ev.QueryStringParameters = tt.query, nil
		log := logs.New(&bytes.Buffer{}, "error")
		resp, _ := openapitest.New(t).Lambda(t, apigw.Lambda(Handler(d, log, nil), log))(context.Background(), ev)
		if tt.mention == "" {
			if resp.StatusCode != 200 {
				t.Errorf("%s: %d %s", tt.query, resp.StatusCode, resp.Body)
			}
			continue
		}
		if resp.StatusCode != 400 || !strings.Contains(resp.Body, tt.mention) {
			t.Errorf("%s: %d %s", tt.query, resp.StatusCode, resp.Body)
		}
	}
}

// FuzzParseQuery: no query string crashes the handler or gets a 5xx; every answer is a
// page or a 400 problem. It runs against the real store of the local endpoint.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{"capability=echo&limit=10", "limit=-1", "cursor=%ZZ", "q=" + strings.Repeat("a", 300), "status=gone&tag=x#y", "registry=alpha&service_type=text"} {
		f.Add(s)
	}
	store := dynamo.NewStore(localtest.DynamoDB(f), localtest.Table(f))
	d, err := directory.NewDiscoverer(store, []federation.Registry{{ID: "alpha"}}, []byte(strings.Repeat("k", 32)))
	if err != nil {
		f.Fatal(err)
	}
	log := logs.New(&bytes.Buffer{}, "error")
	checked := apigw.Lambda(Handler(d, log, nil), log)
	f.Fuzz(func(t *testing.T, raw string) {
		h := openapitest.New(t).Lambda(t, checked)
		ev := events.APIGatewayV2HTTPRequest{Version: "2.0", RawPath: "/api/v1/discover", RawQueryString: raw,
			RequestContext: events.APIGatewayV2HTTPRequestContext{HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "GET", Path: "/api/v1/discover"}}}
		resp, err := h(context.Background(), ev)
		if err != nil || (resp.StatusCode != 400 && resp.StatusCode != 200) {
			t.Fatalf("%q: %d %s %v", raw, resp.StatusCode, resp.Body, err)
		}
	})
}

// The discovery examples of the gateway's agent card are queries this endpoint takes.
func TestCardExamplesParse(t *testing.T) {
	for _, s := range delivery.GatewayCard("https://gateway.example", "federation-gateway").Skills {
		if s.ID != delivery.SkillDiscover {
			continue
		}
		if len(s.Examples) == 0 {
			t.Fatal("the discover skill has no examples")
		}
		for _, example := range s.Examples {
			v, err := url.ParseQuery(example)
			if err != nil {
				t.Fatalf("%q: %v", example, err)
			}
			if _, err := parseQuery(v); err != nil {
				t.Errorf("%q: %v", example, err)
			}
		}
	}
}
