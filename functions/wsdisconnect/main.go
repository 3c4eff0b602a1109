// Command wsdisconnect serves the $disconnect route of the WebSocket API of event
// streams: it forgets the connection and its subscription.
package main

import (
	"context"
	"log/slog"
	"os"

	lambdaevents "github.com/aws/aws-lambda-go/events"

	"github.com/federation-gateway/gateway/shared/config"
	"github.com/federation-gateway/gateway/shared/dynamo"
	"github.com/federation-gateway/gateway/shared/logs"
	"github.com/federation-gateway/gateway/shared/startup"
)

func main() { startup.Start(build) }

// build wires the function; startup.Start runs it while the runtime polls for the first
// invocation.
func build(ctx context.Context) (func(context.Context, lambdaevents.APIGatewayWebsocketProxyRequest) (lambdaevents.APIGatewayProxyResponse, error), error) {
	awsCfg, err := config.AWS(os.Getenv)
	if err != nil {
		return nil, err
	}
	env, err := config.LoadEnv(os.Getenv)
	if err != nil {
		return nil, err
	}
	log := logs.New(os.Stdout, env.LogLevel)
	store := dynamo.NewStore(dynamo.NewClient(awsCfg, env.LocalEndpoint), env.Table)
	return Handler(store, log), nil
}

// Forgetter forgets connections; *dynamo.Store is one.
type Forgetter interface {
	DeleteConnection(ctx context.Context, id string) error
}

// Handler forgets a connection that ended. API Gateway calls $disconnect on a best-effort
// basis: a connection whose $disconnect is lost expires with its record (2 hours), and a
// post to it (410) forgets it sooner.
func Handler(f Forgetter, log *slog.Logger) func(context.Context, lambdaevents.APIGatewayWebsocketProxyRequest) (lambdaevents.APIGatewayProxyResponse, error) {
	return func(ctx context.Context, req lambdaevents.APIGatewayWebsocketProxyRequest) (lambdaevents.APIGatewayProxyResponse, error) {
		id := req.RequestContext.ConnectionID
		if err := f.DeleteConnection(ctx, id); err != nil {
			log.ErrorContext(ctx, "forget connection", "connection", id, "error", err)
			return lambdaevents.APIGatewayProxyResponse{StatusCode: 500}, nil
		}
		reason := ""
		if r := req.RequestContext.DisconnectReason; r != nil {
			reason = *r
		}
		log.InfoContext(ctx, "disconnected", "connection", id, "code", req.RequestContext.DisconnectStatusCode, "reason", reason)
		return lambdaevents.APIGatewayProxyResponse{StatusCode: 200}, nil
	}
}
