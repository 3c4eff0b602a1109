package correlation_test

import (
	"context"
	"strings"
	"testing"

	"github.com/federation-gateway/gateway/shared/correlation"
)

func TestNew(t *testing.T) {
	const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
	tests := []struct {
		name, traceparent, requestID, xray string
		wantValue, wantTrace, wantFlags    string
	}{
		{"the caller's trace", "00-" + trace + "-00f067aa0ba902b7-01", "req-1", "", trace, trace, "01"},
		{"a later version, longer", "01-" + trace + "-00f067aa0ba902b7-00-what-comes-next", "req-1", "", trace, trace, "00"},
		{"padded", "  00-" + trace + "-00f067aa0ba902b7-01 ", "req-1", "", trace, trace, "01"},
		{"version ff", "ff-" + trace + "-00f067aa0ba902b7-01", "req-1", "", "req-1", "", "01"},
		{"version 00 with more", "00-" + trace + "-00f067aa0ba902b7-01-x", "req-1", "", "req-1", "", "01"},
		{"upper case", "00-" + strings.ToUpper(trace) + "-00f067aa0ba902b7-01", "req-1", "", "req-1", "", "01"},
		{"zero trace", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", "req-1", "", "req-1", "", "01"},
		{"zero parent", "00-" + trace + "-0000000000000000-01", "req-1", "", "req-1", "", "01"},
		{"not hex", "00-" + trace[:31] + "g-00f067aa0ba902b7-01", "req-1", "", "req-1", "", "01"},
		{"garbage", "hello", "req-1", "", "req-1", "", "01"},
		{"X-Ray's trace", "", "req-1", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
			"req-1", "5759e988bd862e3fe1be46a994272793", "01"},
		{"a bad X-Ray header", "", "req-1", "Root=1-xyz;Sampled=1", "req-1", "", "01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := correlation.New(tt.traceparent, tt.requestID, tt.xray)
			if id.Value != tt.wantValue || id.Flags != tt.wantFlags {
				t.Errorf("got %+v, want value %q flags %q", id, tt.wantValue, tt.wantFlags)
			}
			if tt.wantTrace != "" && id.TraceID != tt.wantTrace {
				t.Errorf("trace ID %q, want %q", id.TraceID, tt.wantTrace)
			}
			// What the gateway forwards is always a valid traceparent of the same trace.
			tp := id.Traceparent()
			if got, flags, ok := correlation.Parse(tp); !ok || got != id.TraceID || flags != id.Flags {
				t.Errorf("forwarded %q: not a traceparent of trace %s", tp, id.TraceID)
			}
			if tp == id.Traceparent() {
				t.Errorf("two calls share the span %s", tp)
			}
		})
	}
	// Nothing at all: the trace ID is the correlation ID.
	if id := correlation.New("", "", ""); id.Value == "" || id.Value != id.TraceID {
		t.Errorf("no IDs: %+v", id)
	}
}

func TestContext(t *testing.T) {
	ctx := context.Background()
	if correlation.Value(ctx) != "" {
		t.Error("an empty context has a correlation ID")
	}
	id := correlation.New("", "req-9", "")
	if got := correlation.Value(correlation.NewContext(ctx, id)); got != "req-9" {
		t.Errorf("got %q", got)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	f.Add("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra")
	f.Add("")
	f.Add("00-0-0-0")
	f.Fuzz(func(t *testing.T, h string) {
		traceID, flags, ok := correlation.Parse(h)
		if !ok {
			return
		}
		if len(traceID) != 32 || len(flags) != 2 {
			t.Fatalf("%q: trace %q flags %q", h, traceID, flags)
		}
		// A valid trace ID is forwarded as a valid traceparent.
		tp := correlation.ID{Value: traceID, TraceID: traceID, Flags: flags}.Traceparent()
		if got, _, ok := correlation.Parse(tp); !ok || got != traceID {
			t.Fatalf("%q forwarded as %q", h, tp)
		}
	})
}
