// Command verify serves POST /api/v1/verify behind the HTTP API: it verifies SPIFFE SVIDs
// and did:key / did:web signed JWTs, and names the directory's agent of the subject.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/federation-gateway/gateway/shared/apigw"
	"github.com/federation-gateway/gateway/shared/identity/identityhttp"
	"github.com/federation-gateway/gateway/shared/metrics"
	"github.com/federation-gateway/gateway/shared/startup"
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
	cfg, log, store := fn.Config, fn.Log, fn.Store
	v, err := identityhttp.NewGatewayVerifier(cfg.Gateway.ID, cfg.TrustDomains, store, 0, store.ReplayGuard(), cfg.AWSEndpoints)
	if err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	return apigw.Lambda(Handler(v, store, log, metrics.New(os.Stdout, cfg.Stage, "verify")), log), nil
}
