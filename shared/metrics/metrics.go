// Package metrics writes the gateway's metrics as CloudWatch Embedded Metric Format
// (EMF) lines: JSON log lines that CloudWatch Logs turns into metrics, with no API call
// and no agent. Every function writes them to stdout beside its log lines; the local dev
// stack reads the same lines from the functions' output (GET /_local/metrics).
//
// One namespace (Namespace), and only bounded dimensions: Stage, Function, and where a
// metric needs it Registry (from the configuration), Outcome, Method or Reason (each a
// small fixed set). Never an agent's DID, a message ID or anything else a caller
// chooses: every distinct dimension value is a metric CloudWatch bills for.
//
// AWS publishes EMF client libraries for Node, Python, Java and .NET, none for Go; the
// format is small enough (docs/architecture.md, "Operating it") that one writer is less
// to trust than a third-party one.
package metrics

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/federation-gateway/gateway/shared/correlation"
)

// Namespace is the CloudWatch namespace of every metric of the gateway.
const Namespace = "FederationGateway"

// Dimension names.
const (
	DimStage    = "Stage"
	DimFunction = "Function"
	DimRegistry = "Registry"
	DimOutcome  = "Outcome"
	DimMethod   = "Method"
	DimReason   = "Reason"
)

// The metrics, by name. Every one is described in the README ("Metrics"), which a test
// checks; Names lists them.
const (
	// Route function: one of each per routed message, with its Outcome (delivered,
	// duplicate, delivery_failed, rate_limited, unauthorized, forbidden, invalid,
	// not_found, conflict, too_large, unavailable, internal).
	RoutedMessages    = "RoutedMessages"    // Count
	RouteLatency      = "RouteLatency"      // Milliseconds: the whole route, delivery included
	RouteGatewayTime  = "RouteGatewayTime"  // Milliseconds: the gateway's own time (RouteLatency less the delivery)
	RouteDeliveryTime = "RouteDeliveryTime" // Milliseconds: the target's time to answer, for a message that was delivered or failed in delivery
	// Route function: per broadcast.
	BroadcastRecipients = "BroadcastRecipients" // Count: the agents a broadcast went to (its fan-out)
	BroadcastDeliveries = "BroadcastDeliveries" // Count, by Outcome delivered or failed
	// Verify function: per verification, by Method and Outcome (verified, refused), and
	// by Reason for a refused one.
	Verifications = "Verifications" // Count
	// Sync function: per registry and run, by Registry.
	SyncChanges              = "SyncChanges"              // Count: records written (new, changed, gone, stale)
	SyncRequests             = "SyncRequests"             // Count: requests made to the registry
	SyncDuration             = "SyncDuration"             // Milliseconds
	RegistryHealthy          = "RegistryHealthy"          // None: 1 healthy, 0 not
	RegistryUnhealthySeconds = "RegistryUnhealthySeconds" // Seconds: how long it has been unhealthy (0 when healthy)
	// Discover function: per page of results.
	DiscoveryResults            = "DiscoveryResults"            // Count
	DiscoveryItemsRead          = "DiscoveryItemsRead"          // Count: table items read for the page
	DiscoveryItemsReadPerResult = "DiscoveryItemsReadPerResult" // None: items read over results (items read when there are none)
	// Events function: per batch of the table's stream.
	EventsAppended    = "EventsAppended"    // Count: events appended to the event log
	EventFramesPosted = "EventFramesPosted" // Count: frames posted to WebSocket subscribers
	GoneConnections   = "GoneConnections"   // Count: subscribers whose connection was gone (410)
	EventFanoutLag    = "EventFanoutLag"    // Milliseconds: from the batch's oldest table change to the end of its sending
	// Bridge task function: a transfer that reached an end, by Outcome (completed,
	// refunded, rejected, manual_review).
	BridgeTransfers = "BridgeTransfers" // Count
	// Reconcile function: per registry and run, by Registry.
	ReconciliationDrift = "ReconciliationDrift" // None: the absolute difference between the token service's balance and the books
	UnclaimedDeposits   = "UnclaimedDeposits"   // None: deposits to the gateway that no transfer claimed
)

// Names lists every metric the gateway's functions emit.
var Names = []string{
	RoutedMessages, RouteLatency, RouteGatewayTime, RouteDeliveryTime, BroadcastRecipients, BroadcastDeliveries,
	Verifications,
	SyncChanges, SyncRequests, SyncDuration, RegistryHealthy, RegistryUnhealthySeconds,
	DiscoveryResults, DiscoveryItemsRead, DiscoveryItemsReadPerResult,
	EventsAppended, EventFramesPosted, GoneConnections, EventFanoutLag,
	BridgeTransfers, ReconciliationDrift, UnclaimedDeposits,
}

// Unit is a CloudWatch unit.
type Unit string

// The units the gateway uses.
const (
	UnitCount        Unit = "Count"
	UnitMilliseconds Unit = "Milliseconds"
	UnitSeconds      Unit = "Seconds"
	UnitNone         Unit = "None"
)

