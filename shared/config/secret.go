package config

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// SecretReader reads the string value of a secret by name or ARN; smsecret.Reader is one.
type SecretReader interface {
	Secret(ctx context.Context, id string) (string, error)
}

// LoadWithSecrets is Load that also reads, at the same time as the configuration document,
// the Secrets Manager secrets named by the given environment variables, and returns their
// values by variable. Reading them side by side shortens a cold start by a round trip
// each. Every problem is reported at once.
func LoadWithSecrets(ctx context.Context, getenv func(string) string, params ParameterReader, sm SecretReader, vars ...string) (Config, map[string]string, error) {
	values := make([]string, len(vars))
	errs := make([]error, len(vars))
	var wg sync.WaitGroup
	for i, v := range vars {
		wg.Go(func() { values[i], errs[i] = sm.Secret(ctx, getenv(v)) })
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
