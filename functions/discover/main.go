// Command discover serves GET /api/v1/discover behind the HTTP API.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/federation-gateway/gateway/shared/apigw"
	"github.com/federation-gateway/gateway/shared/config"
	"github.com/federation-gateway/gateway/shared/directory"
	"github.com/federation-gateway/gateway/shared/dynamo"
	"github.com/federation-gateway/gateway/shared/logs"
	"github.com/federation-gateway/gateway/shared/metrics"
)

func main() {
	ctx := context.Background()
	cfg, awsCfg, secrets := config.MustLoadWithSecrets(ctx, "CURSOR_KEY_SECRET")
	log := logs.New(os.Stdout, cfg.LogLevel)
	key := secrets["CURSOR_KEY_SECRET"]
	store := dynamo.NewStore(dynamo.NewClient(awsCfg, cfg.LocalEndpoint), cfg.Table)
	d, err := directory.NewDiscoverer(store, cfg.Registries, []byte(key))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	lambda.Start(apigw.Lambda(Handler(d, log, metrics.New(os.Stdout, cfg.Stage, "discover")), log))
}
