// Command verify serves POST /api/v1/verify behind the HTTP API: it verifies SPIFFE SVIDs
// and did:key / did:web signed JWTs, and names the directory's agent of the subject.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/federation-gateway/gateway/shared/apigw"
	"github.com/federation-gateway/gateway/shared/config"
	"github.com/federation-gateway/gateway/shared/dynamo"
	"github.com/federation-gateway/gateway/shared/identity"
	"github.com/federation-gateway/gateway/shared/logs"
	"github.com/federation-gateway/gateway/shared/outbound"
)

func main() {
	cfg, awsCfg := config.MustLoad(context.Background())
	log := logs.New(os.Stdout, cfg.LogLevel)
	store := dynamo.NewStore(dynamo.NewClient(awsCfg, cfg.LocalEndpoint), cfg.Table)

	domains := make([]identity.TrustDomain, len(cfg.TrustDomains))
	for i, td := range cfg.TrustDomains {
		domains[i] = identity.TrustDomain(td)
	}
	inline, err := identity.InlineBundles(domains)
	if err != nil {
		fmt.Fprintln(os.Stderr, "invalid configuration:", err)
		os.Exit(1)
	}
	v, err := identity.NewVerifier(identity.Options{
		Audience: cfg.Gateway.ID,
		// Bundles refreshed from the endpoints first: they follow key rotation.
		Bundles:    identity.FirstBundle{identity.NewStoredBundles(store, domains, 0, nil), inline},
		Replay:     store.ReplayGuard(),
		HTTPClient: outbound.NewClient(outbound.Options{AllowPrivate: cfg.AllowPrivateNetworks}),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	lambda.Start(apigw.Lambda(Handler(v, store, log), log))
}
