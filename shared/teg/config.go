package teg

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"

	"github.com/federation-gateway/gateway/shared/bridge"
	"github.com/federation-gateway/gateway/shared/config"
	"github.com/federation-gateway/gateway/shared/outbound"
)

// Clients returns config.Config.BridgeOptions's tokens function: the client of each
// registry's token service, with the gateway's Bearer token there read from its Secrets
// Manager secret. The secrets are read side by side, once, when Clients is called.
func Clients(ctx context.Context, cfg config.Config, sm config.SecretReader, httpClient *http.Client) (func(string, config.BridgeRegistry) (bridge.TokenService, error), error) {
	ids := make([]string, 0, len(cfg.Bridge.Registries))
	for id := range cfg.Bridge.Registries {
		ids = append(ids, id)
	}
	tokens := make([]string, len(ids))
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tokens[i], errs[i] = sm.Secret(ctx, cfg.TEGSecret(id))
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("the gateway's token service credentials: %w", err)
	}
	byID := map[string]string{}
	for i, id := range ids {
		byID[id] = tokens[i]
	}
	return func(id string, r config.BridgeRegistry) (bridge.TokenService, error) {
		return New(r.TEGURL, byID[id], httpClient, cfg.Bridge.TEGTimeout()), nil
	}, nil
}

// Bridge returns the token bridge of the functions that move value (the saga's steps,
// operators, reconciliation): its store, the configured lanes and the token service
// clients, whose requests follow the registries' outbound policy (the token services are
// configured by the operator, as registries are). executions may be nil for a function that
// starts no saga.
func Bridge(ctx context.Context, cfg config.Config, store bridge.Store, sm config.SecretReader, executions bridge.Executions, log *slog.Logger) (*bridge.Bridge, error) {
	httpClient := outbound.NewClient(outbound.Options{Purpose: outbound.Registries, AllowPrivate: cfg.AllowPrivateNetworks, Deny: cfg.AWSEndpoints, Timeout: DefaultTimeout})
	tokens, err := Clients(ctx, cfg, sm, httpClient)
	if err != nil {
		return nil, fmt.Errorf("token services: %w", err)
	}
	opts, err := cfg.BridgeOptions(tokens)
	if err != nil {
		return nil, fmt.Errorf("bridge configuration: %w", err)
	}
	opts.Log = log
	b, err := bridge.New(store, nil, executions, opts)
	if err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	return b, nil
}
