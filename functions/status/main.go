// Command status serves GET /api/v1/status and GET /api/v1/openapi.json behind the HTTP
// API.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/federation-gateway/gateway/docs"
	"github.com/federation-gateway/gateway/shared/apigw"
	"github.com/federation-gateway/gateway/shared/bridge"
	"github.com/federation-gateway/gateway/shared/config"
	"github.com/federation-gateway/gateway/shared/directory"
	"github.com/federation-gateway/gateway/shared/dynamo"
	"github.com/federation-gateway/gateway/shared/logs"
)

func main() {
	cfg, awsCfg := config.MustLoad(context.Background())
	log := logs.New(os.Stdout, cfg.LogLevel)
	store := dynamo.NewStore(dynamo.NewClient(awsCfg, cfg.LocalEndpoint), cfg.Table)
	var reporter Reporter = directory.NewReporter(store, cfg.Registries, cfg.Version, cfg.Stage)
	if len(cfg.Bridge.Lanes) > 0 {
		opts, err := cfg.BridgeOptions(nil)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bridge configuration: %v\n", err)
			os.Exit(1)
		}
		b, err := bridge.New(store, nil, nil, opts)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bridge: %v\n", err)
			os.Exit(1)
		}
		reporter = WithBridge{Reporter: reporter, Bridge: b}
	}
	lambda.Start(apigw.Lambda(Handler(reporter, docs.OpenAPI(), log), log))
}
