package apigw_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/federation-gateway/gateway/shared/apigw"
	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/logs"
)

func decodeProblem(t *testing.T, header http.Header, body []byte) apigw.Problem {
	t.Helper()
	if ct := header.Get("Content-Type"); ct != apigw.ProblemContentType {
		t.Fatalf("Content-Type = %q, want %q", ct, apigw.ProblemContentType)
	}
	var p apigw.Problem
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("problem body %q: %v", body, err)
	}
	return p
}

func TestErrorMapsCodesToStatuses(t *testing.T) {
	tests := []struct {
		err       error
		status    int
		code      string
		detail    string
		notInBody string
	}{
		{federation.Errorf(federation.EINVALID, "limit must be 1-200"), 400, "invalid", "limit must be 1-200", ""},
		{federation.Errorf(federation.EUNAUTHORIZED, "no credential"), 401, "unauthorized", "no credential", ""},
		{federation.Errorf(federation.EFORBIDDEN, "not allowed"), 403, "forbidden", "not allowed", ""},
		{federation.Errorf(federation.ENOTFOUND, "no agent did:x"), 404, "not_found", "no agent did:x", ""},
		{federation.Errorf(federation.ECONFLICT, "changed"), 409, "conflict", "changed", ""},
		{federation.Errorf(federation.ETOOLARGE, "over 1 MiB"), 413, "too_large", "over 1 MiB", ""},
		{federation.Errorf(federation.ERATELIMITED, "slow down"), 429, "rate_limited", "slow down", ""},
		{federation.Errorf(federation.ELOCKED, "lane paused"), 423, "locked", "lane paused", ""},
		{federation.Errorf(federation.EUNACCEPTABLE, "deposit not acceptable"), 422, "unacceptable", "deposit not acceptable", ""},
		{federation.Wrap(federation.EUNAVAILABLE, errors.New("dial tcp 10.0.0.1"), "registry down"), 502, "unavailable", "registry down", "10.0.0.1"},
		// Anything that is not a domain error is internal, and its text never reaches the caller.
		{errors.New("table arn:aws:dynamodb:secret-table missing"), 500, "internal", "An internal error occurred.", "secret-table"},
		{federation.Wrap(federation.EINTERNAL, errors.New("key id abc"), "lookup failed"), 500, "internal", "An internal error occurred.", "abc"},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			var logged bytes.Buffer
			w := httptest.NewRecorder()
			r := httptest.NewRequest("GET", "/x", nil)
			r = r.WithContext(logs.WithRequestID(r.Context(), "req-1"))
			apigw.Error(w, r, logs.New(&logged, "debug"), tt.err)
			if w.Code != tt.status {
				t.Errorf("status = %d, want %d", w.Code, tt.status)
			}
			p := decodeProblem(t, w.Header(), w.Body.Bytes())
			if p.Code != tt.code || p.Status != tt.status || p.Detail != tt.detail || p.Instance != "req-1" {
				t.Errorf("problem = %+v", p)
			}
			if tt.notInBody != "" && strings.Contains(w.Body.String(), tt.notInBody) {
				t.Errorf("body %q shows the internal detail %q", w.Body, tt.notInBody)
			}
			if !strings.Contains(logged.String(), `"request_id":"req-1"`) || !strings.Contains(logged.String(), tt.err.Error()) {
				t.Errorf("log %q lacks the request ID or the cause", logged.String())
			}
		})
	}
}

func TestMuxAnswersProblems(t *testing.T) {
	mux := apigw.NewMux()
	mux.HandleFunc("GET /api/v1/things/{id}", func(w http.ResponseWriter, r *http.Request) {
		apigw.JSON(w, http.StatusOK, map[string]string{"id": r.PathValue("id")})
	})
	tests := []struct {
		method, path string
		status       int
		allow        string
	}{
		{"GET", "/api/v1/things/7", 200, ""},
		{"POST", "/api/v1/things/7", 405, "GET, HEAD"},
		{"GET", "/api/v1/other", 404, ""},
	}
	for _, tt := range tests {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest(tt.method, tt.path, nil))
		if w.Code != tt.status {
			t.Errorf("%s %s: status %d, want %d", tt.method, tt.path, w.Code, tt.status)
		}
		if tt.status == 200 && !strings.Contains(w.Body.String(), `"id":"7"`) {
			t.Errorf("%s %s: the path value did not reach the handler: %s", tt.method, tt.path, w.Body)
		}
		if tt.status >= 400 {
			p := decodeProblem(t, w.Header(), w.Body.Bytes())
			if p.Status != tt.status || !strings.Contains(p.Detail, tt.path) {
				t.Errorf("%s %s: problem %+v", tt.method, tt.path, p)
			}
		}
		if got := w.Header().Get("Allow"); got != tt.allow {
			t.Errorf("%s %s: Allow = %q, want %q", tt.method, tt.path, got, tt.allow)
		}
	}
}

// Lambda must turn a panic into a 500 problem, not a crashed invocation, and log each
// request once with the API Gateway request ID.
func TestLambdaAdapter(t *testing.T) {
	mux := apigw.NewMux()
	mux.HandleFunc("GET /ok", func(w http.ResponseWriter, r *http.Request) {
		apigw.JSON(w, http.StatusOK, map[string]string{"request": logs.RequestID(r.Context())})
	})
	mux.HandleFunc("GET /panic", func(http.ResponseWriter, *http.Request) { panic("boom") })
	var logged bytes.Buffer
	handler := apigw.Lambda(mux, logs.New(&logged, "info"))

	event := func(path string) events.APIGatewayV2HTTPRequest {
		return events.APIGatewayV2HTTPRequest{
			Version: "2.0", RawPath: path,
			RequestContext: events.APIGatewayV2HTTPRequestContext{
				RequestID: "apigw-" + strings.Trim(path, "/"),
				HTTP:      events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "GET", Path: path},
			},
		}
	}
	resp, err := handler(context.Background(), event("/ok"))
	if err != nil || resp.StatusCode != 200 || !strings.Contains(resp.Body, `"request":"apigw-ok"`) {
		t.Fatalf("GET /ok: %+v, %v", resp, err)
	}
	resp, err = handler(context.Background(), event("/panic"))
	if err != nil || resp.StatusCode != 500 {
		t.Fatalf("GET /panic: %+v, %v", resp, err)
	}
	p := decodeProblem(t, http.Header{"Content-Type": {resp.Headers["Content-Type"]}}, []byte(resp.Body))
	if p.Code != federation.EINTERNAL || strings.Contains(resp.Body, "boom") {
		t.Errorf("panic problem = %s", resp.Body)
	}
	lines := strings.Split(strings.TrimSpace(logged.String()), "\n")
	var requests int
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("log line %q is not JSON", l)
		}
		if rec["msg"] == "request" {
			requests++
		}
	}
	if requests != 2 || !strings.Contains(logged.String(), `"panic":"boom"`) {
		t.Errorf("log = %s", logged.String())
	}
}

func TestJSONFailsAsProblem(t *testing.T) {
	w := httptest.NewRecorder()
	apigw.JSON(w, http.StatusOK, map[string]any{"bad": make(chan int)})
	if w.Code != 500 {
		t.Errorf("status = %d", w.Code)
	}
	decodeProblem(t, w.Header(), w.Body.Bytes())
}
