// Command status serves GET /api/v1/status and GET /api/v1/openapi.json behind the HTTP
// API.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/federation-gateway/gateway/docs"
	"github.com/federation-gateway/gateway/shared/apigw"
	"github.com/federation-gateway/gateway/shared/config"
	"github.com/federation-gateway/gateway/shared/directory"
	"github.com/federation-gateway/gateway/shared/dynamo"
	"github.com/federation-gateway/gateway/shared/logs"
)

func main() {
	cfg, awsCfg := config.MustLoad(context.Background())
	log := logs.New(os.Stdout, cfg.LogLevel)
	store := dynamo.NewStore(dynamo.NewClient(awsCfg, cfg.LocalEndpoint), cfg.Table)
	reporter := directory.NewReporter(store, cfg.Registries, cfg.Version, cfg.Stage)
	lambda.Start(apigw.Lambda(Handler(reporter, docs.OpenAPI(), log), log))
}
