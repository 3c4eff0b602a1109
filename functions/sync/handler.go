package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/federation-gateway/gateway/shared/directory"
	"github.com/federation-gateway/gateway/shared/metrics"
)

// Syncer runs one sync; *directory.Syncer is one.
type Syncer interface {
	Run(ctx context.Context, holder string) (directory.SyncReport, error)
}

// BundleRefresher refreshes the SPIFFE trust bundles of the trust domains that have a
// bundle endpoint, and says what it did for each.
type BundleRefresher func(ctx context.Context) []string

// Report is what a run returns: the directory's sync and the trust bundles' refresh.
type Report struct {
	directory.SyncReport
	Bundles []string `json:"bundles,omitempty"`
}

// Handler runs a sync for each scheduled event, then refreshes the trust bundles, and
// returns the report. The Lambda request ID holds the sync lease, so an overlapping run of
// the schedule does nothing. Each registry's part of a run is counted (SyncChanges,
// SyncRequests, SyncDuration, RegistryHealthy, RegistryUnhealthySeconds, by Registry).
func Handler(s Syncer, refresh BundleRefresher, m *metrics.Recorder) func(context.Context, json.RawMessage) (Report, error) {
	return func(ctx context.Context, raw json.RawMessage) (Report, error) {
		var ev events.EventBridgeEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			return Report{}, fmt.Errorf("sync: the event is not an EventBridge event: %w", err)
		}
		holder := "local"
		if lc, ok := lambdacontext.FromContext(ctx); ok {
			holder = lc.AwsRequestID
		}
		rep, err := s.Run(ctx, holder)
		observe(ctx, m, rep, time.Now())
		if err != nil || rep.Skipped != "" || refresh == nil {
			return Report{SyncReport: rep}, err
		}
		return Report{SyncReport: rep, Bundles: refresh(ctx)}, nil
	}
}

// observe records what a run did for each registry it ran for.
func observe(ctx context.Context, m *metrics.Recorder, rep directory.SyncReport, now time.Time) {
	for _, r := range rep.Registries {
		if r.NotRun {
			continue
		}
		healthy, unhealthyFor := 1.0, time.Duration(0)
		if !r.OK {
			healthy = 0
		}
		if r.UnhealthySince != nil {
			unhealthyFor = max(0, now.Sub(*r.UnhealthySince))
		}
		m.Emit(ctx, []metrics.Dim{{Name: metrics.DimRegistry, Value: r.ID}},
			metrics.Count(metrics.SyncChanges, r.Written+r.Gone+r.Staled), metrics.Count(metrics.SyncRequests, r.Requests),
			metrics.Millis(metrics.SyncDuration, r.Took), metrics.Gauge(metrics.RegistryHealthy, healthy),
			metrics.Seconds(metrics.RegistryUnhealthySeconds, unhealthyFor))
	}
}
