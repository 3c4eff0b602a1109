package apigw

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/core"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/federation-gateway/gateway/shared/correlation"
	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/logs"
)

// LambdaHandler is what lambda.Start takes for an HTTP API function.
type LambdaHandler func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

// Lambda turns an http.Handler into an HTTP API (payload 2.0) Lambda handler. Every request
// carries its API Gateway request ID and its correlation ID (package correlation) in its
// context, answers the correlation ID in the X-Correlation-ID header, is logged in one
// line, and a panic becomes a 500 problem instead of a crashed invocation.
func Lambda(h http.Handler, log *slog.Logger) LambdaHandler {
	return httpadapter.NewV2(middleware(h, log)).ProxyWithContext
}

// middleware is what Lambda wraps around h.
func middleware(h http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx := r.Context()
		var requestID string
		if rc, ok := core.GetAPIGatewayV2ContextFromContext(ctx); ok && rc.RequestID != "" {
			requestID = rc.RequestID
			ctx = logs.WithRequestID(ctx, requestID)
		}
		id := correlation.New(r.Header.Get(correlation.Header), requestID, correlation.XRayHeader(ctx))
		ctx = correlation.NewContext(ctx, id)
		r = r.WithContext(ctx)
		w.Header().Set(correlation.ResponseHeader, id.Value)
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			if v := recover(); v != nil {
				log.ErrorContext(ctx, "handler panicked", "panic", v)
				if !sw.wrote {
					WriteProblem(sw, NewProblem(http.StatusInternalServerError, federation.EINTERNAL, "An internal error occurred."))
				}
			}
			log.InfoContext(ctx, "request", "method", r.Method, "path", r.URL.Path, "status", sw.status,
				"duration_ms", time.Since(start).Milliseconds())
		}()
		sw.ServeHTTP(h, r)
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(status int) {
	if !w.wrote {
		w.status, w.wrote = status, true
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) ServeHTTP(h http.Handler, r *http.Request) { h.ServeHTTP(w, r) }

// Mux is an http.ServeMux whose unknown-route and wrong-method answers are problems, like
// every other error of the gateway, instead of ServeMux's plain text.
type Mux struct{ *http.ServeMux }

// NewMux returns an empty Mux.
func NewMux() Mux { return Mux{http.NewServeMux()} }

// ServeHTTP dispatches r to the handler of its pattern, or answers 404 or 405.
func (m Mux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, pattern := m.Handler(r)
	if pattern != "" {
		m.ServeMux.ServeHTTP(w, r) // ServeMux sets the path values ({id}) as it dispatches
		return
	}
	// ServeMux knows whether the path exists under another method: let it answer into a
	// recorder, then say the same as a problem.
	rec := &recorder{header: http.Header{}, code: http.StatusOK}
	h.ServeHTTP(rec, r)
	switch rec.code {
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", rec.header.Get("Allow"))
		WriteProblem(w, NewProblem(rec.code, "method_not_allowed", r.Method+" is not allowed on "+r.URL.Path+"; allowed: "+rec.header.Get("Allow")))
	case http.StatusNotFound:
		WriteProblem(w, NewProblem(rec.code, federation.ENOTFOUND, "no route for "+r.Method+" "+r.URL.Path))
	default: // a redirect to a cleaned path
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.code)
		_, _ = w.Write(rec.body.Bytes())
	}
}

// recorder keeps what ServeMux answers for a request no pattern matches (a few bytes of
// plain text and a header or two), so Mux can say it as a problem: net/http/httptest's
// recorder would do, but it has no place in production code.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
	wrote  bool
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.code, r.wrote = code, true
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.body.Write(b)
}
