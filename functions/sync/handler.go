package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/federation-gateway/gateway/shared/directory"
)

// Syncer runs one sync; *directory.Syncer is one.
type Syncer interface {
	Run(ctx context.Context, holder string) (directory.SyncReport, error)
}

// Handler runs a sync for each scheduled event and returns its report. The Lambda request
// ID holds the sync lease, so an overlapping run of the schedule does nothing.
func Handler(s Syncer) func(context.Context, json.RawMessage) (directory.SyncReport, error) {
	return func(ctx context.Context, raw json.RawMessage) (directory.SyncReport, error) {
		var ev events.EventBridgeEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			return directory.SyncReport{}, fmt.Errorf("sync: the event is not an EventBridge event: %w", err)
		}
		holder := "local"
		if lc, ok := lambdacontext.FromContext(ctx); ok {
			holder = lc.AwsRequestID
		}
		return s.Run(ctx, holder)
	}
}
