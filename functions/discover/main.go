// Command discover serves GET /api/v1/discover behind the HTTP API.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/federation-gateway/gateway/shared/apigw"
	"github.com/federation-gateway/gateway/shared/config"
	"github.com/federation-gateway/gateway/shared/directory"
	"github.com/federation-gateway/gateway/shared/dynamo"
	"github.com/federation-gateway/gateway/shared/logs"
)

func main() {
	ctx := context.Background()
	cfg, awsCfg := config.MustLoad(ctx)
	log := logs.New(os.Stdout, cfg.LogLevel)
	key, err := config.Secret(ctx, secretsmanager.NewFromConfig(awsCfg), os.Getenv("CURSOR_KEY_SECRET"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "cursor key:", err)
		os.Exit(1)
	}
	store := dynamo.NewStore(dynamo.NewClient(awsCfg, cfg.LocalEndpoint), cfg.Table)
	d, err := directory.NewDiscoverer(store, cfg.Registries, []byte(key))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	lambda.Start(apigw.Lambda(Handler(d, log), log))
}
