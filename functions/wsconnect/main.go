// Command wsconnect serves the $connect route of the WebSocket API of event streams: it
// authenticates a subscriber with the gateway's verifier and records its connection.
package main

import (
	"context"
	"fmt"
	"time"

	lambdaevents "github.com/aws/aws-lambda-go/events"

	"github.com/federation-gateway/gateway/shared/events"
	"github.com/federation-gateway/gateway/shared/identity/identityhttp"
	"github.com/federation-gateway/gateway/shared/startup"
	"github.com/federation-gateway/gateway/shared/wiring"
)

func main() { startup.Start(build) }

// build wires the function; startup.Start runs it while the runtime polls for the first
// invocation.
func build(ctx context.Context) (func(context.Context, lambdaevents.APIGatewayWebsocketProxyRequest) (lambdaevents.APIGatewayProxyResponse, error), error) {
	fn, err := wiring.Load(ctx)
	if err != nil {
		return nil, err
	}
	cfg, log, store := fn.Config, fn.Log, fn.Store
	verifier, err := identityhttp.NewGatewayVerifier(cfg.Gateway.ID, cfg.TrustDomains, store, 5*time.Minute, store.ReplayGuard(), cfg.AWSEndpoints)
	if err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	// The connection service's other ports (log, poster, agents) serve subscribe, not
	// $connect.
	svc := events.NewService(nil, store, nil, nil, log, 0)
	// The bridge's operators see every event, as they may read any transfer.
	return Handler(verifier, svc, cfg.Bridge.Operators, log), nil
}