// Dim is one dimension of a line: a name and a bounded value.
type Dim struct{ Name, Value string }

// Value is one metric value.
type Value struct {
	Name  string
	Unit  Unit
	Value float64
}

// Count is a Count value.
func Count(name string, n int) Value { return Value{name, UnitCount, float64(n)} }

// Millis is a duration in milliseconds.
func Millis(name string, d time.Duration) Value {
	return Value{name, UnitMilliseconds, float64(d.Microseconds()) / 1000}
}

// Gauge is a value without a unit.
func Gauge(name string, v float64) Value { return Value{name, UnitNone, v} }

// Seconds is a duration in seconds.
func Seconds(name string, d time.Duration) Value { return Value{name, UnitSeconds, d.Seconds()} }

// maxDimValue bounds a dimension value: the values are short fixed words, and a longer
// one is cut rather than becoming a metric of its own.
const maxDimValue = 48

// Recorder writes a function's EMF lines. A nil *Recorder writes nothing, so that code
// under test or a caller without metrics need not check.
type Recorder struct {
	mu       sync.Mutex
	w        io.Writer
	stage    string
	function string
	now      func() time.Time
}

// New returns a Recorder writing to w (a function's stdout) for the function named
// function ("route", "sync", ...) of stage.
func New(w io.Writer, stage, function string) *Recorder {
	return &Recorder{w: w, stage: stage, function: function, now: time.Now}
}

// Emit writes one line holding values under dims. The values are published in two
// dimension sets: [Stage, Function] and, when dims has any, [Stage, Function, dims...],
// so that alarms and the dashboard can read a function's total without a SEARCH. The
// line carries the correlation ID of ctx, when it has one, as a property (not a
// dimension), so that Logs Insights finds a request's metrics with its log lines.
func (r *Recorder) Emit(ctx context.Context, dims []Dim, values ...Value) {
	if r == nil || len(values) == 0 {
		return
	}
	base := []string{DimStage, DimFunction}
	line := map[string]any{DimStage: r.stage, DimFunction: r.function}
	if id := correlation.Value(ctx); id != "" {
		line["correlation_id"] = id
	}
	sets := [][]string{base}
	if len(dims) > 0 {
		full := append([]string(nil), base...)
		for _, d := range dims {
			v := strings.TrimSpace(d.Value)
			if v == "" {
				v = "none"
			}
			if len(v) > maxDimValue {
				v = v[:maxDimValue]
			}
			full = append(full, d.Name)
			line[d.Name] = v
		}
		sets = append(sets, full)
	}
	defs := make([]map[string]string, 0, len(values))
	for _, v := range values {
		defs = append(defs, map[string]string{"Name": v.Name, "Unit": string(v.Unit)})
		line[v.Name] = v.Value
	}
	line["_aws"] = map[string]any{
		"Timestamp": r.now().UnixMilli(),
		"CloudWatchMetrics": []map[string]any{{
			"Namespace":  Namespace,
			"Dimensions": sets,
			"Metrics":    defs,
		}},
	}
	b, err := json.Marshal(line)
	if err != nil {
		return // only a NaN or an infinity gets here: a metric lost, never a crash
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	_, _ = r.w.Write(append(b, '\n'))
}

// Line is one EMF line read back: its dimensions and values, by metric name.
type Line struct {
	Timestamp  time.Time
	Namespace  string
	Dimensions map[string]string
	Values     map[string]float64
	Units      map[string]Unit
}

// Parse reads an EMF line, as CloudWatch would; ok is false for any other line (a log
// line, a line that is not JSON).
func Parse(line []byte) (Line, bool) {
	var raw map[string]json.RawMessage
	if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &raw) != nil || raw["_aws"] == nil {
		return Line{}, false
	}
	var meta struct {
		Timestamp         int64 `json:"Timestamp"`
		CloudWatchMetrics []struct {
			Namespace  string     `json:"Namespace"`
			Dimensions [][]string `json:"Dimensions"`
			Metrics    []struct {
				Name string `json:"Name"`
				Unit Unit   `json:"Unit"`
			} `json:"Metrics"`
		} `json:"CloudWatchMetrics"`
	}
	if json.Unmarshal(raw["_aws"], &meta) != nil || len(meta.CloudWatchMetrics) == 0 {
		return Line{}, false
	}
	d := meta.CloudWatchMetrics[0]
	out := Line{Timestamp: time.UnixMilli(meta.Timestamp), Namespace: d.Namespace,
		Dimensions: map[string]string{}, Values: map[string]float64{}, Units: map[string]Unit{}}
	for _, set := range d.Dimensions {
		for _, name := range set {
			var v string
			if json.Unmarshal(raw[name], &v) == nil {
				out.Dimensions[name] = v
			}
		}
	}
	for _, m := range d.Metrics {
		var v float64
		if json.Unmarshal(raw[m.Name], &v) != nil {
			return Line{}, false // a metric without a number: CloudWatch rejects the line
		}
		out.Values[m.Name], out.Units[m.Name] = v, m.Unit
	}
	return out, len(out.Values) > 0
}
