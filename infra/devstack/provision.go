package devstack

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// Cloud is the local endpoint's AWS APIs, through which the dev stack creates what the
// template declares. It uses the emulator's dummy credentials, never the developer's.
type Cloud struct {
	endpoint string
	dynamodb *dynamodb.Client
	lambda   *lambda.Client
	ssm      *ssm.Client
	secrets  *secretsmanager.Client
	sfn      *sfn.Client
}

// NewCloud returns the Cloud of the local endpoint at url.
func NewCloud(url string) *Cloud {
	cfg := LocalAWSConfig(url)
	return &Cloud{
		endpoint: url,
		dynamodb: dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.DisableValidateResponseChecksum = true }),
		lambda:   lambda.NewFromConfig(cfg),
		ssm:      ssm.NewFromConfig(cfg),
		secrets:  secretsmanager.NewFromConfig(cfg),
		sfn:      sfn.NewFromConfig(cfg),
	}
}

// LocalAWSConfig is the SDK configuration of the local endpoint at url.
func LocalAWSConfig(url string) aws.Config {
	return aws.Config{
		Region:       localRegion,
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(url),
	}
}

// Lambda returns the Lambda client of the endpoint.
func (c *Cloud) Lambda() *lambda.Client { return c.lambda }

// Provision creates the template's tables and SSM parameters.
func (c *Cloud) Provision(ctx context.Context, t *Template) error {
	for _, tbl := range t.Tables {
		if err := c.CreateTable(ctx, tbl); err != nil {
			return err
		}
	}
	for _, p := range t.Parameters {
		if err := c.putParameter(ctx, p); err != nil {
			return err
		}
	}
	for _, sec := range t.Secrets {
		if err := c.createSecret(ctx, sec); err != nil {
			return err
		}
	}
	for _, q := range t.Queues {
		if err := c.createQueue(ctx, q); err != nil {
			return err
		}
	}
	for _, sm := range t.StateMachines {
		if err := c.createStateMachine(ctx, sm); err != nil {
			return err
		}
	}
	return nil
}

// createStateMachine creates a state machine, replacing one of the same name (a persisted
// emulator, or another stack of this process): kumo has no UpdateStateMachine, and an
// execution in flight keeps the definition it started with. The endpoint rewrites its
// Lambda Tasks so that Retry and Catch work as on AWS (localstack/sfntasks.go).
func (c *Cloud) createStateMachine(ctx context.Context, sm StateMachine) error {
	in := &sfn.CreateStateMachineInput{Name: aws.String(sm.Name), Definition: aws.String(sm.Definition),
		RoleArn: aws.String("arn:aws:iam::" + localAccountID + ":role/" + sm.LogicalID + "Role"), Type: sfntypes.StateMachineType(sm.Type)}
	_, err := c.sfn.CreateStateMachine(ctx, in)
	var exists *sfntypes.StateMachineAlreadyExists
	if errors.As(err, &exists) {
		if _, err = c.sfn.DeleteStateMachine(ctx, &sfn.DeleteStateMachineInput{StateMachineArn: aws.String(sm.ARN)}); err == nil {
			_, err = c.sfn.CreateStateMachine(ctx, in)
		}
	}
	if err != nil {
		return fmt.Errorf("create state machine %s: %w", sm.Name, err)
	}
	return nil
}

// PutSecret stores a secret's value, as an operator does with the credentials of systems
// the template does not create (the registries' token services).
func (c *Cloud) PutSecret(ctx context.Context, name, value string) error {
	_, err := c.secrets.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)})
	var exists *smtypes.ResourceExistsException
	if errors.As(err, &exists) {
		_, err = c.secrets.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String(value)})
	}
	if err != nil {
		return fmt.Errorf("put secret %s: %w", name, err)
	}
	return nil
}

// createSecret creates a secret with a random value, as GenerateSecretString does; one
// that exists already (a persisted emulator) keeps its value.
func (c *Cloud) createSecret(ctx context.Context, s Secret) error {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	value := make([]byte, s.Length)
	if _, err := rand.Read(value); err != nil {
		return fmt.Errorf("create secret %s: %w", s.Name, err)
	}
	for i, b := range value {
		value[i] = alphabet[int(b)%len(alphabet)]
	}
	_, err := c.secrets.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(s.Name), SecretString: aws.String(string(value))})
	var exists *smtypes.ResourceExistsException
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("create secret %s: %w", s.Name, err)
	}
	return nil
}

