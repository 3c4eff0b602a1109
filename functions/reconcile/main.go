// Command reconcile runs on a schedule: it compares, per registry, the gateway's balance on
// the token service with the bridge's books, stores and publishes the drift, and restarts
// or parks transfers that are stuck.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/federation-gateway/gateway/shared/bridge"
	"github.com/federation-gateway/gateway/shared/config"
	"github.com/federation-gateway/gateway/shared/dynamo"
	"github.com/federation-gateway/gateway/shared/logs"
	"github.com/federation-gateway/gateway/shared/metrics"
	"github.com/federation-gateway/gateway/shared/outbound"
	"github.com/federation-gateway/gateway/shared/smsecret"
	"github.com/federation-gateway/gateway/shared/ssmparam"
	"github.com/federation-gateway/gateway/shared/startup"
	"github.com/federation-gateway/gateway/shared/stepfunctions"
	"github.com/federation-gateway/gateway/shared/teg"
)

func main() { startup.Start(build) }

// build wires the function; startup.Start runs it while the runtime polls for the first
// invocation.
func build(ctx context.Context) (func(context.Context, json.RawMessage) (Result, error), error) {
	awsCfg, err := config.AWS(os.Getenv)
	if err != nil {
		return nil, err
	}
	cfg, err := config.Load(ctx, os.Getenv, ssmparam.New(ssm.NewFromConfig(awsCfg)))
	if err != nil {
		return nil, err
	}
	log := logs.New(os.Stdout, cfg.LogLevel)
	store := dynamo.NewStore(dynamo.NewClient(awsCfg, cfg.LocalEndpoint), cfg.Table)
	// The token services are configured, as registries are: the registries' policy.
	httpClient := outbound.NewClient(outbound.Options{Purpose: outbound.Registries, AllowPrivate: cfg.AllowPrivateNetworks, Deny: cfg.AWSEndpoints, Timeout: teg.DefaultTimeout})
	tokens, err := teg.Clients(ctx, cfg, smsecret.New(secretsmanager.NewFromConfig(awsCfg)), httpClient)
	if err != nil {
		return nil, fmt.Errorf("token services: %w", err)
	}
	opts, err := cfg.BridgeOptions(tokens)
	if err != nil {
		return nil, fmt.Errorf("bridge configuration: %w", err)
	}
	opts.Log = log
	machine := stepfunctions.New(sfn.NewFromConfig(awsCfg), os.Getenv("STATE_MACHINE_ARN"))
	b, err := bridge.New(store, nil, machine, opts)
	if err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	return Handler(b, metrics.New(os.Stdout, cfg.Stage, "reconcile")), nil
}
