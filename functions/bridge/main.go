// Command bridge serves the token bridge behind the HTTP API: POST /api/v1/bridge accepts
// a transfer backed by a deposit and starts its saga, GET /api/v1/bridge/{id} follows it.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/federation-gateway/gateway/shared/apigw"
	"github.com/federation-gateway/gateway/shared/bridge"
	"github.com/federation-gateway/gateway/shared/identity"
	"github.com/federation-gateway/gateway/shared/identity/identityhttp"
	"github.com/federation-gateway/gateway/shared/outbound"
	"github.com/federation-gateway/gateway/shared/startup"
	"github.com/federation-gateway/gateway/shared/stepfunctions"
	"github.com/federation-gateway/gateway/shared/wiring"
)

func main() { startup.Start(build) }

// build wires the function; startup.Start runs it while the runtime polls for the first
// invocation.
func build(ctx context.Context) (apigw.LambdaHandler, error) {
	fn, err := wiring.Load(ctx)
	if err != nil {
		return nil, err
	}
	awsCfg, cfg, log, store := fn.AWS, fn.Config, fn.Log, fn.Store
	// Identifiers (did:web documents) are caller-supplied: the outbound guard's strictest
	// policy (docs/architecture.md, "Security model").
	identifiers := outbound.NewClient(outbound.Options{Purpose: outbound.Identifiers, Deny: cfg.AWSEndpoints})
	inline, err := identity.InlineBundles(cfg.TrustDomains)
	if err != nil {
		return nil, fmt.Errorf("trust bundles: %w", err)
	}
	verifier, err := identity.NewVerifier(identity.Options{
		Audience: cfg.Gateway.ID,
		Bundles:  identity.FirstBundle{identity.NewStoredBundles(store, cfg.TrustDomains, 5*time.Minute, time.Now), inline},
		Replay:   store.ReplayGuard(),
		DIDs:     identityhttp.NewDIDResolver(identifiers),
	})
	if err != nil {
		return nil, fmt.Errorf("verifier: %w", err)
	}
	opts, err := cfg.BridgeOptions(nil) // accepting a transfer moves no money
	if err != nil {
		return nil, fmt.Errorf("bridge configuration: %w", err)
	}
	opts.Log = log
	machine := stepfunctions.New(sfn.NewFromConfig(awsCfg), os.Getenv("STATE_MACHINE_ARN"))
	b, err := bridge.New(store, verifier, machine, opts)
	if err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	return apigw.Lambda(Handler(b, log), log), nil
}
