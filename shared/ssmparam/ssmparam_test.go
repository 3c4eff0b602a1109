package ssmparam_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/federation-gateway/gateway/infra/localtest"
	"github.com/federation-gateway/gateway/shared/ssmparam"
)

// The reader is exercised against the real SSM API of the local endpoint: a SecureString
// comes back decrypted, a missing parameter is an error.
func TestParameter(t *testing.T) {
	ctx := context.Background()
	client := ssm.NewFromConfig(localtest.AWSConfig(t))
	name := fmt.Sprintf("/federation-gateway/test-%d/config", time.Now().UnixNano())
	if _, err := client.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String(`{"a":1}`), Type: ssmtypes.ParameterTypeSecureString}); err != nil {
		t.Fatal(err)
	}
	r := ssmparam.New(client)
	if v, err := r.Parameter(ctx, name); err != nil || v != `{"a":1}` {
		t.Errorf("Parameter = %q, %v", v, err)
	}
	if _, err := r.Parameter(ctx, name+"-missing"); err == nil {
		t.Error("a missing parameter read without error")
	}
}
