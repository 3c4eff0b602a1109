package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
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
	dynamodb *dynamodb.Client
	lambda   *lambda.Client
	ssm      *ssm.Client
}

func newClients(endpoint string) clients {
	cfg := aws.Config{
		Region:       localRegion,
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(endpoint),
	}
	return clients{
		// The emulator sends no CRC32 header (DESIGN §8).
		dynamodb: dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.DisableValidateResponseChecksum = true }),
		lambda:   lambda.NewFromConfig(cfg),
		ssm:      ssm.NewFromConfig(cfg),
	}
}

// provision creates the tables and SSM parameters of the template, which the functions
// read at init and per request. It is the dev stack's provisioning in short (keys, indexes,
// streams; no TTL, which no measurement waits long enough to see).
func (c clients) provision(ctx context.Context, t *devstack.Template) error {
	for _, tbl := range t.Tables {
		in, err := createTableInput(tbl)
		if err != nil {
			return err
		}
		if _, err := c.dynamodb.CreateTable(ctx, in); err != nil {
			return fmt.Errorf("create table %s: %w", tbl.Name, err)
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

// createTableInput reads a table's CloudFormation properties, whose shape is the DynamoDB
// API's, through JSON.
func createTableInput(t devstack.Table) (*dynamodb.CreateTableInput, error) {
	type key struct{ AttributeName, KeyType string }
	var p struct {
		AttributeDefinitions   []struct{ AttributeName, AttributeType string }
		KeySchema              []key
		GlobalSecondaryIndexes []struct {
			IndexName  string
			KeySchema  []key
			Projection struct {
				ProjectionType   string
				NonKeyAttributes []string
			}
		}
		StreamSpecification *struct{ StreamViewType string }
	}
	raw, err := json.Marshal(t.Properties)
	if err == nil {
		err = json.Unmarshal(raw, &p)
	}
	if err != nil {
		return nil, fmt.Errorf("table %s: properties: %w", t.LogicalID, err)
	}
	keys := func(ks []key) []ddbtypes.KeySchemaElement {
		out := make([]ddbtypes.KeySchemaElement, len(ks))
		for i, k := range ks {
			out[i] = ddbtypes.KeySchemaElement{AttributeName: aws.String(k.AttributeName), KeyType: ddbtypes.KeyType(k.KeyType)}
		}
		return out
	}
	in := &dynamodb.CreateTableInput{
		TableName:   aws.String(t.Name),
		BillingMode: ddbtypes.BillingModePayPerRequest,
		KeySchema:   keys(p.KeySchema),
	}
	for _, a := range p.AttributeDefinitions {
		in.AttributeDefinitions = append(in.AttributeDefinitions, ddbtypes.AttributeDefinition{
			AttributeName: aws.String(a.AttributeName), AttributeType: ddbtypes.ScalarAttributeType(a.AttributeType),
		})
	}
	for _, g := range p.GlobalSecondaryIndexes {
		in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, ddbtypes.GlobalSecondaryIndex{
			IndexName: aws.String(g.IndexName),
			KeySchema: keys(g.KeySchema),
			Projection: &ddbtypes.Projection{
				ProjectionType:   ddbtypes.ProjectionType(g.Projection.ProjectionType),
				NonKeyAttributes: g.Projection.NonKeyAttributes,
			},
		})
	}
	if s := p.StreamSpecification; s != nil {
		in.StreamSpecification = &ddbtypes.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: ddbtypes.StreamViewType(s.StreamViewType)}
	}
	return in, nil
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
