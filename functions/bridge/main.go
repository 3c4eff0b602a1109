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
	domains := make([]identity.TrustDomain, len(cfg.TrustDomains))
	for i, td := range cfg.TrustDomains {
		domains[i] = identity.TrustDomain(td)
	}
	inline, err := identity.InlineBundles(domains)
	if err != nil {
		fail("trust bundles", err)
	}
	verifier, err := identity.NewVerifier(identity.Options{
		Audience:   cfg.Gateway.ID,
		Bundles:    identity.FirstBundle{identity.NewStoredBundles(store, domains, 5*time.Minute, time.Now), inline},
		Replay:     store.ReplayGuard(),
		HTTPClient: outbound.NewClient(outbound.Options{AllowPrivate: cfg.AllowPrivateNetworks, Timeout: 5 * time.Second}),
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
