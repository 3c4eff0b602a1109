package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/federation-gateway/gateway/shared/bridge"
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
// drift as a CloudWatch Embedded Metric Format line (metric ReconciliationDrift, namespace
// FederationGateway, the absolute drift) on emf, and sweeps stuck transfers.
func Handler(r Reconciler, stage string, emf io.Writer) func(context.Context, json.RawMessage) (Result, error) {
	return func(ctx context.Context, _ json.RawMessage) (Result, error) {
		recs, err := r.Reconcile(ctx)
		res := Result{Registries: []RegistryDrift{}}
		for _, rec := range recs {
			res.Registries = append(res.Registries, RegistryDrift{Registry: rec.Registry, Balance: rec.Balance.String(), Books: rec.Books.String(),
				Unclaimed: rec.Unclaimed.String(), Drift: rec.Drift.String(), Error: rec.Error})
			if rec.Error == "" {
				writeEMF(emf, stage, rec)
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

// writeEMF writes one Embedded Metric Format line: CloudWatch turns it into the metric the
// template's BridgeDriftAlarm watches. The value is the absolute drift as a float: a
// metric, never money (the exact drift is in the line and in the table).
func writeEMF(w io.Writer, stage string, rec bridge.Reconciliation) {
	abs, _ := rec.Drift.Abs().Float64()
	unclaimed, _ := rec.Unclaimed.Float64()
	line, _ := json.Marshal(map[string]any{
		"_aws": map[string]any{
			"Timestamp": rec.At.UnixMilli(),
			"CloudWatchMetrics": []map[string]any{{
				"Namespace":  "FederationGateway",
				"Dimensions": [][]string{{"Stage"}, {"Stage", "Registry"}},
				"Metrics":    []map[string]string{{"Name": "ReconciliationDrift"}, {"Name": "UnclaimedDeposits"}},
			}},
		},
		"Stage": stage, "Registry": rec.Registry,
		"ReconciliationDrift": abs, "UnclaimedDeposits": unclaimed,
		"drift": rec.Drift.String(), "balance": rec.Balance.String(), "books": rec.Books.String(),
		"unrecorded": rec.Unrecorded.String(), "unclaimed": rec.Unclaimed.String(),
	})
	fmt.Fprintf(w, "%s\n", line)
}
