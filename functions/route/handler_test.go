package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/federation-gateway/gateway/infra/demo"
	"github.com/federation-gateway/gateway/infra/localtest"
	"github.com/federation-gateway/gateway/shared/apigw"
	"github.com/federation-gateway/gateway/shared/apigw/openapitest"
	"github.com/federation-gateway/gateway/shared/delivery"
	"github.com/federation-gateway/gateway/shared/directory"
	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/identity"
	"github.com/federation-gateway/gateway/shared/logs"
	"github.com/federation-gateway/gateway/shared/metrics"
	"github.com/federation-gateway/gateway/shared/outbound"
	"github.com/federation-gateway/gateway/shared/routing"
)

func loadEvent(t testing.TB, name string) events.APIGatewayV2HTTPRequest {
	t.Helper()
	return localtest.HTTPEvent(t, name)
}

// handler wires the route function as main does, over the demo federation synced into a
// table of the local endpoint; every exchange is checked against docs/openapi.json.
func handler(t *testing.T, opts routing.Options) (apigw.LambdaHandler, *demo.Federation) {
	t.Helper()
	h, fed := rawHandler(t, opts)
	return openapitest.New(t).Lambda(t, h), fed
}

// rawHandler is handler without the check, for a fuzz target to check per input.
func rawHandler(t testing.TB, opts routing.Options) (apigw.LambdaHandler, *demo.Federation) {
	t.Helper()
	return wire(t, opts, nil)
}

// wire wires the route function as main does. Its log lines (info and above) and its
// metrics go to out, as main's go to stdout; a nil out keeps only errors, and drops them.
func wire(t testing.TB, opts routing.Options, out io.Writer) (apigw.LambdaHandler, *demo.Federation) {
	t.Helper()
	signer, err := delivery.NewSignerFromSeed(strings.Repeat("s", 64))
	if err != nil {
		t.Fatal(err)
	}
	keys := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(signer.JWKS()) }))
	t.Cleanup(keys.Close)
	fed, store, _ := localtest.Federation(t, keys.URL)
	log := logs.New(&bytes.Buffer{}, "error")
	if out != nil {
		log = logs.New(out, "info")
		opts.Metrics = metrics.New(out, "test", "route")
	}
	verifier, err := identity.NewVerifier(identity.Options{Audience: "federation-gateway", Replay: store.ReplayGuard()})
	if err != nil {
		t.Fatal(err)
	}
	httpClient := outbound.NewClient(outbound.Options{AllowPrivate: true, Timeout: 5 * time.Second})
	opts.Caveat = identity.Caveat
	router, err := routing.New(verifier, store, delivery.ForRouting{D: delivery.New(httpClient, signer, "federation-gateway")}, opts, log)
	if err != nil {
		t.Fatal(err)
	}
	d, err := directory.NewDiscoverer(store, []federation.Registry{{ID: "alpha"}, {ID: "beta"}}, []byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	card := delivery.GatewayCard("https://gateway.example", "federation-gateway")
	cardJSON, _ := json.Marshal(card)
	gw := Gateway{A2A: delivery.NewA2AHandler(A2ARouter{router}, card), Card: cardJSON, JWKS: signer.JWKS()}
	return apigw.Lambda(Handler(router, d, gw, log), log), fed
}

