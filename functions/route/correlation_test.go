package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/federation-gateway/gateway/shared/apigw/openapitest"
	"github.com/federation-gateway/gateway/shared/correlation"
	"github.com/federation-gateway/gateway/shared/metrics"
	"github.com/federation-gateway/gateway/shared/routing"
)

// lockedBuffer is what the function's log lines go to: slog writes each line at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// take returns the lines written since the last take.
func (l *lockedBuffer) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var lines []string
	sc := bufio.NewScanner(&l.b)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	l.b.Reset()
	return lines
}

// One correlation ID per request: the caller's trace ID when it sends a valid traceparent,
// else the API Gateway request ID. It is in the caller's answer (the X-Correlation-ID
// header, and a problem's instance), in every log line the route function writes for the
// request, and in what the target, a real a2a-go agent, received: the message's metadata
// and the HTTP request's traceparent.
func TestCorrelation(t *testing.T) {
	var out lockedBuffer
	raw, fed := wire(t, routing.Options{}, &out)
	h := openapitest.New(t).Lambda(t, raw)
	const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
	tests := []struct {
		name, traceparent, requestID, want string
		unauthenticated                    bool
		outcome                            string
	}{
		{"the caller's trace", "00-" + trace + "-00f067aa0ba902b7-01", "corr-req-1", trace, false, "delivered"},
		{"no traceparent", "", "corr-req-2", "corr-req-2", false, "delivered"},
		{"an invalid traceparent", "00-" + trace + "-0000000000000000-01", "corr-req-3", "corr-req-3", false, "delivered"},
		{"a refused request", "00-" + trace + "-00f067aa0ba902b7-01", "corr-req-4", trace, true, "unauthorized"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := loadEvent(t, "route.json")
			ev.RequestContext.RequestID = tt.requestID
			ev.Body = strings.Replace(ev.Body, "sample-0001", "corr-"+string(rune('a'+i)), 1)
			if !tt.unauthenticated {
				ev.Headers["authorization"] = "Bearer " + token(t, fed, "acme/weather-bot")
			} else {
				ev.Headers["authorization"] = "Bearer not-a-jwt"
			}
			if tt.traceparent != "" {
				ev.Headers["traceparent"] = tt.traceparent
			}
			out.take()
			resp, err := h(context.Background(), ev)
			if err != nil {
				t.Fatal(err)
			}
			if got := responseHeader(resp, correlation.ResponseHeader); got != tt.want {
				t.Errorf("the answer's %s is %q, want %q (headers %v)", correlation.ResponseHeader, got, tt.want, resp.Headers)
			}

			lines := out.take()
			if len(lines) == 0 {
				t.Fatal("the function logged nothing")
			}
			for _, line := range lines {
				var rec map[string]any
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("a log line that is not JSON: %s", line)
				}
				if rec["correlation_id"] != tt.want {
					t.Errorf("a log line without correlation_id %s: %s", tt.want, line)
				}
			}
			// The message's metrics are among those lines: one routed message, by outcome,
			// with its latency (and the delivery's part of it when there was one).
			var routed []metrics.Line
			for _, line := range lines {
				if m, ok := metrics.Parse([]byte(line)); ok && m.Values[metrics.RoutedMessages] == 1 {
					routed = append(routed, m)
				}
			}
			if len(routed) != 1 || routed[0].Dimensions[metrics.DimOutcome] != tt.outcome || routed[0].Values[metrics.RouteLatency] <= 0 {
				t.Fatalf("routed message metrics %+v, want one with outcome %s", routed, tt.outcome)
			}
			m := routed[0].Values
			if _, ok := m[metrics.RouteDeliveryTime]; ok != !tt.unauthenticated {
				t.Errorf("delivery time %v for outcome %s", m, tt.outcome)
			}
			if gw := m[metrics.RouteGatewayTime]; gw <= 0 || gw > m[metrics.RouteLatency] || (!tt.unauthenticated && gw+m[metrics.RouteDeliveryTime] > m[metrics.RouteLatency]+0.01) {
				t.Errorf("gateway time %v of %v", gw, m)
			}

			if tt.unauthenticated {
				var p struct {
					Status   int
					Instance string
				}
				if err := json.Unmarshal([]byte(resp.Body), &p); err != nil || p.Status != 401 || p.Instance != tt.want {
					t.Errorf("a refusal: %d %s, want instance %s", resp.StatusCode, resp.Body, tt.want)
				}
				return
			}
			var res struct {
				Status   string
				Response struct{ Metadata map[string]any }
			}
			if err := json.Unmarshal([]byte(resp.Body), &res); err != nil || res.Status != "delivered" {
				t.Fatalf("route: %d %s", resp.StatusCode, resp.Body)
			}
			got := res.Response.Metadata // what the demo agent says it received
			if got["received.federation.correlation_id"] != tt.want {
				t.Errorf("the target received correlation ID %v, want %s", got["received.federation.correlation_id"], tt.want)
			}
			tp, _ := got["received.traceparent"].(string)
			traceID, _, ok := correlation.Parse(tp)
			if !ok {
				t.Errorf("the target received traceparent %q, not a valid one", tp)
			}
			if tt.traceparent != "" && tt.want == trace && traceID != trace {
				t.Errorf("the target received trace %s, not the caller's %s", traceID, trace)
			}
			if tt.traceparent != "" && tp == tt.traceparent {
				t.Errorf("the gateway forwarded the caller's span %s as its own", tp)
			}
			if h := got["received.traceparent_header"]; h != tp {
				t.Errorf("the HTTP request's traceparent %v differs from the metadata's %s", h, tp)
			}
		})
	}
}

// responseHeader returns a header of a function's answer, whatever its case.
func responseHeader(resp events.APIGatewayV2HTTPResponse, name string) string {
	for k, v := range resp.Headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}
