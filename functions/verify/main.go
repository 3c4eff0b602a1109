// Command verify serves POST /api/v1/verify behind the HTTP API: it verifies SPIFFE SVIDs
// and did:key / did:web signed JWTs, and names the directory's agent of the subject.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/federation-gateway/gateway/shared/apigw"
	"github.com/federation-gateway/gateway/shared/config"
	"github.com/federation-gateway/gateway/shared/dynamo"
	"github.com/federation-gateway/gateway/shared/identity"
	"github.com/federation-gateway/gateway/shared/identity/identityhttp"
	"github.com/federation-gateway/gateway/shared/metrics"
	"github.com/federation-gateway/gateway/shared/outbound"
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
	v, err := newVerifier(cfg, store)
	if err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	return apigw.Lambda(Handler(v, store, log, metrics.New(os.Stdout, cfg.Stage, "verify")), log), nil
}

// newVerifier builds the verifier of cfg over store. A did:web is resolved under the
// outbound Identifiers policy: the caller names its host, so it never reaches a private
// address, whatever allow_private_networks says.
func newVerifier(cfg config.Config, store *dynamo.Store) (*identity.Verifier, error) {
	inline, err := identity.InlineBundles(cfg.TrustDomains)
	if err != nil {
		return nil, err
	}
	return identity.NewVerifier(identity.Options{
		Audience: cfg.Gateway.ID,
		// Bundles refreshed from the endpoints first: they follow key rotation.
		Bundles: identity.FirstBundle{identity.NewStoredBundles(store, cfg.TrustDomains, 0, nil), inline},
		Replay:  store.ReplayGuard(),
		DIDs: identityhttp.NewDIDResolver(outbound.NewClient(outbound.Options{
			Purpose: outbound.Identifiers, AllowPrivate: cfg.AllowPrivateNetworks, Deny: cfg.AWSEndpoints,
		})),
	})
}
