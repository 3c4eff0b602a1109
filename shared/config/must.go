package config

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// MustLoad loads the AWS SDK configuration (normal endpoint resolution, so AWS_ENDPOINT_URL
// points every client at a local endpoint) and then the gateway's configuration. A function
// cannot serve without them, so on failure it prints why to stderr and exits: the Lambda
// service reports that as an init error, and the local stack shows the message.
func MustLoad(ctx context.Context) (Config, aws.Config) {
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "load AWS configuration: %v\n", err)
		os.Exit(1)
	}
	cfg, err := Load(ctx, os.Getenv, ssm.NewFromConfig(awsCfg))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	return cfg, awsCfg
}
