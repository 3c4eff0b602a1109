package config

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// SecretGetter reads a Secrets Manager secret; *secretsmanager.Client is one.
type SecretGetter interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// Secret returns the string value of the secret with that name or ARN.
func Secret(ctx context.Context, sm SecretGetter, id string) (string, error) {
	if id == "" {
		return "", errors.New("no secret is named (the template sets the variable)")
	}
	out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
	if err != nil {
		return "", fmt.Errorf("read secret %s: %w", id, err)
	}
	if out.SecretString == nil || *out.SecretString == "" {
		return "", fmt.Errorf("secret %s has no string value", id)
	}
	return *out.SecretString, nil
}

// LoadWithSecrets is Load that also reads, at the same time as the configuration document,
// the Secrets Manager secrets named by the given environment variables, and returns their
// values by variable. Reading them side by side shortens a cold start by a round trip
// each. Every problem is reported at once.
func LoadWithSecrets(ctx context.Context, getenv func(string) string, params ParameterGetter, sm SecretGetter, vars ...string) (Config, map[string]string, error) {
	values := make([]string, len(vars))
	errs := make([]error, len(vars))
	var wg sync.WaitGroup
	for i, v := range vars {
		wg.Go(func() { values[i], errs[i] = Secret(ctx, sm, getenv(v)) })
	}
	cfg, err := Load(ctx, getenv, params)
	wg.Wait()
	for i, e := range errs {
		if e != nil {
			err = errors.Join(err, fmt.Errorf("%s: %w", vars[i], e))
		}
	}
	if err != nil {
		return Config{}, nil, err
	}
	secrets := make(map[string]string, len(vars))
	for i, v := range vars {
		secrets[v] = values[i]
	}
	return cfg, secrets, nil
}
