// Command status serves GET /api/v1/status and GET /api/v1/openapi.json behind the HTTP
// API.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/federation-gateway/gateway/docs"
	"github.com/federation-gateway/gateway/shared/apigw"
	"github.com/federation-gateway/gateway/shared/bridge"
	"github.com/federation-gateway/gateway/shared/config"
	"github.com/federation-gateway/gateway/shared/directory"
	"github.com/federation-gateway/gateway/shared/dynamo"
	"github.com/federation-gateway/gateway/shared/logs"
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
	cfg, err := config.Load(ctx, os.Getenv, ssmparam.New(ssm.NewFromConfig(awsCfg)))
	if err != nil {
		return nil, err
	}
	log := logs.New(os.Stdout, cfg.LogLevel)
	store := dynamo.NewStore(dynamo.NewClient(awsCfg, cfg.LocalEndpoint), cfg.Table)
	var reporter Reporter = directory.NewReporter(store, cfg.Registries, cfg.Version, cfg.Stage)
	if len(cfg.Bridge.Lanes) > 0 {
		opts, err := cfg.BridgeOptions(nil)
		if err != nil {
			return nil, fmt.Errorf("bridge configuration: %w", err)
		}
		b, err := bridge.New(store, nil, nil, opts)
		if err != nil {
			return nil, fmt.Errorf("bridge: %w", err)
		}
		reporter = WithBridge{Reporter: reporter, Bridge: b}
	}
	return apigw.Lambda(Handler(reporter, docs.OpenAPI(), log), log), nil
}
