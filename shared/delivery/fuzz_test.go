package delivery_test

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/a2aproject/a2a-go/v2/a2a"

	"github.com/federation-gateway/gateway/shared/delivery"
	"github.com/federation-gateway/gateway/shared/federation"
)

// A target's answer is outside input: whatever it holds, summarizing it never panics,
// and a summary is JSON of bounded size that names its kind.
func FuzzSummarize(f *testing.F) {
	for _, seed := range []string{
		`{"message":{"messageId":"m1","contextId":"c","role":"ROLE_AGENT","parts":[{"text":"hi"},{"data":{"a":[1,2]}},{"url":"https://x.example/f","mediaType":"application/pdf","filename":"f.pdf"},{"raw":"AAEC"}]}}`,
		`{"task":{"id":"t1","contextId":"c","status":{"state":"TASK_STATE_COMPLETED","message":{"messageId":"s","role":"ROLE_AGENT","parts":[{"text":"done"}]}},"artifacts":[{"artifactId":"a1","name":"sum","parts":[{"text":"6.5"},{"data":{"result":"6.5"}}]}]}}`,
		`{"task":{"id":"t2","status":{"state":"TASK_STATE_REJECTED","message":{"parts":[null,{"text":"no \u0000 way"}]}},"artifacts":[null,{"parts":null}]}}`,
		`{"task":{"id":"t3","status":{"state":"TASK_STATE_FAILED"}}}`,
		`{"task":{"id":"t4","status":{"state":"SOMETHING_ELSE"}}}`,
		`{"message":null}`,
		`{"task":null}`,
		`{"message":{"parts":[{"text":"` + strings.Repeat("é", 20000) + `"}]}}`,
		`{"message":{"parts":[{"data":{"big":"` + strings.Repeat("x", 20000) + `"}},{"text":"after"}]}}`,
		`{"statusUpdate":{"taskId":"t","status":{"state":"TASK_STATE_WORKING"}}}`,
		`{}`,
		`[]`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		o, err := delivery.SummarizeResult(raw)
		if o.Summary == nil {
			return
		}
		if !json.Valid(o.Summary) {
			t.Fatalf("summary is not JSON: %s", o.Summary)
		}
		var s struct {
			Kind string `json:"kind"`
		}
		_ = json.Unmarshal(o.Summary, &s)
		if (o.Kind != delivery.KindMessage && o.Kind != delivery.KindTask) || s.Kind != o.Kind {
			t.Fatalf("kind %q, summary kind %q", o.Kind, s.Kind)
		}
		// Content is bounded by MaxSummaryBytes; JSON escaping can make a byte six.
		if len(o.Summary) > 6*delivery.MaxSummaryBytes+4096 {
			t.Fatalf("summary of %d bytes", len(o.Summary))
		}
		if err != nil && federation.ErrorCode(err) != federation.EUNAVAILABLE {
			t.Fatalf("err %v is not EUNAVAILABLE", err)
		}
	})
}

