// Command route serves cross-registry routing behind the HTTP API: POST /api/v1/route,
// POST /api/v1/broadcast, and the gateway as an A2A agent (its card, its keys, /a2a).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/federation-gateway/gateway/shared/apigw"
	"github.com/federation-gateway/gateway/shared/config"
	"github.com/federation-gateway/gateway/shared/delivery"
	"github.com/federation-gateway/gateway/shared/directory"
	"github.com/federation-gateway/gateway/shared/dynamo"
	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/identity"
	"github.com/federation-gateway/gateway/shared/identity/identityhttp"
	"github.com/federation-gateway/gateway/shared/logs"
	"github.com/federation-gateway/gateway/shared/metrics"
	"github.com/federation-gateway/gateway/shared/outbound"
	"github.com/federation-gateway/gateway/shared/registry"
	"github.com/federation-gateway/gateway/shared/routing"
	"github.com/federation-gateway/gateway/shared/smsecret"
	"github.com/federation-gateway/gateway/shared/ssmparam"
	"github.com/federation-gateway/gateway/shared/startup"
)

func main() { startup.Start(build) }

// build wires the function; startup.Start runs it while the runtime polls for the first
// request.
func build(ctx context.Context) (apigw.LambdaHandler, error) {
	awsCfg, err := config.AWS(os.Getenv)
	if err != nil {
		return nil, err
	}
	// One Secrets Manager client: the gateway's keys now, the registries' credentials on
	// first use.
	sm := smsecret.New(secretsmanager.NewFromConfig(awsCfg))
	// The signing key is derived as soon as its secret arrives, while the configuration
	// document is still on its way, and what its derivation can do without the key is done
	// while both are: the process's first Ed25519 operation builds the curve's tables
	// (about 1.3 ms of CPU, which came after both reads before).
	go delivery.PrepareSigning()
	signer := make(chan signerResult, 1)
	go func() { signer <- deriveSigner(ctx, sm) }()
	cfg, secrets, err := config.LoadWithSecrets(ctx, os.Getenv, ssmparam.New(ssm.NewFromConfig(awsCfg)), sm, "CURSOR_KEY_SECRET")
	key := <-signer
	if err := errors.Join(err, key.err); err != nil {
		return nil, err
	}
	log := logs.New(os.Stdout, cfg.LogLevel)
	cursorKey := secrets["CURSOR_KEY_SECRET"]

	store := dynamo.NewStore(dynamo.NewClient(awsCfg, cfg.LocalEndpoint), cfg.Table)
	// One client per outbound purpose (the registries get theirs from NewClients, one more
	// for a registry with a client certificate): each has its own policy (docs/architecture.md,
	// "Security model").
	registries := outbound.Options{Purpose: outbound.Registries, AllowPrivate: cfg.AllowPrivateNetworks, Deny: cfg.AWSEndpoints}
	agents := outbound.NewClient(outbound.Options{Purpose: outbound.Agents, AllowPrivate: cfg.AllowPrivateNetworks, Deny: cfg.AWSEndpoints, Timeout: routing.DeliveryBudget})
	verifier, err := identityhttp.NewGatewayVerifier(cfg.Gateway.ID, cfg.TrustDomains, store, 5*time.Minute, store.ReplayGuard(), cfg.AWSEndpoints)
	if err != nil {
		return nil, fmt.Errorf("verifier: %w", err)
	}
	// The registries' clients (and their credentials) serve only the rare lookup of a
	// target the directory lacks: they are made on first use, not on every cold start.
	lookup := sync.OnceValues(func() (func(context.Context, string) (federation.Agent, error), error) {
		clients, err := registry.NewClients(ctx, cfg.Registries, registries, registry.Options{}, sm.Secret)
		if err != nil {
			return nil, err
		}
		order := make([]string, len(cfg.Registries))
		for i, r := range cfg.Registries {
			order[i] = r.ID
		}
		return routing.RegistryLookup(clients, order, store, log), nil
	})
	router, err := routing.New(verifier, store, delivery.ForRouting{D: delivery.New(agents, key.signer, cfg.Gateway.ID)}, routing.Options{
		Allow: cfg.Policy.Allow, AgentRate: cfg.Policy.AgentRate, GlobalRate: cfg.Policy.GlobalRate, Fee: cfg.Policy.RoutingFee,
		Caveat:  identity.Caveat,
		Metrics: metrics.New(os.Stdout, cfg.Stage, "route"),
		Lookup: func(ctx context.Context, did string) (federation.Agent, error) {
			find, err := lookup()
			if err != nil {
				return federation.Agent{}, fmt.Errorf("registry clients: %w", err)
			}
			return find(ctx, did)
		},
	}, log)
	if err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	discoverer, err := directory.NewDiscoverer(store, cfg.Registries, []byte(cursorKey))
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}

	card := delivery.GatewayCard(cfg.Gateway.URL, cfg.Gateway.ID)
	cardJSON, err := json.Marshal(card)
	if err != nil {
		return nil, fmt.Errorf("agent card: %w", err)
	}
	gw := Gateway{
		A2A:  delivery.NewA2AHandler(A2ARouter{router}, card, delivery.WithLogger(log)),
		Card: cardJSON,
		JWKS: key.signer.JWKS(),
	}
	return apigw.Lambda(Handler(router, discoverer, gw, log), log), nil
}

type signerResult struct {
	signer *delivery.Signer
	err    error
}

// deriveSigner reads the gateway's key secret (GATEWAY_KEY_SECRET) and derives its
// signing key.
func deriveSigner(ctx context.Context, sm config.SecretReader) signerResult {
	seed, err := sm.Secret(ctx, os.Getenv("GATEWAY_KEY_SECRET"))
	if err != nil {
		return signerResult{err: fmt.Errorf("GATEWAY_KEY_SECRET: %w", err)}
	}
	s, err := delivery.NewSignerFromSeed(seed)
	if err != nil {
		return signerResult{err: fmt.Errorf("gateway key: %w", err)}
	}
	return signerResult{signer: s}
}

// A2ARouter routes what arrives at /a2a with the credential of its Authorization header.
type A2ARouter struct{ R *routing.Router }

// Route implements delivery.Router.
func (a A2ARouter) Route(ctx context.Context, req federation.RouteRequest, authorization string) (federation.RouteResult, error) {
	cred, err := federation.ParseAuthorization(authorization)
	if err != nil {
		return federation.RouteResult{}, err
	}
	return a.R.Route(ctx, req, cred)
}
