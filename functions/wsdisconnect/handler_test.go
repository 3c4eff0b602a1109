package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	lambdaevents "github.com/aws/aws-lambda-go/events"

	"github.com/federation-gateway/gateway/infra/localtest"
	"github.com/federation-gateway/gateway/shared/dynamo"
	"github.com/federation-gateway/gateway/shared/events"
	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/logs"
)

func TestHandler(t *testing.T) {
	ctx := context.Background()
	store := dynamo.NewStore(localtest.DynamoDB(t), localtest.Table(t))
	var ev lambdaevents.APIGatewayWebsocketProxyRequest
	localtest.Event(t, "wsdisconnect.json", &ev)
	id := ev.RequestContext.ConnectionID
	if err := store.PutConnection(ctx, events.Connection{ID: id, ConnectedAt: time.Now()}, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	h := Handler(store, logs.New(&bytes.Buffer{}, "debug"))
	for range 2 { // a second $disconnect of the same connection is no error
		if resp, err := h(ctx, ev); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%+v, %v", resp, err)
		}
	}
	if _, err := store.Connection(ctx, id); federation.ErrorCode(err) != federation.ENOTFOUND {
		t.Errorf("the connection is still recorded: %v", err)
	}
}