// CreateTable creates a table as the template declares it, with its TTL. A table that
// exists already (a persisted emulator) is kept as it is.
func (c *Cloud) CreateTable(ctx context.Context, t Table) error {
	in := &dynamodb.CreateTableInput{TableName: aws.String(t.Name), BillingMode: ddbtypes.BillingModePayPerRequest}
	for _, a := range sliceOf(t.Properties["AttributeDefinitions"]) {
		m := mapOf(a)
		in.AttributeDefinitions = append(in.AttributeDefinitions, ddbtypes.AttributeDefinition{
			AttributeName: aws.String(scalar(m["AttributeName"])),
			AttributeType: ddbtypes.ScalarAttributeType(scalar(m["AttributeType"])),
		})
	}
	in.KeySchema = keySchema(t.Properties["KeySchema"])
	for _, g := range sliceOf(t.Properties["GlobalSecondaryIndexes"]) {
		m := mapOf(g)
		proj := mapOf(m["Projection"])
		gsi := ddbtypes.GlobalSecondaryIndex{
			IndexName:  aws.String(scalar(m["IndexName"])),
			KeySchema:  keySchema(m["KeySchema"]),
			Projection: &ddbtypes.Projection{ProjectionType: ddbtypes.ProjectionType(scalar(proj["ProjectionType"]))},
		}
		for _, a := range sliceOf(proj["NonKeyAttributes"]) {
			gsi.Projection.NonKeyAttributes = append(gsi.Projection.NonKeyAttributes, scalar(a))
		}
		in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, gsi)
	}
	if s := mapOf(t.Properties["StreamSpecification"]); s != nil {
		in.StreamSpecification = &ddbtypes.StreamSpecification{
			StreamEnabled:  aws.Bool(true),
			StreamViewType: ddbtypes.StreamViewType(scalar(s["StreamViewType"])),
		}
	}
	_, err := c.dynamodb.CreateTable(ctx, in)
	var inUse *ddbtypes.ResourceInUseException
	if errors.As(err, &inUse) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create table %s: %w", t.Name, err)
	}
	if ttl := mapOf(t.Properties["TimeToLiveSpecification"]); scalar(ttl["Enabled"]) == "true" {
		_, err := c.dynamodb.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
			TableName: aws.String(t.Name),
			TimeToLiveSpecification: &ddbtypes.TimeToLiveSpecification{
				AttributeName: aws.String(scalar(ttl["AttributeName"])),
				Enabled:       aws.Bool(true),
			},
		})
		if err != nil {
			return fmt.Errorf("table %s: enable TTL: %w", t.Name, err)
		}
	}
	return nil
}

func keySchema(v any) []ddbtypes.KeySchemaElement {
	var ks []ddbtypes.KeySchemaElement
	for _, k := range sliceOf(v) {
		m := mapOf(k)
		ks = append(ks, ddbtypes.KeySchemaElement{
			AttributeName: aws.String(scalar(m["AttributeName"])),
			KeyType:       ddbtypes.KeyType(scalar(m["KeyType"])),
		})
	}
	return ks
}

// putParameter writes an SSM parameter, replacing a persisted one.
func (c *Cloud) putParameter(ctx context.Context, p SSMParameter) error {
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
	return nil
}

// Register creates a function in the emulator's Lambda service under its logical ID. Its
// code is not uploaded: a process started with FunctionEnv serves it through the Runtime
// API.
func (c *Cloud) Register(ctx context.Context, fn Function) error {
	_, err := c.lambda.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName:  aws.String(fn.LogicalID),
		Role:          aws.String("arn:aws:iam::" + localAccountID + ":role/" + fn.LogicalID + "Role"),
		Runtime:       lambdatypes.RuntimeProvidedal2023,
		Handler:       aws.String("bootstrap"),
		Architectures: []lambdatypes.Architecture{lambdatypes.ArchitectureArm64},
		Timeout:       aws.Int32(int32(fn.Timeout.Seconds())),
		MemorySize:    aws.Int32(int32(fn.MemoryMB)),
		Environment:   &lambdatypes.Environment{Variables: fn.Env},
		Code:          &lambdatypes.FunctionCode{ZipFile: emptyZip},
	})
	var conflict *lambdatypes.ResourceConflictException
	if errors.As(err, &conflict) {
		_, err = c.lambda.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
			FunctionName: aws.String(fn.LogicalID),
			Timeout:      aws.Int32(int32(fn.Timeout.Seconds())),
			MemorySize:   aws.Int32(int32(fn.MemoryMB)),
			Environment:  &lambdatypes.Environment{Variables: fn.Env},
		})
	}
	if err != nil {
		return fmt.Errorf("create function %s: %w", fn.LogicalID, err)
	}
	return nil
}

// emptyZip is a zip archive with no entries: the Lambda API wants code, the process
// serving the function is started by the supervisor instead.
var emptyZip = []byte{0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