// token signs a fresh credential of a demo agent.
func token(t testing.TB, fed *demo.Federation, hrid string) string {
	t.Helper()
	a := fed.Agent(hrid)
	tok, err := demo.SignToken(a.Key, a.DID, "federation-gateway", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestRoute(t *testing.T) {
	h, fed := handler(t, routing.Options{AgentRate: 3, Clock: localtest.MinuteClock()})
	ctx := context.Background()
	send := func(ev events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
		t.Helper()
		resp, err := h(ctx, ev)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}

	ev := loadEvent(t, "route.json")
	ev.Headers["authorization"] = "Bearer " + token(t, fed, "acme/weather-bot")
	resp := send(ev)
	var res struct {
		Status, MessageID, TargetRegistry, Fee string
		Response                               json.RawMessage
	}
	if resp.StatusCode != 200 || json.Unmarshal([]byte(resp.Body), &res) != nil {
		t.Fatalf("route.json: %d %s", resp.StatusCode, resp.Body)
	}
	if !strings.Contains(resp.Body, `"status":"delivered"`) || !strings.Contains(resp.Body, `"gateway_signature":"valid"`) {
		t.Errorf("route.json: %s", resp.Body)
	}

	// The same message again, with a fresh token: the first result, no second delivery.
	ev.Headers["authorization"] = "Bearer " + token(t, fed, "acme/weather-bot")
	if again := send(ev); again.StatusCode != 200 || !strings.Contains(again.Body, `"duplicate":true`) {
		t.Errorf("a repeat: %d %s", again.StatusCode, again.Body)
	}
	// The token of the repeat, used again for another message, is a replay.
	ev.Body = strings.Replace(ev.Body, "sample-0001", "sample-0002", 1)
	if r := send(ev); r.StatusCode != 401 || !strings.Contains(r.Body, "replayed") {
		t.Errorf("a replayed token: %d %s", r.StatusCode, r.Body)
	}

	tests := []struct {
		name   string
		event  func() events.APIGatewayV2HTTPRequest
		status int
		header string
	}{
		{"no credential", func() events.APIGatewayV2HTTPRequest { return loadEvent(t, "route-unauthorized.json") }, 401, "Www-Authenticate"},
		{"not JSON", func() events.APIGatewayV2HTTPRequest {
			e := loadEvent(t, "route.json")
			e.Headers["authorization"], e.Body = "Bearer "+token(t, fed, "acme/weather-bot"), "{"
			return e
		}, 400, ""},
		{"too large", func() events.APIGatewayV2HTTPRequest {
			e := loadEvent(t, "route.json")
			e.Headers["authorization"] = "Bearer " + token(t, fed, "acme/weather-bot")
			e.Body = `{"from":"x","to":"y","payload":"` + strings.Repeat("x", maxBody) + `"}`
			return e
		}, 413, ""},
		{"unknown target", func() events.APIGatewayV2HTTPRequest {
			e := loadEvent(t, "route.json")
			e.Headers["authorization"] = "Bearer " + token(t, fed, "acme/weather-bot")
			e.Body = strings.Replace(strings.Replace(e.Body, "textkit/mirror", "nobody/here", 1), "sample-0001", "nf-1", 1)
			return e
		}, 404, ""},
		{"rate limited", func() events.APIGatewayV2HTTPRequest {
			e := loadEvent(t, "route.json")
			e.Headers["authorization"] = "Bearer " + token(t, fed, "acme/weather-bot")
			e.Body = strings.Replace(e.Body, "sample-0001", "rl-3", 1)
			return e
		}, 429, "Retry-After"},
	}
	// Two more messages fill this minute's limit of three for the sender.
	for _, id := range []string{"rl-1", "rl-2"} {
		e := loadEvent(t, "route.json")
		e.Headers["authorization"] = "Bearer " + token(t, fed, "acme/weather-bot")
		e.Body = strings.Replace(e.Body, "sample-0001", id, 1)
		if r := send(e); r.StatusCode != 200 {
			t.Fatalf("%s: %d %s", id, r.StatusCode, r.Body)
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := send(tt.event())
			if r.StatusCode != tt.status || r.Headers["Content-Type"] != apigw.ProblemContentType {
				t.Errorf("%d %v %s", r.StatusCode, r.Headers, r.Body)
			}
			if tt.header != "" && r.Headers[tt.header] == "" {
				t.Errorf("no %s header: %v", tt.header, r.Headers)
			}
		})
	}
}

func TestBroadcastAndCard(t *testing.T) {
	h, fed := handler(t, routing.Options{})
	ev := loadEvent(t, "broadcast.json")
	ev.Headers["authorization"] = "Bearer " + token(t, fed, "acme/weather-bot")
	resp, err := h(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	var res routing.BroadcastResult
	if resp.StatusCode != 200 || json.Unmarshal([]byte(resp.Body), &res) != nil {
		t.Fatalf("broadcast.json: %d %s", resp.StatusCode, resp.Body)
	}
	if res.Recipients < 2 || res.Delivered != res.Recipients || len(res.Failed) != 0 || res.BroadcastID == "" {
		t.Errorf("broadcast: %+v", res)
	}

	card, err := h(context.Background(), loadEvent(t, "agent-card.json"))
	if err != nil || card.StatusCode != 200 || !strings.Contains(card.Body, `"protocolBinding":"JSONRPC"`) || !strings.Contains(card.Body, "https://gateway.example/a2a") {
		t.Errorf("agent card: %d %s %v", card.StatusCode, card.Body, err)
	}
	at := func(method, path string) events.APIGatewayV2HTTPRequest {
		ev := loadEvent(t, "agent-card.json")
		ev.RawPath, ev.RequestContext.HTTP.Path, ev.RequestContext.HTTP.Method = path, path, method
		ev.RouteKey = method + " " + path
		return ev
	}
	keys, err := h(context.Background(), at("GET", "/.well-known/jwks.json"))
	if err != nil || keys.StatusCode != 200 || !strings.Contains(keys.Body, `"crv":"Ed25519"`) {
		t.Errorf("jwks: %d %s %v", keys.StatusCode, keys.Body, err)
	}
	if wrong, _ := h(context.Background(), at("GET", "/api/v1/route")); wrong.StatusCode != 405 || wrong.Headers["Allow"] == "" {
		t.Errorf("GET /api/v1/route: %d %v", wrong.StatusCode, wrong.Headers)
	}
}

// FuzzRouteBody: no body, whatever it holds, crashes the route or broadcast handler or
// gets a 5xx other than a failed delivery (502).
func FuzzRouteBody(f *testing.F) {
	for _, seed := range []string{
		`{"from":"did:key:z6MkhYc9Ubv6m5Cc2nmuX2Ahk1HEuGNJmpwRmc6JKPjvwgDd","to":"did:agentvault:textkit/mirror","payload":{"a":1}}`,
		`{"to":"did:agentvault:textkit/mirror","payload":"x","message_id":"a#b"}`,
		`{"from":1}`, `[]`, `null`, `{"payload":{"deep":[[[[[]]]]]}}`, `{"criteria":{"capability":["echo"]},"payload":{}}`,
		`{"criteria":{"capability":"echo","q":"x","tag":1},"payload":{}}`, `{"all":true,"payload":{"n":1e400}}`,
		`{"query":{"service_type":"weather"},"payload":{}}`, `{"FROM":"x"}`, `{"from":"x",}`, `{"criteria":{"capability":[1]}}`,
	} {
		f.Add(seed)
	}
	raw, fed := rawHandler(f, routing.Options{AgentRate: 1 << 20, GlobalRate: 1 << 20})
	f.Fuzz(func(t *testing.T, body string) {
		h := openapitest.New(t).Lambda(t, raw)
		for _, name := range []string{"route.json", "broadcast.json"} {
			ev := loadEvent(t, name)
			ev.Headers["authorization"], ev.Body = "Bearer "+token(t, fed, "acme/weather-bot"), body
			resp, err := h(context.Background(), ev)
			if err != nil || (resp.StatusCode >= 500 && resp.StatusCode != 502) {
				t.Fatalf("%s with %q: %d %s %v", name, body, resp.StatusCode, resp.Body, err)
			}
			if w := hasGoInternals(resp.Body); w != "" && resp.StatusCode >= 400 {
				t.Fatalf("%s with %q: the answer speaks Go (%q): %s", name, body, w, resp.Body)
			}
		}
	})
}

// a2aEvent is a JSON-RPC SendMessage to POST /a2a with the parts and metadata given.
func a2aEvent(t *testing.T, auth string, parts, meta string) events.APIGatewayV2HTTPRequest {
	t.Helper()
	ev := loadEvent(t, "route.json")
	ev.RouteKey, ev.RawPath = "POST /a2a", "/a2a"
	ev.RequestContext.RouteKey, ev.RequestContext.HTTP.Path = "POST /a2a", "/a2a"
	ev.Headers["authorization"] = auth
	ev.Body = `{"jsonrpc":"2.0","id":"1","method":"SendMessage","params":{"message":{"messageId":"` + uuidish(t) +
		`","role":"ROLE_USER","parts":` + parts + `,"metadata":` + meta + `}}}`
	return ev
}

func uuidish(t *testing.T) string { return fmt.Sprintf("%s-%d", t.Name(), time.Now().UnixNano()) }

// A text part sent to the gateway's A2A endpoint reaches the real target agent as text:
// the mirror agent answers it reversed, and checks the gateway's signature over it.
func TestA2ATextReachesTheTarget(t *testing.T) {
	h, fed := handler(t, routing.Options{})
	ev := a2aEvent(t, "Bearer "+token(t, fed, "acme/weather-bot"), `[{"text":"hello gateway"}]`,
		`{"federation.to":"did:agentvault:textkit/mirror"}`)
	resp, err := h(context.Background(), ev)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %s %v", resp.StatusCode, resp.Body, err)
	}
	if !strings.Contains(resp.Body, "yawetag olleh") {
		t.Errorf("the target did not receive the text: %s", resp.Body)
	}
	if !strings.Contains(resp.Body, `"gateway_signature":"valid"`) {
		t.Errorf("the target did not verify the gateway's signature over the parts: %s", resp.Body)
	}
}

// A source registry asserted in /a2a metadata is checked against the directory like the
// HTTP API's: a self-made key claiming alpha is unauthorized (-31403), never forwarded.
func TestA2AFalseSourceRegistry(t *testing.T) {
	h, _ := handler(t, routing.Options{Allow: []string{"alpha->beta"}})
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	did := "did:key:z" + directory.Base58Encode(append([]byte{0xed, 0x01}, key.Public().(ed25519.PublicKey)...))
	tok, err := demo.SignToken(key, did, "federation-gateway", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	ev := a2aEvent(t, "Bearer "+tok, `[{"text":"I am alpha"}]`,
		`{"federation.to":"did:agentvault:textkit/mirror","federation.from":"`+did+`","federation.source_registry":"alpha"}`)
	resp, err := h(context.Background(), ev)
	if err != nil || !strings.Contains(resp.Body, `"code":-31403`) || !strings.Contains(resp.Body, "not an agent of any registry") {
		t.Fatalf("%d %s %v; want a -31403 error", resp.StatusCode, resp.Body, err)
	}
}

// goInternals are words of Go and its JSON parser that must never reach a caller.
var goInternals = []string{"Go struct field", "Go value", "strconv.", "json:", "cannot unmarshal", "json.RawMessage",
	"routing.", "federation.RouteRequest", "[]string", "reflect", "unexpected end of JSON input"}

func hasGoInternals(s string) string {
	for _, w := range goInternals {
		if strings.Contains(s, w) {
			return w
		}
	}
	return ""
}

// The bodies of route and broadcast are decoded strictly: a field the API does not have
// is a 400 that names it (a broadcast's "query" is not a filter that matches everyone),
// the body must say it is JSON, and every detail is in the API's words.
func TestStrictBodies(t *testing.T) {
	h, fed := handler(t, routing.Options{})
	from := fed.Agent("acme/weather-bot").DID
	tests := []struct {
		name, event, contentType, body string
		status                         int
		says                           string
	}{
		// The gateway's card used to show this body, which broadcast to every agent.
		{"broadcast with query", "broadcast.json", "", `{"from":"` + from + `","query":{"service_type":"weather"},"payload":{"alert":"storm"}}`, 400, `unknown field "query"`},
		{"broadcast with a misspelt criterion", "broadcast.json", "", `{"criteria":{"service":"weather"},"payload":{}}`, 400, `unknown field "criteria.service"`},
		{"broadcast without criteria", "broadcast.json", "", `{"payload":{"alert":"storm"}}`, 400, `"all": true`},
		{"broadcast capability of a number", "broadcast.json", "", `{"criteria":{"capability":7},"payload":{}}`, 400, "criteria.capability: want a string or a list of strings"},
		{"broadcast all of a string", "broadcast.json", "", `{"all":"yes","payload":{}}`, 400, "all: want true or false, not a string"},
		{"route with an unknown field", "route.json", "", `{"from":"` + from + `","to":"did:agentvault:textkit/mirror","payload":{},"priority":1}`, 400, `unknown field "priority"`},
		{"route from of a number", "route.json", "", `{"from":7,"to":"x","payload":{}}`, 400, "from: want a string, not a number"},
		{"route as a list", "route.json", "", `[{"from":"x"}]`, 400, "must be a JSON object, not a list"},
		{"route cut short", "route.json", "", `{"from":"x",`, 400, "not valid JSON"},
		{"route with two objects", "route.json", "", `{"from":"x"}{"to":"y"}`, 400, "more after its JSON object"},
		{"route as a form", "route.json", "application/x-www-form-urlencoded", `{"from":"x","to":"y","payload":{}}`, 415, "Content-Type: application/json"},
		{"route without a content type", "route.json", "-", `{"from":"x","to":"y","payload":{}}`, 415, "Content-Type: application/json"},
		{"broadcast capability as a string", "broadcast.json", "", `{"criteria":{"capability":"reverse"},"payload":{"text":"hi"}}`, 200, `"delivered":`},
		{"route with a +json type", "route.json", "application/vnd.federation+json; charset=utf-8",
			`{"from":"` + from + `","to":"did:agentvault:textkit/mirror","payload":{"text":"hi"}}`, 200, `"status":"delivered"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := loadEvent(t, tt.event)
			ev.Headers["authorization"] = "Bearer " + token(t, fed, "acme/weather-bot")
			ev.Body = tt.body
			switch tt.contentType {
			case "":
			case "-":
				delete(ev.Headers, "content-type")
			default:
				ev.Headers["content-type"] = tt.contentType
			}
			resp, err := h(context.Background(), ev)
			said := resp.Body
			var problem apigw.Problem
			if resp.StatusCode >= 400 && json.Unmarshal([]byte(resp.Body), &problem) == nil {
				said = problem.Detail
			}
			if err != nil || resp.StatusCode != tt.status || !strings.Contains(said, tt.says) {
				t.Fatalf("%d %s %v; want %d saying %q", resp.StatusCode, resp.Body, err, tt.status, tt.says)
			}
			if w := hasGoInternals(resp.Body); w != "" && resp.StatusCode >= 400 {
				t.Errorf("the answer speaks Go (%q): %s", w, resp.Body)
			}
		})
	}
}

// The examples of the gateway's agent card work: each broadcast example is a body the
// broadcast endpoint takes, and the route example is a SendMessage /a2a routes.
func TestCardExamplesAreTakenAsTheyAre(t *testing.T) {
	h, fed := handler(t, routing.Options{})
	card := delivery.GatewayCard("https://gateway.example", "federation-gateway")
	for _, s := range card.Skills {
		for _, example := range s.Examples {
			var ev events.APIGatewayV2HTTPRequest
			switch s.ID {
			case delivery.SkillBroadcast:
				ev = loadEvent(t, "broadcast.json")
				ev.Body = example
			case delivery.SkillRoute:
				ev = a2aEvent(t, "", "[]", "{}")
				ev.Body = `{"jsonrpc":"2.0","id":"1","method":"SendMessage","params":` + example + `}`
			default:
				continue // discovery's examples are query strings: the discover function tests them
			}
			ev.Headers["authorization"] = "Bearer " + token(t, fed, "acme/weather-bot")
			resp, err := h(context.Background(), ev)
			if err != nil || resp.StatusCode != 200 || strings.Contains(resp.Body, `"error"`) {
				t.Errorf("%s example %s: %d %s %v", s.ID, example, resp.StatusCode, resp.Body, err)
			}
		}
	}
}
