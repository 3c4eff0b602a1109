// Command events turns the changes of the table's stream into federation events: it
// appends them to the event log and sends them to the WebSocket subscribers that want
// them, and serves new subscriptions from the log (see package events).
package main

import (
	"context"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	lambdaevents "github.com/aws/aws-lambda-go/events"

	"github.com/federation-gateway/gateway/shared/config"
	"github.com/federation-gateway/gateway/shared/dynamo"
	"github.com/federation-gateway/gateway/shared/events"
	"github.com/federation-gateway/gateway/shared/logs"
	"github.com/federation-gateway/gateway/shared/metrics"
	"github.com/federation-gateway/gateway/shared/startup"
	"github.com/federation-gateway/gateway/shared/wsapi"
)

func main() { startup.Start(build) }

// build wires the function; startup.Start runs it while the runtime polls for the first
// invocation.
func build(ctx context.Context) (func(context.Context, lambdaevents.DynamoDBEvent) (lambdaevents.DynamoDBEventResponse, error), error) {
	awsCfg, err := config.AWS(os.Getenv)
	if err != nil {
		return nil, err
	}
	env, err := config.LoadEnv(os.Getenv, "CONNECTIONS_URL")
	if err != nil {
		return nil, err
	}
	log := logs.New(os.Stdout, env.LogLevel)
	var calls atomic.Int64
	store := dynamo.NewStore(dynamo.Counted(dynamo.NewClient(awsCfg, env.LocalEndpoint), &calls), env.Table)
	retention := config.Hours(os.Getenv("EVENT_RETENTION_HOURS"), events.DefaultRetention)
	proc := events.NewProcessor(store.EventLog(retention), store, wsapi.NewConnections(awsCfg, env.Vars["CONNECTIONS_URL"]), log, events.ProcessorOptions{})
	return Handler(proc, calls.Load, log, metrics.New(os.Stdout, env.Stage, "events")), nil
}

// Processor handles a batch of changes; *events.Processor is one.
type Processor interface {
	Process(ctx context.Context, changes []events.Change) (int, error)
	// Counts returns the events appended and frames posted so far.
	Counts() (appended, posts int64)
	// Gone returns the connections found gone so far.
	Gone() int64
}

// Handler handles a batch of the stream's records. It never fails the invocation: a
// batch it could not finish is reported as a partial batch failure from the first record
// not handled, which the stream gives again; the records before it are done. A record it
// cannot read is logged and skipped: giving it again would not make it readable.
//
// Each batch is logged with what it cost: events appended, frames posted, DynamoDB calls
// (calls returns the calls made so far); and counted: EventsAppended, EventFramesPosted,
// GoneConnections, and EventFanoutLag, from the oldest change of the batch (the stream
// dates changes to the second) to the end of its sending.
func Handler(p Processor, calls func() int64, log *slog.Logger, m *metrics.Recorder) func(context.Context, lambdaevents.DynamoDBEvent) (lambdaevents.DynamoDBEventResponse, error) {
	return func(ctx context.Context, ev lambdaevents.DynamoDBEvent) (lambdaevents.DynamoDBEventResponse, error) {
		appended0, posts0 := p.Counts()
		gone0 := p.Gone()
		calls0 := calls()
		changes := make([]events.Change, len(ev.Records))
		for i, r := range ev.Records {
			c, err := dynamo.DecodeRecord(r)
			if err != nil {
				log.WarnContext(ctx, "skip a stream record", "event_id", r.EventID, "error", err)
				c = events.Change{EventID: r.EventID, Seq: r.Change.SequenceNumber}
			}
			changes[i] = c
		}
		n, err := p.Process(ctx, changes)
		resp := lambdaevents.DynamoDBEventResponse{BatchItemFailures: []lambdaevents.DynamoDBBatchItemFailure{}}
		if n < len(changes) {
			log.ErrorContext(ctx, "batch not finished", "handled", n, "records", len(changes), "error", err)
			resp.BatchItemFailures = append(resp.BatchItemFailures, lambdaevents.DynamoDBBatchItemFailure{ItemIdentifier: ev.Records[n].Change.SequenceNumber})
		}
		appended, posts := p.Counts()
		values := []metrics.Value{metrics.Count(metrics.EventsAppended, int(appended-appended0)),
			metrics.Count(metrics.EventFramesPosted, int(posts-posts0)), metrics.Count(metrics.GoneConnections, int(p.Gone()-gone0))}
		if oldest := oldestChange(ev.Records); !oldest.IsZero() && n > 0 {
			values = append(values, metrics.Millis(metrics.EventFanoutLag, max(0, time.Since(oldest))))
		}
		m.Emit(ctx, nil, values...)
		log.InfoContext(ctx, "batch", "records", len(changes), "handled", n, "events", appended-appended0,
			"posts", posts-posts0, "dynamodb_calls", calls()-calls0)
		return resp, nil
	}
}

// oldestChange returns when the oldest record of a batch was written to the table, or
// the zero time when no record says.
func oldestChange(records []lambdaevents.DynamoDBEventRecord) time.Time {
	var oldest time.Time
	for _, r := range records {
		if t := r.Change.ApproximateCreationDateTime.Time; !t.IsZero() && (oldest.IsZero() || t.Before(oldest)) {
			oldest = t
		}
	}
	return oldest
}
