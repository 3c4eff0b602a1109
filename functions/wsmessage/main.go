// Command wsmessage serves the WebSocket API of event streams' frames: subscribe,
// unsubscribe and ping, and every other frame ($default) with an error frame.
package main

import (
	"context"
	"encoding/base64"
	"log/slog"
	"os"

	lambdaevents "github.com/aws/aws-lambda-go/events"

	"github.com/federation-gateway/gateway/shared/config"
	"github.com/federation-gateway/gateway/shared/dynamo"
	"github.com/federation-gateway/gateway/shared/events"
	"github.com/federation-gateway/gateway/shared/logs"
	"github.com/federation-gateway/gateway/shared/startup"
	"github.com/federation-gateway/gateway/shared/wsapi"
)

func main() { startup.Start(build) }

// build wires the function; startup.Start runs it while the runtime polls for the first
// invocation.
func build(ctx context.Context) (func(context.Context, lambdaevents.APIGatewayWebsocketProxyRequest) (lambdaevents.APIGatewayProxyResponse, error), error) {
	awsCfg, err := config.AWS(os.Getenv)
	if err != nil {
		return nil, err
	}
	env, err := config.LoadEnv(os.Getenv, "CONNECTIONS_URL")
	if err != nil {
		return nil, err
	}
	log := logs.New(os.Stdout, env.LogLevel)
	store := dynamo.NewStore(dynamo.NewClient(awsCfg, env.LocalEndpoint), env.Table)
	retention := config.Hours(os.Getenv("EVENT_RETENTION_HOURS"), events.DefaultRetention)
	svc := events.NewService(store.EventLog(retention), store, wsapi.NewConnections(awsCfg, env.Vars["CONNECTIONS_URL"]), store, log, retention)
	return Handler(svc, log), nil
}

// Receiver answers frames; *events.Service is one.
type Receiver interface {
	Receive(ctx context.Context, id string, body []byte) error
}

// Handler hands a frame to the connection service, which answers it on the connection.
// It answers API Gateway 200 whatever the frame: the subscriber's answer is the frame the
// service posts (the API has no route responses).
func Handler(r Receiver, log *slog.Logger) func(context.Context, lambdaevents.APIGatewayWebsocketProxyRequest) (lambdaevents.APIGatewayProxyResponse, error) {
	return func(ctx context.Context, req lambdaevents.APIGatewayWebsocketProxyRequest) (lambdaevents.APIGatewayProxyResponse, error) {
		id := req.RequestContext.ConnectionID
		body := []byte(req.Body)
		if req.IsBase64Encoded {
			if b, err := base64.StdEncoding.DecodeString(req.Body); err == nil {
				body = b
			}
		}
		if err := r.Receive(ctx, id, body); err != nil {
			log.WarnContext(ctx, "answer a frame", "connection", id, "route", req.RequestContext.RouteKey, "error", err)
		}
		return lambdaevents.APIGatewayProxyResponse{StatusCode: 200}, nil
	}
}
