// Command status serves GET /api/v1/status and GET /api/v1/openapi.json behind the HTTP
// API.
package main

import (
	"context"
	"fmt"

	"github.com/federation-gateway/gateway/docs"
	"github.com/federation-gateway/gateway/shared/apigw"
	"github.com/federation-gateway/gateway/shared/bridge"
	"github.com/federation-gateway/gateway/shared/directory"
	"github.com/federation-gateway/gateway/shared/startup"
	"github.com/federation-gateway/gateway/shared/wiring"
)

func main() { startup.Start(build) }

// build wires the function; startup.Start runs it while the runtime polls for the first
// invocation.
func build(ctx context.Context) (apigw.LambdaHandler, error) {
	fn, err := wiring.Load(ctx)
	if err != nil {
		return nil, err
	}
	cfg, log, store := fn.Config, fn.Log, fn.Store
	var reporter Reporter = directory.NewReporter(store, cfg.Registries, cfg.Version, cfg.Stage)
	if len(cfg.Bridge.Lanes) > 0 {
		opts, err := cfg.BridgeOptions(nil)
		if err != nil {
			return nil, fmt.Errorf("bridge configuration: %w", err)
		}
		b, err := bridge.New(store, nil, nil, opts)
		if err != nil {
			return nil, fmt.Errorf("bridge: %w", err)
		}
		reporter = WithBridge{Reporter: reporter, Bridge: b}
	}
	return apigw.Lambda(Handler(reporter, docs.OpenAPI(), log), log), nil
}
