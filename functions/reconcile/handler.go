package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/federation-gateway/gateway/shared/bridge"
	"github.com/federation-gateway/gateway/shared/metrics"
)

// Reconciler reconciles the books and sweeps stuck transfers; *bridge.Bridge is one.
type Reconciler interface {
	Reconcile(ctx context.Context) ([]bridge.Reconciliation, error)
	Sweep(ctx context.Context, age time.Duration) (started, parked int, err error)
}

// SweepAge is how long a transfer may go unchanged before the sweep looks at its
// execution: longer than any step with its retries takes.
const SweepAge = 15 * time.Minute

// Result is what a run reports.
type Result struct {
	Registries []RegistryDrift `json:"registries"`
	Started    int             `json:"started"` // transfers whose execution never started
	Parked     int             `json:"parked"`  // transfers whose execution ended unfinished
}

// RegistryDrift is one registry's reconciliation.
type RegistryDrift struct {
	Registry  string `json:"registry"`
	Balance   string `json:"balance"`
	Books     string `json:"books"`
	Unclaimed string `json:"unclaimed"`
	Drift     string `json:"drift"`
	Error     string `json:"error,omitempty"`
}

// Handler runs on the template's schedule: it reconciles every registry, publishes each
// drift as metrics (ReconciliationDrift, the absolute drift, and UnclaimedDeposits, by
// Registry: floats for CloudWatch, never money; the exact figures are in the result and
// the table), and sweeps stuck transfers.
func Handler(r Reconciler, m *metrics.Recorder) func(context.Context, json.RawMessage) (Result, error) {
	return func(ctx context.Context, _ json.RawMessage) (Result, error) {
		recs, err := r.Reconcile(ctx)
		res := Result{Registries: []RegistryDrift{}}
		for _, rec := range recs {
			res.Registries = append(res.Registries, RegistryDrift{Registry: rec.Registry, Balance: rec.Balance.String(), Books: rec.Books.String(),
				Unclaimed: rec.Unclaimed.String(), Drift: rec.Drift.String(), Error: rec.Error})
			if rec.Error == "" {
				drift, _ := rec.Drift.Abs().Float64()
				unclaimed, _ := rec.Unclaimed.Float64()
				m.Emit(ctx, []metrics.Dim{{Name: metrics.DimRegistry, Value: rec.Registry}},
					metrics.Gauge(metrics.ReconciliationDrift, drift), metrics.Gauge(metrics.UnclaimedDeposits, unclaimed))
			}
		}
		if err != nil {
			return res, fmt.Errorf("reconcile: %w", err)
		}
		if res.Started, res.Parked, err = r.Sweep(ctx, SweepAge); err != nil {
			return res, fmt.Errorf("sweep: %w", err)
		}
		return res, nil
	}
}
