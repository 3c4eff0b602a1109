package main

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	lambdaevents "github.com/aws/aws-lambda-go/events"

	"github.com/federation-gateway/gateway/infra/localtest"
	"github.com/federation-gateway/gateway/shared/dynamo"
	"github.com/federation-gateway/gateway/shared/events"
	"github.com/federation-gateway/gateway/shared/logs"
	"github.com/federation-gateway/gateway/shared/metrics"
)

type noPoster struct{}

func (noPoster) Post(context.Context, string, []byte) error { return events.ErrGone }
func (noPoster) Close(context.Context, string) error        { return nil }

func TestHandler(t *testing.T) {
	ctx := context.Background()
	store := dynamo.NewStore(localtest.DynamoDB(t), localtest.Table(t))
	log := logs.New(&bytes.Buffer{}, "debug")
	evlog := store.EventLog(time.Hour)
	var calls int64
	var emitted bytes.Buffer
	h := Handler(events.NewProcessor(evlog, store, noPoster{}, log, events.ProcessorOptions{}), func() int64 { calls++; return calls }, log,
		metrics.New(&emitted, "test", "events"))
	var ev lambdaevents.DynamoDBEvent
	localtest.Event(t, "events.json", &ev)

	for range 2 { // the stream retries the batch: nothing is logged twice
		resp, err := h(ctx, ev)
		if err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("%+v, %v", resp, err)
		}
	}
	head, _ := evlog.Head(ctx)
	got, err := evlog.Read(ctx, 0, head.N, 10)
	if err != nil || len(got) != 2 || got[0].Type != events.RegistryUnhealthy || got[1].Type != events.RegistryHealthy || got[0].Subject != "beta" {
		t.Fatalf("log %+v, %v", got, err)
	}
	// Each batch is counted: the first appended both events, its retry none; the lag runs
	// from the sample's changes (written long ago) to now.
	var lines []metrics.Line
	for _, raw := range bytes.Split(emitted.Bytes(), []byte("\n")) {
		if l, ok := metrics.Parse(raw); ok {
			lines = append(lines, l)
		}
	}
	if len(lines) != 2 || lines[0].Values[metrics.EventsAppended] != 2 || lines[1].Values[metrics.EventsAppended] != 0 ||
		lines[0].Values[metrics.EventFanoutLag] < float64(time.Since(time.Unix(1795636261, 0)).Milliseconds()-1000) {
		t.Errorf("metrics: %s", emitted.String())
	}

	// A record that is not one of the table's is skipped, and the rest handled.
	bad := ev
	bad.Records = append([]lambdaevents.DynamoDBEventRecord{{EventID: "junk", Change: lambdaevents.DynamoDBStreamRecord{SequenceNumber: "1"}}}, ev.Records...)
	if resp, err := h(ctx, bad); err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("%+v, %v", resp, err)
	}

	// A failure reports the first record not handled, for the stream to give again.
	failing := Handler(failAfter{}, func() int64 { return 0 }, log, nil)
	resp, err := failing(ctx, ev)
	if err != nil || len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != ev.Records[1].Change.SequenceNumber {
		t.Errorf("%+v, %v; want the second record reported", resp, err)
	}
}

// failAfter handles the first change of a batch only.
type failAfter struct{}

func (failAfter) Process(context.Context, []events.Change) (int, error) {
	return 1, errors.New("the table is down")
}
func (failAfter) Counts() (int64, int64) { return 0, 0 }
func (failAfter) Gone() int64            { return 0 }
