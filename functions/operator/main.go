// Command operator runs the token bridge's operator actions. It has no HTTP route: it is
// invoked through the Lambda API, whose IAM permission (lambda:InvokeFunction) is the
// operators' authentication; every action that changes something is appended to the
// audit ledger under its request_id.
package main

import (
	"context"
	"encoding/json"
	"os"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/federation-gateway/gateway/shared/bridge"
	"github.com/federation-gateway/gateway/shared/smsecret"
	"github.com/federation-gateway/gateway/shared/startup"
	"github.com/federation-gateway/gateway/shared/stepfunctions"
	"github.com/federation-gateway/gateway/shared/teg"
	"github.com/federation-gateway/gateway/shared/wiring"
)

func main() { startup.Start(build) }

// build wires the function; startup.Start runs it while the runtime polls for the first
// invocation.
func build(ctx context.Context) (func(context.Context, json.RawMessage) (bridge.OperatorResult, error), error) {
	fn, err := wiring.Load(ctx)
	if err != nil {
		return nil, err
	}
	awsCfg, cfg, log, store := fn.AWS, fn.Config, fn.Log, fn.Store
	machine := stepfunctions.New(sfn.NewFromConfig(awsCfg), os.Getenv("STATE_MACHINE_ARN"))
	b, err := teg.Bridge(ctx, cfg, store, smsecret.New(secretsmanager.NewFromConfig(awsCfg)), machine, log)
	if err != nil {
		return nil, err
	}
	return Handler(b), nil
}
