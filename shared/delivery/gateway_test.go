package delivery_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/a2aproject/a2a-go/v2/a2a"
	"github.com/a2aproject/a2a-go/v2/a2aclient"
	"github.com/a2aproject/a2a-go/v2/a2aclient/agentcard"
	"github.com/a2aproject/a2a-go/v2/a2asrv"

	"github.com/federation-gateway/gateway/shared/delivery"
	"github.com/federation-gateway/gateway/shared/federation"
)

// fakeRouter stands in for the routing: this tests the A2A adapter, not the routing.
type fakeRouter struct {
	mu   sync.Mutex
	reqs []federation.RouteRequest
	auth []string
	err  error
}

func (f *fakeRouter) Route(_ context.Context, req federation.RouteRequest, authorization string) (federation.RouteResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, req)
	f.auth = append(f.auth, authorization)
	if f.err != nil {
		return federation.RouteResult{}, f.err
	}
	return federation.RouteResult{
		Status: "delivered", MessageID: req.MessageID, TargetRegistry: "beta",
		Response: json.RawMessage(`{"kind":"message","message_id":"r1","parts":[{"text":"hi"}]}`), Fee: "0.01",
	}, nil
}

func (f *fakeRouter) last(t *testing.T) (federation.RouteRequest, string) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) == 0 {
		t.Fatal("the router was not called")
	}
	return f.reqs[len(f.reqs)-1], f.auth[len(f.auth)-1]
}

// startGateway serves the gateway's card and JSON-RPC endpoint as the route function does.
func startGateway(t *testing.T, r delivery.Router) (*httptest.Server, *bytes.Buffer) {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	var logged bytes.Buffer
	card := delivery.GatewayCard(srv.URL, "gw-test")
	mux.Handle("GET "+a2asrv.WellKnownAgentCardPath, a2asrv.NewStaticAgentCardHandler(card))
	mux.Handle("POST /a2a", delivery.NewA2AHandler(r, card, delivery.WithLogger(slog.New(slog.NewJSONHandler(&logged, nil)))))
	return srv, &logged
}

