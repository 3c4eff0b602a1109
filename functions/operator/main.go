// Command operator runs the token bridge's operator actions. It has no HTTP route: it is
// invoked through the Lambda API, whose IAM permission (lambda:InvokeFunction) is the
// operators' authentication; every action that changes something is appended to the
// audit ledger under its request_id.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/federation-gateway/gateway/shared/bridge"
	"github.com/federation-gateway/gateway/shared/config"
	"github.com/federation-gateway/gateway/shared/dynamo"
	"github.com/federation-gateway/gateway/shared/logs"
	"github.com/federation-gateway/gateway/shared/outbound"
	"github.com/federation-gateway/gateway/shared/stepfunctions"
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
	machine := stepfunctions.New(sfn.NewFromConfig(awsCfg), os.Getenv("STATE_MACHINE_ARN"))
	b, err := bridge.New(store, nil, machine, opts)
	if err != nil {
		fail("bridge", err)
	}
	lambda.Start(Handler(b))
}
