// Command bridge serves the token bridge behind the HTTP API: POST /api/v1/bridge accepts
// a transfer backed by a deposit and starts its saga, GET /api/v1/bridge/{id} follows it.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/federation-gateway/gateway/shared/apigw"
	"github.com/federation-gateway/gateway/shared/bridge"
	"github.com/federation-gateway/gateway/shared/config"
	"github.com/federation-gateway/gateway/shared/dynamo"
	"github.com/federation-gateway/gateway/shared/identity"
	"github.com/federation-gateway/gateway/shared/identity/identityhttp"
	"github.com/federation-gateway/gateway/shared/logs"
	"github.com/federation-gateway/gateway/shared/outbound"
	"github.com/federation-gateway/gateway/shared/stepfunctions"
)

func main() {
	ctx := context.Background()
	cfg, awsCfg := config.MustLoad(ctx)
	log := logs.New(os.Stdout, cfg.LogLevel)
	fail := func(what string, err error) {
		fmt.Fprintf(os.Stderr, "%s: %v\n", what, err)
		os.Exit(1)
	}
	store := dynamo.NewStore(dynamo.NewClient(awsCfg, cfg.LocalEndpoint), cfg.Table)
	// Identifiers (did:web documents) are caller-supplied: the outbound guard's strictest
	// policy (docs/architecture.md, "Security model").
	identifiers := outbound.NewClient(outbound.Options{Purpose: outbound.Identifiers, Deny: cfg.AWSEndpoints})
	inline, err := identity.InlineBundles(cfg.TrustDomains)
	if err != nil {
		fail("trust bundles", err)
	}
	verifier, err := identity.NewVerifier(identity.Options{
		Audience: cfg.Gateway.ID,
		Bundles:  identity.FirstBundle{identity.NewStoredBundles(store, cfg.TrustDomains, 5*time.Minute, time.Now), inline},
		Replay:   store.ReplayGuard(),
		DIDs:     identityhttp.NewDIDResolver(identifiers),
	})
	if err != nil {
		fail("verifier", err)
	}
	opts, err := cfg.BridgeOptions(nil) // accepting a transfer moves no money
	if err != nil {
		fail("bridge configuration", err)
	}
	opts.Log = log
	machine := stepfunctions.New(sfn.NewFromConfig(awsCfg), os.Getenv("STATE_MACHINE_ARN"))
	b, err := bridge.New(store, verifier, machine, opts)
	if err != nil {
		fail("bridge", err)
	}
	lambda.Start(apigw.Lambda(Handler(b, log), log))
}
