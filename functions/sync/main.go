// Command sync brings the federated directory up to date with the registries. EventBridge
// invokes it on the template's schedule.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/federation-gateway/gateway/shared/directory"
	"github.com/federation-gateway/gateway/shared/identity"
	"github.com/federation-gateway/gateway/shared/identity/identityhttp"
	"github.com/federation-gateway/gateway/shared/metrics"
	"github.com/federation-gateway/gateway/shared/outbound"
	"github.com/federation-gateway/gateway/shared/registry"
	"github.com/federation-gateway/gateway/shared/smsecret"
	"github.com/federation-gateway/gateway/shared/startup"
	"github.com/federation-gateway/gateway/shared/wiring"
)

func main() { startup.Start(build) }

// build wires the function; startup.Start runs it while the runtime polls for the first
// invocation.
func build(ctx context.Context) (func(context.Context, json.RawMessage) (Report, error), error) {
	fn, err := wiring.Load(ctx)
	if err != nil {
		return nil, err
	}
	awsCfg, cfg, log, store := fn.AWS, fn.Config, fn.Log, fn.Store
	sm := smsecret.New(secretsmanager.NewFromConfig(awsCfg))
	registries := outbound.Options{Purpose: outbound.Registries, AllowPrivate: cfg.AllowPrivateNetworks, Deny: cfg.AWSEndpoints}
	// Bundle endpoints are key material from outside: public https only, in every mode.
	bundles := identityhttp.NewBundleFetcher(outbound.NewClient(outbound.Options{Purpose: outbound.Identifiers, Deny: cfg.AWSEndpoints}))

	clients, err := registry.NewClients(ctx, cfg.Registries, registries, registry.Options{Concurrency: cfg.Sync.Concurrency}, sm.Secret)
	if err != nil {
		return nil, err
	}
	syncer := directory.NewSyncer(store, cfg.Registries, clients, directory.SyncOptions{
		StaleAfter:       cfg.Sync.StaleAfter,
		FullRefreshEvery: time.Duration(cfg.Sync.FullRefreshMinutes) * time.Minute,
		GoneTTL:          time.Duration(cfg.Sync.GoneTTLHours) * time.Hour,
	}, log)
	refresh := func(ctx context.Context) []string {
		results, err := identity.RefreshBundles(ctx, cfg.TrustDomains, bundles, store)
		if err != nil {
			log.WarnContext(ctx, "trust bundle refresh", "error", err.Error())
		}
		var lines []string
		for _, r := range results {
			line := fmt.Sprintf("%s: sequence %d, updated %v", r.TrustDomain, r.Sequence, r.Updated)
			if r.Err != nil {
				line = fmt.Sprintf("%s: %v", r.TrustDomain, r.Err)
			}
			lines = append(lines, line)
		}
		return lines
	}
	return Handler(syncer, refresh, metrics.New(os.Stdout, cfg.Stage, "sync")), nil
}
