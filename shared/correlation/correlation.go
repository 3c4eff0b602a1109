// Package correlation gives every request the gateway serves one correlation ID, so that
// one message can be followed from the caller, through every log line of the function
// that served it, to the agent it was delivered to (docs/architecture.md, "Operating
// it").
//
// The ID is the trace ID of the caller's W3C traceparent header when the caller sent a
// valid one (so the gateway joins the caller's trace), else the API Gateway request ID
// (which API Gateway answers in its apigw-requestid header). What the gateway forwards
// carries a traceparent of the same trace: the caller's trace ID, else the Lambda
// invocation's X-Ray trace ID in W3C form, else a random one.
package correlation

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
)

// Header is the W3C Trace Context request header.
const Header = "traceparent"

// ResponseHeader is the response header that tells the caller its request's
// correlation ID.
const ResponseHeader = "X-Correlation-ID"

// MetaKey is the A2A message metadata key, and the Step Functions execution input field,
// that carries the correlation ID to what the gateway calls.
const MetaKey = "federation.correlation_id"

// ID is the correlation of one request.
type ID struct {
	// Value is the correlation ID: the caller's trace ID, or the API Gateway request ID.
	Value string
	// TraceID is the W3C trace-id (32 lower-case hex digits) of what the gateway
	// forwards; Flags its trace-flags (2 hex digits).
	TraceID, Flags string
}

// New returns the correlation of a request: its traceparent header (may be empty or
// invalid, then ignored), the API Gateway request ID, and the Lambda invocation's X-Ray
// trace header ("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=...;Sampled=1", may be
// empty). With neither a valid traceparent nor a request ID, the ID is the trace ID.
func New(traceparent, requestID, xray string) ID {
	if traceID, flags, ok := Parse(traceparent); ok {
		return ID{Value: traceID, TraceID: traceID, Flags: flags}
	}
	id := ID{Value: requestID, TraceID: fromXRay(xray), Flags: "01"}
	if id.TraceID == "" {
		id.TraceID = randomHex(16)
	}
	if id.Value == "" {
		id.Value = id.TraceID
	}
	return id
}

// Traceparent returns a traceparent header for a call the gateway makes in this trace,
// with a fresh parent-id (the gateway's span).
func (id ID) Traceparent() string {
	if id.TraceID == "" {
		return ""
	}
	return "00-" + id.TraceID + "-" + randomHex(8) + "-" + id.Flags
}

// Parse reads a W3C traceparent (version-traceid-parentid-flags) and returns its trace ID
// and flags. It accepts version 00 exactly and, as the specification asks, a later
// version whose first four fields have the same shape; never version ff, an all-zero
// trace or parent ID, or upper-case hex.
func Parse(h string) (traceID, flags string, ok bool) {
	h = strings.TrimSpace(h)
	if len(h) < 55 {
		return "", "", false
	}
	version := h[:2]
	if !isHex(version) || version == "ff" || (version == "00" && len(h) != 55) || (len(h) > 55 && h[55] != '-') {
		return "", "", false
	}
	if h[2] != '-' || h[35] != '-' || h[52] != '-' {
		return "", "", false
	}
	traceID, parent, flags := h[3:35], h[36:52], h[53:55]
	if !isHex(traceID) || !isHex(parent) || !isHex(flags) || allZero(traceID) || allZero(parent) {
		return "", "", false
	}
	return traceID, flags, true
}

// fromXRay returns the W3C form of an X-Ray trace header's root ID (1-<8 hex time>-<24
// hex>), or "".
func fromXRay(h string) string {
	for _, field := range strings.Split(h, ";") {
		root, ok := strings.CutPrefix(strings.TrimSpace(field), "Root=")
		if !ok {
			continue
		}
		parts := strings.Split(root, "-")
		if len(parts) == 3 && parts[0] == "1" && len(parts[1]) == 8 && len(parts[2]) == 24 {
			if id := strings.ToLower(parts[1] + parts[2]); isHex(id) && !allZero(id) {
				return id
			}
		}
	}
	return ""
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return s != ""
}

func allZero(s string) bool { return strings.Trim(s, "0") == "" }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	if allZero(hex.EncodeToString(b)) {
		b[n-1] = 1
	}
	return hex.EncodeToString(b)
}

type key struct{}

// NewContext returns a context that carries id.
func NewContext(ctx context.Context, id ID) context.Context {
	return context.WithValue(ctx, key{}, id)
}

// FromContext returns the correlation ctx carries.
func FromContext(ctx context.Context) (ID, bool) {
	id, ok := ctx.Value(key{}).(ID)
	return id, ok
}

// Value returns the correlation ID ctx carries, or "".
func Value(ctx context.Context) string {
	id, _ := FromContext(ctx)
	return id.Value
}

// XRayHeader returns the X-Ray trace header aws-lambda-go puts in an invocation's
// context, or "".
func XRayHeader(ctx context.Context) string {
	h, _ := ctx.Value("x-amzn-trace-id").(string) // the key aws-lambda-go uses
	return h
}
