package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	lambdaevents "github.com/aws/aws-lambda-go/events"

	"github.com/federation-gateway/gateway/infra/localtest"
	"github.com/federation-gateway/gateway/shared/apigw"
	"github.com/federation-gateway/gateway/shared/dynamo"
	"github.com/federation-gateway/gateway/shared/events"
	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/identity"
	"github.com/federation-gateway/gateway/shared/logs"
)

// sampleDID signed the token of events/wsconnect.json (the one of events/verify.json),
// issued at sampleTime, valid five minutes.
const sampleDID = "did:key:z6Mkt2ytjoR5FPeY4Ye9zpYY4bgg9X1bq9nRVXDYPuaDQE3X"

var sampleTime = time.Unix(1795636261, 0)

func TestHandler(t *testing.T) {
	ctx := context.Background()
	store := dynamo.NewStore(localtest.DynamoDB(t), localtest.Table(t))
	clock := func() time.Time { return sampleTime.Add(30 * time.Second) }
	replay := store.ReplayGuard()
	replay.Now = clock
	v, err := identity.NewVerifier(identity.Options{Audience: "federation-gateway", Replay: replay, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	log := logs.New(&bytes.Buffer{}, "debug")
	h := Handler(v, events.NewService(nil, store, nil, nil, log, 0), []string{sampleDID}, log)
	var sample lambdaevents.APIGatewayWebsocketProxyRequest
	localtest.Event(t, "wsconnect.json", &sample)
	id := sample.RequestContext.ConnectionID

	resp, err := h(ctx, sample)
	if err != nil || resp.StatusCode != 200 || resp.Headers["Sec-WebSocket-Protocol"] != "federation-events.v1" {
		t.Fatalf("wsconnect.json: %+v, %v", resp, err)
	}
	c, err := store.Connection(ctx, id)
	if err != nil || c.Viewer.Subject != sampleDID || !c.Viewer.Operator {
		t.Errorf("recorded %+v, %v; want the verified subject, an operator", c, err)
	}

	for _, tt := range []struct {
		name    string
		edit    func(map[string]string)
		status  int
		mention string
	}{
		{"the same token again", func(map[string]string) {}, 401, "replayed jti"},
		{"no credential", func(h map[string]string) { delete(h, "Sec-WebSocket-Protocol") }, 401, "no credential"},
		{"the token without the protocol", func(h map[string]string) {
			h["Sec-WebSocket-Protocol"] = strings.Replace(h["Sec-WebSocket-Protocol"], "federation-events.v1, ", "", 1)
		}, 401, "comes with the subprotocol"},
		{"not a JWT", func(h map[string]string) { delete(h, "Sec-WebSocket-Protocol"); h["authorization"] = "Bearer x.y.z" }, 401, ""},
		{"another scheme", func(h map[string]string) { h["Authorization"] = "Basic dXNlcjpwYXNz" }, 401, "not supported"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ev := sample
			ev.Headers = map[string]string{}
			for k, v := range sample.Headers {
				ev.Headers[k] = v
			}
			tt.edit(ev.Headers)
			ev.RequestContext.ConnectionID = "other"
			resp, err := h(ctx, ev)
			if err != nil || resp.StatusCode != tt.status || resp.Headers["Content-Type"] != apigw.ProblemContentType {
				t.Fatalf("%+v, %v", resp, err)
			}
			var p apigw.Problem
			if err := json.Unmarshal([]byte(resp.Body), &p); err != nil || !strings.Contains(p.Detail, tt.mention) {
				t.Errorf("problem %s", resp.Body)
			}
			if _, err := store.Connection(ctx, "other"); federation.ErrorCode(err) != federation.ENOTFOUND {
				t.Errorf("a refused connection was recorded: %v", err)
			}
		})
	}
}
