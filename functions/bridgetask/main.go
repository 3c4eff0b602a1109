// Command bridgetask runs the steps of the token bridge saga for the state machine
// statemachines/bridge.asl.json: each Task state invokes it with the step to run.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/federation-gateway/gateway/shared/metrics"
	"github.com/federation-gateway/gateway/shared/smsecret"
	"github.com/federation-gateway/gateway/shared/startup"
	"github.com/federation-gateway/gateway/shared/teg"
	"github.com/federation-gateway/gateway/shared/wiring"
)

func main() { startup.Start(build) }

// build wires the function; startup.Start runs it while the runtime polls for the first
// invocation.
func build(ctx context.Context) (func(context.Context, Input) (Output, error), error) {
	fn, err := wiring.Load(ctx)
	if err != nil {
		return nil, err
	}
	awsCfg, cfg, log, store := fn.AWS, fn.Config, fn.Log, fn.Store
	b, err := teg.Bridge(ctx, cfg, store, smsecret.New(secretsmanager.NewFromConfig(awsCfg)), nil, log)
	if err != nil {
		return nil, err
	}
	return Handler(b, metrics.New(os.Stdout, cfg.Stage, "bridgetask")), nil
}
