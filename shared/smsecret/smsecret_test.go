package smsecret_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/federation-gateway/gateway/infra/localtest"
	"github.com/federation-gateway/gateway/shared/smsecret"
)

// The reader is exercised against the real Secrets Manager API of the local endpoint.
func TestSecret(t *testing.T) {
	ctx := context.Background()
	name := localtest.Secret(t, "s3cret")
	r := smsecret.New(secretsmanager.NewFromConfig(localtest.AWSConfig(t)))
	if v, err := r.Secret(ctx, name); err != nil || v != "s3cret" {
		t.Errorf("Secret = %q, %v", v, err)
	}
	for id, want := range map[string]string{"": "no secret is named", name + "-missing": "read secret " + name + "-missing"} {
		if _, err := r.Secret(ctx, id); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Secret(%q) error %v, want one saying %q", id, err, want)
		}
	}
}
