// Command wsconnect serves the $connect route of the WebSocket API of event streams: it
// authenticates a subscriber with the gateway's verifier and records its connection.
package main

import (
	"context"
	"fmt"
	"time"

	lambdaevents "github.com/aws/aws-lambda-go/events"

	"github.com/federation-gateway/gateway/shared/config"
	"github.com/federation-gateway/gateway/shared/dynamo"
	"github.com/federation-gateway/gateway/shared/events"
	"github.com/federation-gateway/gateway/shared/identity"
	"github.com/federation-gateway/gateway/shared/identity/identityhttp"
	"github.com/federation-gateway/gateway/shared/outbound"
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
	verifier, err := newVerifier(cfg, store)
	if err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	// The connection service's other ports (log, poster, agents) serve subscribe, not
	// $connect.
	svc := events.NewService(nil, store, nil, nil, log, 0)
	// The bridge's operators see every event, as they may read any transfer.
	return Handler(verifier, svc, cfg.Bridge.Operators, log), nil
}

// newVerifier builds the verifier the HTTP API's functions build (functions/verify): a
// did:web is resolved under the outbound Identifiers policy, so a caller-named host never
// reaches a private address.
func newVerifier(cfg config.Config, store *dynamo.Store) (*identity.Verifier, error) {
	inline, err := identity.InlineBundles(cfg.TrustDomains)
	if err != nil {
		return nil, err
	}
	return identity.NewVerifier(identity.Options{
		Audience: cfg.Gateway.ID,
		Bundles:  identity.FirstBundle{identity.NewStoredBundles(store, cfg.TrustDomains, 5*time.Minute, time.Now), inline},
		Replay:   store.ReplayGuard(),
		DIDs: identityhttp.NewDIDResolver(outbound.NewClient(outbound.Options{
			Purpose: outbound.Identifiers, AllowPrivate: cfg.AllowPrivateNetworks, Deny: cfg.AWSEndpoints,
		})),
	})
}
