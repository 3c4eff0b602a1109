// Package wiring builds what the functions' wiring starts from: the SDK configuration of
// the Lambda environment, the gateway's configuration document from SSM, the logger and
// the table. Each function's build (functions/*/main.go) adds what is its own.
//
// It links the SSM client and the DynamoDB client only: a function that reads secrets
// makes its own Secrets Manager reader (smsecret), so that a function without secrets
// neither links nor initialises that client (docs/architecture.md, "Cold start").
package wiring

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/federation-gateway/gateway/shared/config"
	"github.com/federation-gateway/gateway/shared/dynamo"
	"github.com/federation-gateway/gateway/shared/logs"
	"github.com/federation-gateway/gateway/shared/ssmparam"
)

// Base is the start of a function's wiring.
type Base struct {
	AWS    aws.Config
	Config config.Config
	Log    *slog.Logger
	Store  *dynamo.Store
}

// Load reads the function's environment and its configuration document (SSM, or the file
// CONFIG_FILE names) and makes the logger and the table's store. Its errors list every
// problem of the environment or the document (config.AWS, config.Load).
func Load(ctx context.Context) (Base, error) {
	awsCfg, err := config.AWS(os.Getenv)
	if err != nil {
		return Base{}, err
	}
	cfg, err := config.Load(ctx, os.Getenv, ssmparam.New(ssm.NewFromConfig(awsCfg)))
	if err != nil {
		return Base{}, err
	}
	return Base{
		AWS:    awsCfg,
		Config: cfg,
		Log:    logs.New(os.Stdout, cfg.LogLevel),
		Store:  dynamo.NewStore(dynamo.NewClient(awsCfg, cfg.LocalEndpoint), cfg.Table),
	}, nil
}
