package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"sync"
	"testing"
	"time"

	lambdaevents "github.com/aws/aws-lambda-go/events"

	"github.com/federation-gateway/gateway/infra/localtest"
	"github.com/federation-gateway/gateway/shared/dynamo"
	"github.com/federation-gateway/gateway/shared/events"
	"github.com/federation-gateway/gateway/shared/logs"
)

// frames records what is posted to connections; the @connections API itself is the local
// WebSocket API's, tested in infra/devstack and infra/e2e.
type frames struct {
	mu   sync.Mutex
	sent []events.Frame
}

func (f *frames) Post(_ context.Context, _ string, data []byte) error {
	var fr events.Frame
	if err := json.Unmarshal(data, &fr); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, fr)
	return nil
}

func (f *frames) Close(context.Context, string) error { return nil }

func (f *frames) last() events.Frame {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sent[len(f.sent)-1]
}

func TestHandler(t *testing.T) {
	ctx := context.Background()
	store := dynamo.NewStore(localtest.DynamoDB(t), localtest.Table(t))
	posted := &frames{}
	log := logs.New(&bytes.Buffer{}, "debug")
	h := Handler(events.NewService(store.EventLog(time.Hour), store, posted, store, log, time.Hour), log)
	var ev lambdaevents.APIGatewayWebsocketProxyRequest
	localtest.Event(t, "wsmessage.json", &ev)
	id := ev.RequestContext.ConnectionID
	if err := store.PutConnection(ctx, events.Connection{ID: id, Viewer: events.Viewer{Subject: "did:key:z6Mk"}, ConnectedAt: time.Now()}, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}

	if resp, err := h(ctx, ev); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%+v, %v", resp, err)
	}
	if f := posted.last(); f.Kind != events.KindSubscribed || f.ID != "s1" || f.Filter == nil || len(f.Filter.Types) != 2 {
		t.Errorf("answer %+v", f)
	}
	if c, _ := store.Connection(ctx, id); c.Sub.State != events.SubPending || c.Sub.Filter.Types[0] != "registry.*" {
		t.Errorf("subscription %+v", c.Sub)
	}

	// A binary frame arrives base64-encoded: it is decoded, and answered like any frame.
	ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString([]byte(`{"action":"ping","id":"p"}`)), true
	if resp, err := h(ctx, ev); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%+v, %v", resp, err)
	}
	if f := posted.last(); f.Kind != events.KindPong || f.ID != "p" {
		t.Errorf("answer %+v", f)
	}
	// Whatever the frame, API Gateway is answered 200: the error goes to the connection.
	ev.Body, ev.IsBase64Encoded = `{"action":"shout"}`, false
	ev.RequestContext.RouteKey = "$default"
	if resp, err := h(ctx, ev); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%+v, %v", resp, err)
	}
	if f := posted.last(); f.Kind != events.KindError || f.Code != "invalid" {
		t.Errorf("answer %+v", f)
	}
}
