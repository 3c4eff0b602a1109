package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/federation-gateway/gateway/infra/devstack"
)

// localRegion is the region of the local endpoint, as the dev stack uses it.
const localRegion = "us-east-1"

// clients are the AWS APIs of the local endpoint, with the emulator's dummy credentials,
// never the ones of the developer's environment.
type clients struct {
	cfg    aws.Config
	lambda *lambda.Client
	ssm    *ssm.Client
}

func newClients(endpoint string) clients {
	cfg := aws.Config{
		Region:       localRegion,
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(endpoint),
	}
	return clients{cfg: cfg, lambda: lambda.NewFromConfig(cfg), ssm: ssm.NewFromConfig(cfg)}
}

// provision creates the tables and SSM parameters of the template, which the functions
// read at init and per request.
func (c clients) provision(ctx context.Context, t *devstack.Template) error {
	for _, tbl := range t.Tables {
		if err := devstack.CreateTable(ctx, c.cfg, tbl); err != nil {
			return err
		}
	}
	for _, p := range t.Parameters {
		typ := ssmtypes.ParameterType(p.Type)
		if typ == "" {
			typ = ssmtypes.ParameterTypeString
		}
		_, err := c.ssm.PutParameter(ctx, &ssm.PutParameterInput{
			Name: aws.String(p.Name), Value: aws.String(p.Value), Type: typ, Overwrite: aws.Bool(true),
		})
		if err != nil {
			return fmt.Errorf("put SSM parameter %s: %w", p.Name, err)
		}
	}
	return nil
}

// register creates a function in the emulator's Lambda service, so that an invoke finds
// it. Its code is not uploaded: the process the bench starts serves it through the Runtime
// API.
func (c clients) register(ctx context.Context, name string, timeoutSeconds int32) error {
	_, err := c.lambda.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName:  aws.String(name),
		Role:          aws.String("arn:aws:iam::000000000000:role/" + name),
		Runtime:       lambdatypes.RuntimeProvidedal2023,
		Handler:       aws.String("bootstrap"),
		Architectures: []lambdatypes.Architecture{lambdatypes.ArchitectureArm64},
		Timeout:       aws.Int32(timeoutSeconds),
		Code:          &lambdatypes.FunctionCode{ZipFile: emptyZip},
	})
	if err != nil {
		return fmt.Errorf("create function %s: %w", name, err)
	}
	return nil
}

// emptyZip is a zip archive with no entries: the Lambda API wants code.
var emptyZip = []byte{0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

// lambdaEnv is the environment Lambda gives a function's process: the Lambda runtime's own
// variables, the template's, and the local endpoint for every AWS client. name is the
// function name the process serves, which the bench makes fresh for every run. It mirrors
// devstack's functionEnv, which is unexported.
func lambdaEnv(name, endpoint string, memoryMB int, vars map[string]string) []string {
	env := []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"TZ=:UTC",
		"AWS_LAMBDA_RUNTIME_API=" + strings.TrimPrefix(endpoint, "http://") + "/_runtime/" + name,
		"AWS_LAMBDA_FUNCTION_NAME=" + name,
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		fmt.Sprintf("AWS_LAMBDA_FUNCTION_MEMORY_SIZE=%d", memoryMB),
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/" + name,
		"_HANDLER=bootstrap",
		"AWS_REGION=" + localRegion,
		"AWS_DEFAULT_REGION=" + localRegion,
		"AWS_ACCESS_KEY_ID=test",
		"AWS_SECRET_ACCESS_KEY=test",
		"AWS_ENDPOINT_URL=" + endpoint,
		"AWS_EC2_METADATA_DISABLED=true",
	}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	return env
}