// What a caller sends the gateway's A2A endpoint is outside input: every body gets a
// JSON-RPC answer, and what reaches the router is a target and a JSON payload.
func FuzzGatewayRequest(f *testing.F) {
	for _, seed := range []string{
		sendMessage(`{"federation.to":"did:key:z6MkTarget"}`, `[{"data":{"a":1}}]`),
		sendMessage(`{"federation.to":"did:key:z6MkTarget","federation.message_id":"x"}`, `[{"text":"a"},{"text":"b"}]`),
		sendMessage(`{"federation.to":"did:x","federation.skill":"broadcast"}`, `[{"data":null}]`),
		sendMessage(`{"federation.to":["did:x"]}`, `[null,{"raw":"AA=="}]`),
		sendMessage(`{"federation.to":"did:x"}`, `[{"text":"hi"},{"data":{"n":1},"mediaType":"application/json"},{"url":"https://f.example/a.pdf","filename":"a.pdf"},{"raw":"AAE=","metadata":{"k":1}}]`),
		sendMessage(`{"federation.to":"did:x","federation.source_registry":"alpha","federation.too":"x"}`, `[{"text":""}]`),
		sendMessage(`null`, `null`),
		`{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"message":null,"metadata":{"federation.to":"did:x"}}}`,
		`{"jsonrpc":"2.0","id":{},"method":"SendMessage"}`,
		`{"jsonrpc":"2.0","id":"1","method":"GetTask","params":{"id":"t"}}`,
		`{"jsonrpc":"1.0","method":"SendMessage"}`,
		`not json`,
		``,
	} {
		f.Add(seed)
	}
	router := &fakeRouter{}
	card := delivery.GatewayCard("https://gw.example", "gw-fuzz")
	h := delivery.NewA2AHandler(router, card)
	f.Fuzz(func(t *testing.T, body string) {
		defer func() {
			router.mu.Lock()
			router.reqs, router.auth = nil, nil
			router.mu.Unlock()
		}()
		w := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/a2a", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(w, req)
		if !strings.HasPrefix(w.Header().Get("Content-Type"), "text/event-stream") { // streaming methods answer SSE
			var resp rpcResponse
			if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil || resp.JSONRPC != "2.0" || (resp.Error == nil) == (resp.Result == nil) {
				t.Fatalf("answer %d %q is not a JSON-RPC response", w.Code, w.Body)
			}
		}
		router.mu.Lock()
		reqs := router.reqs
		router.mu.Unlock()
		for _, req := range reqs {
			if req.To == "" || !json.Valid(req.Payload) || req.MessageID == "" || !req.Parts {
				t.Fatalf("the router got %+v (payload %q)", req, req.Payload)
			}
			// The payload is the parts, as a deliverer will send them.
			var parts []*a2a.Part
			if err := json.Unmarshal(req.Payload, &parts); err != nil || len(parts) == 0 {
				t.Fatalf("the payload %q is not a list of parts: %v", req.Payload, err)
			}
		}
	})
}

// A target reads the gateway's metadata from a message anyone could have sent it.
func FuzzReadForwarded(f *testing.F) {
	for _, seed := range []string{
		`{"messageId":"m","role":"ROLE_USER","parts":[{"data":{"a":1}}],"metadata":{"federation.message_id":"m","federation.signature":"x.y.z","federation.verified_by":{"method":"did:key","subject":"did:key:z"}}}`,
		`{"messageId":"m","role":"ROLE_USER","parts":[{"data":{"value":[1]}}],"metadata":{"federation.message_id":"m","federation.signature":"t","federation.payload_wrapped":true}}`,
		`{"messageId":"m","role":"ROLE_USER","parts":[{"data":[1]}],"metadata":{"federation.message_id":"m","federation.signature":"t","federation.payload_wrapped":true}}`,
		`{"messageId":"m","parts":[null,{"data":null}],"metadata":{"federation.message_id":1,"federation.verified_by":"x"}}`,
		`{"messageId":"m","role":"ROLE_USER","parts":[{"text":"hi"},{"url":"https://f.example/a"}],"metadata":{"federation.message_id":"m","federation.signature":"t","federation.payload_form":"parts"}}`,
		`{}`,
	} {
		f.Add([]byte(seed))
	}
	jwks := newSignerF(f).JWKS()
	f.Fuzz(func(t *testing.T, raw []byte) {
		var msg a2a.Message
		if json.Unmarshal(raw, &msg) != nil {
			return
		}
		m, token, err := delivery.ReadForwarded(&msg)
		if err != nil {
			return
		}
		if m.ID == "" || token == "" || !json.Valid(m.Payload) {
			t.Fatalf("read %+v, token %q", m, token)
		}
		if delivery.VerifyForwarded(jwks, token, m) == nil {
			t.Fatal("a message not signed by this key verifies")
		}
	})
}

func newSignerF(f *testing.F) *delivery.Signer {
	jwk, err := delivery.GenerateKeyJWK()
	if err != nil {
		f.Fatal(err)
	}
	s, err := delivery.NewSigner(jwk)
	if err != nil {
		f.Fatal(err)
	}
	return s
}
