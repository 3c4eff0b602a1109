package metrics_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/federation-gateway/gateway/shared/correlation"
	"github.com/federation-gateway/gateway/shared/metrics"
)

func TestEmitWritesEMF(t *testing.T) {
	var out bytes.Buffer
	ctx := correlation.NewContext(context.Background(), correlation.New("", "req-7", ""))
	r := metrics.New(&out, "dev", "route")
	r.Emit(ctx, []metrics.Dim{{metrics.DimOutcome, "delivered"}},
		metrics.Count(metrics.RoutedMessages, 1), metrics.Millis(metrics.RouteLatency, 1500*time.Microsecond))
	r.Emit(ctx, nil, metrics.Count(metrics.BroadcastRecipients, 3))
	r.Emit(ctx, []metrics.Dim{{metrics.DimReason, strings.Repeat("x", 200)}}, metrics.Count(metrics.Verifications, 1))
	r.Emit(ctx, nil) // nothing to say: no line
	var nilRecorder *metrics.Recorder
	nilRecorder.Emit(ctx, nil, metrics.Count(metrics.RoutedMessages, 1))

	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines: %s", len(lines), out.String())
	}
	// The shape CloudWatch reads (docs: "Specification: Embedded metric format").
	var raw struct {
		AWS struct {
			Timestamp         int64
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct{ Name, Unit string }
			}
		} `json:"_aws"`
		Stage, Function, Outcome string
		CorrelationID            string `json:"correlation_id"`
		RoutedMessages           float64
		RouteLatency             float64
	}
	if err := json.Unmarshal([]byte(lines[0]), &raw); err != nil {
		t.Fatal(err)
	}
	d := raw.AWS.CloudWatchMetrics[0]
	if raw.AWS.Timestamp == 0 || d.Namespace != metrics.Namespace || len(d.Dimensions) != 2 ||
		strings.Join(d.Dimensions[0], ",") != "Stage,Function" || strings.Join(d.Dimensions[1], ",") != "Stage,Function,Outcome" ||
		raw.Stage != "dev" || raw.CorrelationID != "req-7" || raw.Function != "route" || raw.Outcome != "delivered" || raw.RoutedMessages != 1 || raw.RouteLatency != 1.5 ||
		d.Metrics[1].Unit != "Milliseconds" {
		t.Errorf("line: %s", lines[0])
	}
	if l, ok := metrics.Parse([]byte(lines[1])); !ok || l.Values[metrics.BroadcastRecipients] != 3 || len(l.Dimensions) != 2 {
		t.Errorf("line without dimensions: %s", lines[1])
	}
	if l, _ := metrics.Parse([]byte(lines[2])); len(l.Dimensions[metrics.DimReason]) != 48 {
		t.Errorf("a long dimension value is not cut: %s", lines[2])
	}
	for _, notEMF := range []string{"", "hello", `{"level":"INFO","msg":"request"}`, `{"_aws":{}}`,
		`{"_aws":{"CloudWatchMetrics":[{"Namespace":"x","Dimensions":[],"Metrics":[{"Name":"M"}]}]},"M":"text"}`} {
		if _, ok := metrics.Parse([]byte(notEMF)); ok {
			t.Errorf("%q read as EMF", notEMF)
		}
	}
}

func TestAggregator(t *testing.T) {
	var out bytes.Buffer
	ctx := context.Background()
	r := metrics.New(&out, "local", "route")
	for i := 1; i <= 100; i++ {
		outcome := "delivered"
		if i%10 == 0 {
			outcome = "delivery_failed"
		}
		r.Emit(ctx, []metrics.Dim{{metrics.DimOutcome, outcome}}, metrics.Count(metrics.RoutedMessages, 1), metrics.Gauge(metrics.RouteLatency, float64(i)))
	}
	a := metrics.NewAggregator()
	for _, line := range strings.Split(out.String(), "\n") {
		a.Observe([]byte(line))
	}
	if a.Observe([]byte(`{"level":"INFO"}`)) {
		t.Error("a log line observed as a metric")
	}
	delivered := a.Find(metrics.RoutedMessages, map[string]string{metrics.DimOutcome: "delivered"})
	if len(delivered) != 1 || delivered[0].Sum != 90 {
		t.Fatalf("delivered: %+v", delivered)
	}
	lat := a.Find(metrics.RouteLatency, map[string]string{metrics.DimOutcome: "delivered"})[0]
	if lat.SampleCount != 90 || lat.Min != 1 || lat.Max != 99 || lat.P50 != 49 || lat.P99 != 99 || lat.Last != 99 {
		t.Errorf("latency: %+v", lat)
	}
	var table bytes.Buffer
	if err := metrics.WriteTable(&table, a.Snapshot()); err != nil || !strings.Contains(table.String(), "RoutedMessages") ||
		!strings.Contains(table.String(), "Outcome=delivery_failed") {
		t.Errorf("table: %s", table.String())
	}
	// A NaN is lost, not written as a line CloudWatch would reject.
	out.Reset()
	r.Emit(ctx, nil, metrics.Gauge(metrics.RouteLatency, math.NaN()))
	if out.Len() != 0 {
		t.Errorf("NaN written: %s", out.String())
	}
}

// Every metric is described in the README, under its name.
func TestEveryMetricIsInTheREADME(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range metrics.Names {
		if !strings.Contains(string(readme), "`"+name+"`") {
			t.Errorf("the README does not describe %s", name)
		}
	}
}

func FuzzParse(f *testing.F) {
	var out bytes.Buffer
	ctx := context.Background()
	metrics.New(&out, "dev", "sync").Emit(ctx, []metrics.Dim{{metrics.DimRegistry, "alpha"}}, metrics.Count(metrics.SyncChanges, 2))
	f.Add(out.Bytes())
	f.Add([]byte(`{"_aws":{"CloudWatchMetrics":[{"Dimensions":[["A"]],"Metrics":[{"Name":"M"}]}]},"A":1,"M":[1,2]}`))
	f.Add([]byte("not json"))
	f.Fuzz(func(t *testing.T, line []byte) {
		a := metrics.NewAggregator()
		a.Observe(line) // never panics
		for _, s := range a.Snapshot() {
			if s.SampleCount != 1 {
				t.Fatalf("one line, %d samples", s.SampleCount)
			}
		}
	})
}