func TestGatewayCard(t *testing.T) {
	card := delivery.GatewayCard("https://gw.example/", "gw-1")
	raw, err := json.Marshal(card)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Name                string `json:"name"`
		Description         string `json:"description"`
		SupportedInterfaces []struct {
			URL, ProtocolBinding, ProtocolVersion string
		} `json:"supportedInterfaces"`
		Capabilities map[string]any `json:"capabilities"`
		Skills       []struct {
			ID, Name, Description string
			Tags                  []string
		} `json:"skills"`
		DefaultInputModes  []string       `json:"defaultInputModes"`
		DefaultOutputModes []string       `json:"defaultOutputModes"`
		SecuritySchemes    map[string]any `json:"securitySchemes"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Name != "Federation Gateway" || !strings.Contains(doc.Description, "https://gw.example/.well-known/jwks.json") {
		t.Errorf("card = %s", raw)
	}
	if len(doc.SupportedInterfaces) != 1 || doc.SupportedInterfaces[0].URL != "https://gw.example/a2a" ||
		doc.SupportedInterfaces[0].ProtocolBinding != "JSONRPC" || doc.SupportedInterfaces[0].ProtocolVersion != "1.0" {
		t.Errorf("supportedInterfaces = %+v", doc.SupportedInterfaces)
	}
	if doc.Capabilities["streaming"] == true || len(doc.DefaultInputModes) == 0 || len(doc.DefaultOutputModes) == 0 || doc.SecuritySchemes["bearer"] == nil {
		t.Errorf("card = %s", raw)
	}
	var ids []string
	for _, s := range doc.Skills {
		ids = append(ids, s.ID)
		if s.Name == "" || s.Description == "" || len(s.Tags) == 0 {
			t.Errorf("skill %+v lacks a name, description or tags", s)
		}
	}
	if strings.Join(ids, ",") != "route,discover,broadcast" {
		t.Errorf("skills %v", ids)
	}
}

// An a2a-go client finds the gateway by its card and routes a message through it.
func TestGatewayA2ARoundTrip(t *testing.T) {
	router := &fakeRouter{}
	srv, _ := startGateway(t, router)
	ctx := context.Background()
	card, err := agentcard.NewResolver(srv.Client()).Resolve(ctx, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	client, err := a2aclient.NewFromCard(ctx, card, a2aclient.WithJSONRPCTransport(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Destroy()
	ctx = a2aclient.AttachServiceParams(ctx, a2aclient.ServiceParams{"Authorization": {"Bearer caller-jwt"}})

	tests := []struct {
		name        string
		parts       []*a2a.Part
		meta        map[string]any
		wantPayload string
		wantID      string // "" means the A2A messageId
	}{
		{"data part", []*a2a.Part{a2a.NewDataPart(map[string]any{"city": "Paris", "days": 3})},
			map[string]any{delivery.MetaTo: "did:key:z6MkTarget", delivery.MetaFrom: "did:key:z6MkSender"}, `[{"data":{"city":"Paris","days":3}}]`, ""},
		{"text parts", []*a2a.Part{a2a.NewTextPart("hello"), a2a.NewTextPart("world")},
			map[string]any{delivery.MetaTo: "did:key:z6MkTarget", delivery.MetaMessageID: "fed-42", delivery.MetaSkill: "route"}, `[{"text":"hello"},{"text":"world"}]`, "fed-42"},
		{"every kind of part", []*a2a.Part{a2a.NewTextPart("see attached"), a2a.NewDataPart(map[string]any{"n": 1}),
			{Content: a2a.URL("https://files.example/f.pdf"), MediaType: "application/pdf", Filename: "f.pdf"},
			{Content: a2a.Raw("raw bytes"), MediaType: "application/octet-stream"}},
			map[string]any{delivery.MetaTo: "did:key:z6MkTarget"},
			`[{"text":"see attached"},{"data":{"n":1}},{"url":"https://files.example/f.pdf","filename":"f.pdf","mediaType":"application/pdf"},{"raw":"cmF3IGJ5dGVz","mediaType":"application/octet-stream"}]`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := a2a.NewMessage(a2a.MessageRoleUser, tt.parts...)
			msg.Metadata = tt.meta
			res, err := client.SendMessage(ctx, &a2a.SendMessageRequest{Message: msg})
			if err != nil {
				t.Fatal(err)
			}
			reply, ok := res.(*a2a.Message)
			if !ok || reply.Role != a2a.MessageRoleAgent || len(reply.Parts) != 2 {
				t.Fatalf("answer %T %+v", res, res)
			}
			var result federation.RouteResult
			if err := json.Unmarshal([]byte(must(json.Marshal(reply.Parts[0].Data()))), &result); err != nil {
				t.Fatal(err)
			}
			wantID := tt.wantID
			if wantID == "" {
				wantID = msg.ID
			}
			if result.Status != "delivered" || result.MessageID != wantID || result.TargetRegistry != "beta" || result.Fee != "0.01" ||
				!strings.Contains(string(result.Response), `"text":"hi"`) {
				t.Errorf("result %+v", result)
			}
			if !strings.Contains(reply.Parts[1].Text(), "delivered message "+wantID) {
				t.Errorf("text %q", reply.Parts[1].Text())
			}

			req, auth := router.last(t)
			if auth != "Bearer caller-jwt" {
				t.Errorf("authorization %q", auth)
			}
			if req.To != "did:key:z6MkTarget" || req.MessageID != wantID || string(req.Payload) != tt.wantPayload || !req.Parts {
				t.Errorf("route request %+v payload %s", req, req.Payload)
			}
			if req.From != "" && req.From != "did:key:z6MkSender" {
				t.Errorf("from %q", req.From)
			}
		})
	}
}

// A domain error reaches an a2a-go client as the A2A error it maps to.
func TestGatewayErrorsReachA2AClients(t *testing.T) {
	router := &fakeRouter{err: federation.Errorf(federation.EUNAUTHORIZED, "no credential: send Authorization: Bearer <JWT>")}
	srv, _ := startGateway(t, router)
	ctx := context.Background()
	client, err := a2aclient.NewFromEndpoints(ctx, []*a2a.AgentInterface{a2a.NewAgentInterface(srv.URL+"/a2a", a2a.TransportProtocolJSONRPC)},
		a2aclient.WithJSONRPCTransport(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Destroy()
	msg := a2a.NewMessage(a2a.MessageRoleUser, a2a.NewDataPart(map[string]any{"a": 1}))
	msg.Metadata = map[string]any{delivery.MetaTo: "did:key:z6MkTarget"}
	_, err = client.SendMessage(ctx, &a2a.SendMessageRequest{Message: msg})
	if !errors.Is(err, a2a.ErrUnauthenticated) || !strings.Contains(err.Error(), "no credential") {
		t.Fatalf("err = %v, want unauthenticated", err)
	}
	if _, auth := router.last(t); auth != "" {
		t.Errorf("authorization %q, want none", auth)
	}
}

type rpcResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      any             `json:"id"`
	Result  json.RawMessage `json:"result"`
	Error   *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Data    []map[string]any
	} `json:"error"`
}

func post(t *testing.T, url string, header http.Header, body string) rpcResponse {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out rpcResponse
	if err := json.Unmarshal(raw, &out); err != nil || out.JSONRPC != "2.0" {
		t.Fatalf("answer %d %q is not JSON-RPC: %v", resp.StatusCode, raw, err)
	}
	return out
}

func sendMessage(meta string, parts string) string {
	return `{"jsonrpc":"2.0","id":"7","method":"SendMessage","params":{"message":{"messageId":"m-1","role":"ROLE_USER",` +
		`"parts":` + parts + `,"metadata":` + meta + `}}}`
}

// The JSON-RPC errors of the gateway's endpoint, code by code.
func TestGatewayJSONRPCErrors(t *testing.T) {
	const to = `{"federation.to":"did:key:z6MkTarget"}`
	const data = `[{"data":{"a":1}}]`
	tests := []struct {
		name      string
		routerErr error
		header    http.Header
		body      string
		code      int
		message   string // in the error message
		fedCode   string // the federation code in the error data, if any
	}{
		{"unknown method", nil, nil, `{"jsonrpc":"2.0","id":"1","method":"NoSuchMethod","params":{}}`, -32601, "", ""},
		{"bad JSON", nil, nil, `{"jsonrpc":"2.0","id":"1","method":`, -32700, "", ""},
		{"no target", nil, nil, sendMessage(`{}`, data), -32602, "federation.to", "invalid"},
		{"target not a string", nil, nil, sendMessage(`{"federation.to":7}`, data), -32602, "must be a string", "invalid"},
		{"no messageId", nil, nil, strings.Replace(sendMessage(to, data), `"m-1"`, `""`, 1), -32602, "messageId", "invalid"},
		{"no parts", nil, nil, sendMessage(to, `[]`), -32602, "no payload", "invalid"},
		{"unknown federation metadata", nil, nil, sendMessage(`{"federation.to":"did:x","federation.too":"did:y"}`, data), -32602, `"federation.too" is not one the gateway reads`, "invalid"},
		{"federation metadata of the gateway's own", nil, nil, sendMessage(`{"federation.to":"did:x","federation.signature":"x"}`, data), -32602, "federation.signature", "invalid"},
		{"unknown skill", nil, nil, sendMessage(`{"federation.to":"did:x","federation.skill":"dance"}`, data), -32602, "no skill", "invalid"},
		{"skill not over A2A", nil, nil, sendMessage(`{"federation.skill":"discover"}`, data), -32004, "HTTP API", ""},
		{"unknown target", federation.Errorf(federation.ENOTFOUND, "no agent did:key:z6MkTarget"), nil, sendMessage(to, data), -32602, "no agent", "not_found"},
		{"unauthenticated", federation.Errorf(federation.EUNAUTHORIZED, "the credential expired"), nil, sendMessage(to, data), -31401, "expired", "unauthorized"},
		{"forbidden", federation.Errorf(federation.EFORBIDDEN, "alpha may not reach beta"), nil, sendMessage(to, data), -31403, "may not reach", "forbidden"},
		{"rate limited", federation.Errorf(federation.ERATELIMITED, "slow down"), nil, sendMessage(to, data), -32000, "slow down", "rate_limited"},
		{"target down", federation.Wrap(federation.EUNAVAILABLE, errors.New("dial tcp 10.1.2.3:443"), "agent did:x is unreachable"), nil, sendMessage(to, data), -32000, "unreachable", "unavailable"},
		{"internal", errors.New("table arn:aws:dynamodb:secret-table missing"), nil, sendMessage(to, data), -32603, "An internal error occurred.", "internal"},
		{"no tasks", nil, nil, `{"jsonrpc":"2.0","id":"1","method":"GetTask","params":{"id":"t-1"}}`, -32001, "keeps no tasks", ""},
		{"no push", nil, nil, `{"jsonrpc":"2.0","id":"1","method":"ListTaskPushNotificationConfigs","params":{"taskId":"t-1"}}`, -32003, "", ""},
		{"another A2A version", nil, http.Header{"A2A-Version": {"2.0"}}, sendMessage(to, data), -32009, "2.0", ""},
		{"too large", nil, nil, sendMessage(to, `[{"text":"`+strings.Repeat("x", delivery.MaxRequestBytes)+`"}]`), -32600, "over", ""},
		{"not JSON content", nil, http.Header{"Content-Type": {"text/plain"}}, sendMessage(to, data), -32600, "Content-Type: application/json", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, logged := startGateway(t, &fakeRouter{err: tt.routerErr})
			resp := post(t, srv.URL+"/a2a", tt.header, tt.body)
			if resp.Error == nil {
				t.Fatalf("no error: %s", resp.Result)
			}
			if resp.Error.Code != tt.code || !strings.Contains(resp.Error.Message, tt.message) {
				t.Errorf("error %d %q, want %d containing %q", resp.Error.Code, resp.Error.Message, tt.code, tt.message)
			}
			if tt.fedCode != "" {
				found := false
				for _, d := range resp.Error.Data {
					if d["code"] == tt.fedCode {
						found = true
					}
				}
				if !found {
					t.Errorf("error data %v lacks code %q", resp.Error.Data, tt.fedCode)
				}
			}
			body := must(json.Marshal(resp))
			for _, secret := range []string{"secret-table", "10.1.2.3"} {
				if strings.Contains(body, secret) {
					t.Errorf("the answer shows %q: %s", secret, body)
				}
			}
			if tt.fedCode == "internal" && !strings.Contains(logged.String(), "secret-table") {
				t.Errorf("the cause is not logged: %s", logged)
			}
		})
	}
}

// Streaming is refused within the SSE stream a2a-go opens for it.
func TestGatewayRefusesStreaming(t *testing.T) {
	srv, _ := startGateway(t, &fakeRouter{})
	client, err := a2aclient.NewFromEndpoints(context.Background(),
		[]*a2a.AgentInterface{a2a.NewAgentInterface(srv.URL+"/a2a", a2a.TransportProtocolJSONRPC)},
		a2aclient.WithJSONRPCTransport(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Destroy()
	msg := a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart("hi"))
	msg.Metadata = map[string]any{delivery.MetaTo: "did:x"}
	var got error
	for _, err := range client.SendStreamingMessage(context.Background(), &a2a.SendMessageRequest{Message: msg}) {
		got = err
		break
	}
	if !errors.Is(got, a2a.ErrUnsupportedOperation) {
		t.Errorf("err = %v, want unsupported operation", got)
	}
}
