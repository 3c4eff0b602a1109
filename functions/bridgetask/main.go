// Command bridgetask runs the steps of the token bridge saga for the state machine
// statemachines/bridge.asl.json: each Task state invokes it with the step to run.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/federation-gateway/gateway/shared/bridge"
	"github.com/federation-gateway/gateway/shared/config"
	"github.com/federation-gateway/gateway/shared/dynamo"
	"github.com/federation-gateway/gateway/shared/logs"
	"github.com/federation-gateway/gateway/shared/metrics"
	"github.com/federation-gateway/gateway/shared/outbound"
	"github.com/federation-gateway/gateway/shared/teg"
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
	// The token services are configured, as registries are: the registries' policy.
	httpClient := outbound.NewClient(outbound.Options{Purpose: outbound.Registries, AllowPrivate: cfg.AllowPrivateNetworks, Deny: cfg.AWSEndpoints, Timeout: teg.DefaultTimeout})
	tokens, err := teg.Clients(ctx, cfg, secretsmanager.NewFromConfig(awsCfg), httpClient)
	if err != nil {
		fail("token services", err)
	}
	opts, err := cfg.BridgeOptions(tokens)
	if err != nil {
		fail("bridge configuration", err)
	}
	opts.Log = log
	b, err := bridge.New(store, nil, nil, opts)
	if err != nil {
		fail("bridge", err)
	}
	lambda.Start(Handler(b, metrics.New(os.Stdout, cfg.Stage, "bridgetask")))
}
