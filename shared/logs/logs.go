// Package logs builds the functions' structured logger: JSON lines through log/slog, each
// carrying the correlation and request IDs found in the context it is given, so that
// every line of one request can be found by its correlation ID (package correlation).
package logs

import (
	"context"
	"io"
	"log/slog"
	"strings"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/federation-gateway/gateway/shared/correlation"
)

// New returns a JSON logger writing to w at level ("debug", "info", "warn" or "error";
// anything else means info).
func New(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(contextHandler{slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})})
}

type requestIDKey struct{}

// WithRequestID returns a context whose log lines carry id as request_id: the API Gateway
// request ID, which a caller can quote, where the Lambda request ID is not visible to it.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the request ID stored by WithRequestID, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// contextHandler adds the correlation and request IDs of the record's context to every
// record.
type contextHandler struct{ slog.Handler }

func (h contextHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := correlation.Value(ctx); id != "" {
		r.AddAttrs(slog.String("correlation_id", id))
	}
	if id := RequestID(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		r.AddAttrs(slog.String("lambda_request_id", lc.AwsRequestID))
	}
	return h.Handler.Handle(ctx, r)
}

func (h contextHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return contextHandler{h.Handler.WithAttrs(attrs)}
}

func (h contextHandler) WithGroup(name string) slog.Handler {
	return contextHandler{h.Handler.WithGroup(name)}
}
