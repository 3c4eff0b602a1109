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
	"github.com/federation-gateway/gateway/shared/identity/identityhttp"
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
	verifier, err := identityhttp.NewGatewayVerifier(cfg.Gateway.ID, cfg.TrustDomains, store, 5*time.Minute, store.ReplayGuard(), cfg.AWSEndpoints)
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
