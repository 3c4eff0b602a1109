package localtest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// Secret stores value as a new secret in the endpoint's Secrets Manager, named uniquely
// for the test, and returns its name.
func Secret(t testing.TB, value string) string {
	t.Helper()
	name := fmt.Sprintf("federation-gateway/test-%d-%d/key", time.Now().UnixNano(), seq.Add(1))
	client := secretsmanager.NewFromConfig(AWSConfig(t))
	if _, err := client.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)}); err != nil {
		t.Fatalf("create secret %s: %v", name, err)
	}
	return name
}
