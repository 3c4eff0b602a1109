package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/federation-gateway/gateway/infra/localtest"
	"github.com/federation-gateway/gateway/shared/apigw"
	"github.com/federation-gateway/gateway/shared/apigw/openapitest"
	"github.com/federation-gateway/gateway/shared/bridge"
	"github.com/federation-gateway/gateway/shared/logs"
)

const (
	sender   = "numerix/calculator" // alpha, did:key
	receiver = "did:agentvault:textkit/mirror"
)

// The handler as main wires it, over the bridge fixture, fed the sample events.
func TestHandler(t *testing.T) {
	fx := localtest.Bridge(t, func(o *bridge.Options) {
		id := bridge.LaneID{From: "alpha", To: "beta"}
		l := o.Lanes[id]
		l.Capacity, l.Refill, l.Max = localDec("110"), localDec("0.5"), localDec("100")
		o.Lanes[id] = l
	})
	log := logs.New(&bytes.Buffer{}, "error")
	// Every exchange is checked against docs/openapi.json.
	h := openapitest.New(t).Lambda(t, apigw.Lambda(Handler(fx.Bridge, log), log))
	ctx := context.Background()
	from := fx.Fed.Agent(sender)
	body := func(amount, deposit string) string {
		return `{"from":"` + from.DID + `","to":"` + receiver + `","amount":"` + amount + `","deposit":{"registry":"alpha","transaction_id":"` + deposit + `"}}`
	}
	post := func(b string, change func(*events.APIGatewayV2HTTPRequest)) events.APIGatewayV2HTTPResponse {
		t.Helper()
		ev := localtest.HTTPEvent(t, "bridge.json")
		ev.Headers["authorization"] = "Bearer " + fx.Token(t, sender)
		delete(ev.Headers, "idempotency-key")
		ev.Body = b
		if change != nil {
			change(&ev)
		}
		resp, err := h(ctx, ev)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	get := func(id, agent string) events.APIGatewayV2HTTPResponse {
		t.Helper()
		ev := localtest.HTTPEvent(t, "bridge-get.json")
		ev.RawPath, ev.RequestContext.HTTP.Path = "/api/v1/bridge/"+id, "/api/v1/bridge/"+id
		ev.Headers["authorization"] = "Bearer " + fx.Token(t, agent)
		resp, err := h(ctx, ev)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}

	dep := fx.Deposit(t, sender, "alpha", "25.0")
	const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
	resp := post(body("25.0", dep), func(e *events.APIGatewayV2HTTPRequest) {
		e.Headers["idempotency-key"] = "k-1"
		e.Headers["traceparent"] = "00-" + trace + "-00f067aa0ba902b7-01"
	})
	var view bridge.View
	if resp.StatusCode != 202 || json.Unmarshal([]byte(resp.Body), &view) != nil || view.Status != bridge.StatusPending ||
		resp.Headers["Location"] != "/api/v1/bridge/"+view.ID || view.Amount != "25" || view.ExecutionARN == "" {
		t.Fatalf("POST: %d %v %s", resp.StatusCode, resp.Headers, resp.Body)
	}
	// The saga's execution carries the request's correlation ID, the caller's trace.
	exec, err := sfn.NewFromConfig(localtest.AWSConfig(t)).DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(view.ExecutionARN)})
	if err != nil {
		t.Fatal(err)
	}
	var input map[string]string
	if err := json.Unmarshal([]byte(aws.ToString(exec.Input)), &input); err != nil || input["transfer_id"] != view.ID || input["correlation_id"] != trace {
		t.Errorf("the execution's input: %s", aws.ToString(exec.Input))
	}
	if again := post(body("25.0", dep), func(e *events.APIGatewayV2HTTPRequest) { e.Headers["idempotency-key"] = "k-1" }); again.StatusCode != 200 || !strings.Contains(again.Body, view.ID) {
		t.Errorf("a repeat: %d %s", again.StatusCode, again.Body)
	}
	if again := post(body("25.0", dep), nil); again.StatusCode != 200 || !strings.Contains(again.Body, view.ID) {
		t.Errorf("the same deposit asked the same way without a key: %d %s", again.StatusCode, again.Body)
	}
	if got := get(view.ID, sender); got.StatusCode != 200 || !strings.Contains(got.Body, `"steps":[{"step":"accept"`) || got.Headers["Cache-Control"] != "no-store" {
		t.Errorf("GET by the sender: %d %s", got.StatusCode, got.Body)
	}

	tests := []struct {
		name    string
		resp    func() events.APIGatewayV2HTTPResponse
		status  int
		mention string
		header  string
	}{
		{"number amount (bridge-invalid.json)", func() events.APIGatewayV2HTTPResponse {
			ev := localtest.HTTPEvent(t, "bridge-invalid.json")
			ev.Headers["authorization"] = "Bearer " + fx.Token(t, sender)
			r, _ := h(ctx, ev)
			return r
		}, 400, "amount: want a string", ""},
		{"unknown field", func() events.APIGatewayV2HTTPResponse {
			return post(strings.Replace(body("5", "x1"), `"from"`, `"memo":"hi","from"`, 1), nil)
		}, 400, `unknown field "memo"`, ""},
		{"not JSON", func() events.APIGatewayV2HTTPResponse { return post(`{"from":`, nil) }, 400, "not valid JSON", ""},
		{"two objects", func() events.APIGatewayV2HTTPResponse { return post(body("5", "x1")+"{}", nil) }, 400, "more after its JSON object", ""},
		{"not a JSON content type", func() events.APIGatewayV2HTTPResponse {
			return post(body("5", "x1"), func(e *events.APIGatewayV2HTTPRequest) { e.Headers["content-type"] = "text/plain" })
		}, 415, "application/json", ""},
		{"too many decimals", func() events.APIGatewayV2HTTPResponse { return post(body("5.123456789", "x1"), nil) }, 400, "more than 8 decimal places", ""},
		{"over the lane's max", func() events.APIGatewayV2HTTPResponse { return post(body("101", "x1"), nil) }, 400, "outside lane alpha->beta's limits", ""},
		{"too large", func() events.APIGatewayV2HTTPResponse {
			return post(`{"from":"`+strings.Repeat("x", maxBody)+`"}`, nil)
		}, 413, "over", ""},
		{"no credential", func() events.APIGatewayV2HTTPResponse {
			return post(body("5", "x1"), func(e *events.APIGatewayV2HTTPRequest) { delete(e.Headers, "authorization") })
		}, 401, "no credential", "Www-Authenticate"},
		{"a bad credential", func() events.APIGatewayV2HTTPResponse {
			return post(body("5", "x1"), func(e *events.APIGatewayV2HTTPRequest) { e.Headers["authorization"] = "Bearer not.a.jwt" })
		}, 401, "", "Www-Authenticate"},
		{"as another agent", func() events.APIGatewayV2HTTPResponse {
			return post(body("5", "x1"), func(e *events.APIGatewayV2HTTPRequest) {
				e.Headers["authorization"] = "Bearer " + fx.Token(t, "acme/weather-bot")
			})
		}, 403, "may not send as", ""},
		{"no lane", func() events.APIGatewayV2HTTPResponse {
			return post(strings.Replace(body("5", "x1"), receiver, "did:agentvault:acme/forecast-pro", 1), nil)
		}, 404, "no bridge lane alpha->alpha", ""},
		{"unknown transfer", func() events.APIGatewayV2HTTPResponse { return get("br-0123", sender) }, 404, "no transfer", ""},
		{"someone else's transfer", func() events.APIGatewayV2HTTPResponse { return get(view.ID, "polyglot/translator") }, 404, "no transfer", ""},
		{"deposit used for another request", func() events.APIGatewayV2HTTPResponse { return post(body("26", dep), nil) }, 409, "already backs", ""},
		{"key used for another request", func() events.APIGatewayV2HTTPResponse {
			return post(body("5", "x1"), func(e *events.APIGatewayV2HTTPRequest) { e.Headers["idempotency-key"] = "k-1" })
		}, 409, "Idempotency-Key \"k-1\" was used for another request", ""},
		{"under the lane's min", func() events.APIGatewayV2HTTPResponse { return post(body("0.5", "x1"), nil) }, 400, "outside lane alpha->beta's limits", ""},
		{"deposit on another registry", func() events.APIGatewayV2HTTPResponse {
			return post(strings.Replace(body("5", "x1"), `"registry":"alpha"`, `"registry":"beta"`, 1), nil)
		}, 422, "deposit on your own registry", ""},
		{"rate limited", func() events.APIGatewayV2HTTPResponse { return post(body("100", "x2"), nil) }, 429, "rate limit", "Retry-After"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := tt.resp()
			var p apigw.Problem
			if resp.StatusCode != tt.status || resp.Headers["Content-Type"] != apigw.ProblemContentType || json.Unmarshal([]byte(resp.Body), &p) != nil ||
				!strings.Contains(p.Detail, tt.mention) {
				t.Fatalf("%d %v %s; want %d mentioning %q", resp.StatusCode, resp.Headers, resp.Body, tt.status, tt.mention)
			}
			if tt.header != "" && resp.Headers[tt.header] == "" {
				t.Errorf("no %s header: %v", tt.header, resp.Headers)
			}
			if tt.status == 429 {
				// 85 of 110 left in the bucket for 100, refilled at 0.5 a second: 30 s, less
				// the test's own time.
				if secs, err := strconv.Atoi(resp.Headers["Retry-After"]); err != nil || secs < 20 || secs > 30 {
					t.Errorf("Retry-After %q, want about 30 seconds", resp.Headers["Retry-After"])
				}
			}
			if strings.Contains(resp.Body, "json:") || strings.Contains(resp.Body, "bridge.Request") {
				t.Errorf("parser words in %s", resp.Body)
			}
		})
	}
	if _, err := fx.Bridge.Operate(ctx, bridge.OperatorRequest{Action: bridge.ActionPause, RequestID: "pause", Operator: "test", Lane: "alpha->beta"}); err != nil {
		t.Fatal(err)
	}
	if resp := post(body("5", "x3"), nil); resp.StatusCode != 423 || !strings.Contains(resp.Body, "paused") || resp.Headers["Content-Type"] != apigw.ProblemContentType {
		t.Errorf("paused lane: %d %s", resp.StatusCode, resp.Body)
	}
}

func localDec(s string) (d decimalT) { return mustDec(s) }

// FuzzDecodeRequest: whatever the body, the decoder answers a request or an EINVALID
// error in the API's words, and never panics.
func FuzzDecodeRequest(f *testing.F) {
	for _, seed := range []string{
		`{"from":"did:key:z","to":"did:agentvault:a/b","amount":"25.0","deposit":{"registry":"alpha","transaction_id":"tx_1"}}`,
		`{"amount":25}`, `{"deposit":"x"}`, `[]`, `null`, `{"from":"a"}{}`, `{"x":1}`, ``, `{"amount":"1e3"}`, "\xff",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		_, err := DecodeRequest(body)
		if err != nil && (strings.Contains(err.Error(), "json:") || strings.Contains(err.Error(), "bridge.")) {
			t.Errorf("parser words: %v", err)
		}
	})
}
