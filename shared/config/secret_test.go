package config_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/federation-gateway/gateway/infra/localtest"
	"github.com/federation-gateway/gateway/shared/config"
	"github.com/federation-gateway/gateway/shared/smsecret"
)

// LoadWithSecrets reads the secrets beside the document, against the local endpoint's
// Secrets Manager, and reports a missing secret together with the document's problems.
func TestLoadWithSecrets(t *testing.T) {
	ctx := context.Background()
	sm := smsecret.New(secretsmanager.NewFromConfig(localtest.AWSConfig(t)))
	name := localtest.Secret(t, "s3cret")
	vars := map[string]string{"STAGE": "dev", "TABLE_NAME": "t", "CONFIG_FILE": writeFile(t, validDoc), "KEY_SECRET": name}
	cfg, secrets, err := config.LoadWithSecrets(ctx, env(vars), nil, sm, "KEY_SECRET")
	if err != nil {
		t.Fatal(err)
	}
	if secrets["KEY_SECRET"] != "s3cret" || len(cfg.Registries) != 3 {
		t.Errorf("secrets %v, registries %d", secrets, len(cfg.Registries))
	}

	vars["TABLE_NAME"], vars["OTHER_SECRET"] = "", name+"-missing"
	_, _, err = config.LoadWithSecrets(ctx, env(vars), nil, sm, "KEY_SECRET", "OTHER_SECRET", "UNSET_SECRET")
	for _, want := range []string{"TABLE_NAME is not set", "OTHER_SECRET: read secret " + name + "-missing", "UNSET_SECRET: no secret is named"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
}
