// Command discover serves GET /api/v1/discover behind the HTTP API.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/federation-gateway/gateway/shared/apigw"
	"github.com/federation-gateway/gateway/shared/config"
	"github.com/federation-gateway/gateway/shared/directory"
	"github.com/federation-gateway/gateway/shared/dynamo"
	"github.com/federation-gateway/gateway/shared/logs"
	"github.com/federation-gateway/gateway/shared/metrics"
	"github.com/federation-gateway/gateway/shared/smsecret"
	"github.com/federation-gateway/gateway/shared/ssmparam"
	"github.com/federation-gateway/gateway/shared/startup"
)

func main() { startup.Start(build) }

// build wires the function; startup.Start runs it while the runtime polls for the first
// invocation.
func build(ctx context.Context) (apigw.LambdaHandler, error) {
	awsCfg, err := config.AWS(os.Getenv)
	if err != nil {
		return nil, err
	}
	cfg, secrets, err := config.LoadWithSecrets(ctx, os.Getenv, ssmparam.New(ssm.NewFromConfig(awsCfg)), smsecret.New(secretsmanager.NewFromConfig(awsCfg)), "CURSOR_KEY_SECRET")
	if err != nil {
		return nil, err
	}
	log := logs.New(os.Stdout, cfg.LogLevel)
	key := secrets["CURSOR_KEY_SECRET"]
	store := dynamo.NewStore(dynamo.NewClient(awsCfg, cfg.LocalEndpoint), cfg.Table)
	d, err := directory.NewDiscoverer(store, cfg.Registries, []byte(key))
	if err != nil {
		return nil, err
	}
	return apigw.Lambda(Handler(d, log, metrics.New(os.Stdout, cfg.Stage, "discover")), log), nil
}
