// Package openapitest checks, in tests, that the HTTP API does what its OpenAPI document
// (docs/openapi.json) says: every request a handler test makes and every response it gets
// are validated against the document, so the description and the behaviour cannot drift
// apart. It is for tests only: it links the validator (kin-openapi) and net/http/httptest.
//
// The rules, for each exchange:
//
//   - a request to a path or method the document does not have must be answered 404 or
//     405 (with Allow) as a problem;
//   - a request the document says is invalid must be refused: a 4xx, or a JSON-RPC error
//     for an operation marked x-jsonrpc;
//   - every response must be one the document lists for its operation and status, with
//     its content type, headers and body schema.
//
// A request the document allows may still be refused (the handlers check more than a
// schema can say); that is not drift.
package openapitest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/federation-gateway/gateway/docs"
	"github.com/federation-gateway/gateway/shared/apigw"
)

// Validator validates exchanges against the document.
type Validator struct {
	doc    *openapi3.T
	router routers.Router
}

// The document is loaded once per test process: it is the same for every test.
var (
	once    sync.Once
	shared  *Validator
	loadErr error
)

// New returns the Validator of docs/openapi.json, loaded and checked as an OpenAPI 3.1
// document once per test process.
func New(t testing.TB) *Validator {
	t.Helper()
	once.Do(func() { shared, loadErr = load(docs.OpenAPI()) })
	if loadErr != nil {
		t.Fatalf("docs/openapi.json: %v", loadErr)
	}
	return shared
}

func load(raw []byte) (*Validator, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(raw)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		return nil, fmt.Errorf("openapi %s: want 3.1", doc.OpenAPI)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("validate: %w", err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	return &Validator{doc: doc, router: router}, nil
}

// Lambda returns h, checking every exchange it handles (see Check).
func (v *Validator) Lambda(t testing.TB, h apigw.LambdaHandler) apigw.LambdaHandler {
	return func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		resp, err := h(ctx, ev)
		if err == nil {
			v.Check(t, ev, resp)
		}
		return resp, err
	}
}

// Handler returns h, checking every exchange it serves (see Check).
func (v *Validator) Handler(t testing.TB, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		v.CheckHTTP(t, r.Clone(context.Background()), body, rec.Code, rec.Header(), rec.Body.Bytes())
		for k, vals := range rec.Header() {
			w.Header()[k] = vals
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
}

// Check validates one exchange of an HTTP API Lambda: the event and the response.
func (v *Validator) Check(t testing.TB, ev events.APIGatewayV2HTTPRequest, resp events.APIGatewayV2HTTPResponse) {
	t.Helper()
	body := []byte(ev.Body)
	if ev.IsBase64Encoded {
		var err error
		if body, err = base64.StdEncoding.DecodeString(ev.Body); err != nil {
			t.Fatalf("openapitest: the event's body is not base64: %v", err)
		}
	}
	target := ev.RawPath
	if ev.RawQueryString != "" {
		target += "?" + ev.RawQueryString
	}
	method := ev.RequestContext.HTTP.Method
	req := httptest.NewRequest(method, "http://gateway.test"+target, bytes.NewReader(body))
	for k, val := range ev.Headers {
		req.Header.Set(k, val)
	}
	header := http.Header{}
	for k, val := range resp.Headers {
		header.Set(k, val)
	}
	for k, vals := range resp.MultiValueHeaders {
		header[http.CanonicalHeaderKey(k)] = vals
	}
	respBody := []byte(resp.Body)
	if resp.IsBase64Encoded {
		respBody, _ = base64.StdEncoding.DecodeString(resp.Body)
	}
	v.CheckHTTP(t, req, body, resp.StatusCode, header, respBody)
}

// CheckHTTP validates one exchange: req with its body, and the response.
func (v *Validator) CheckHTTP(t testing.TB, req *http.Request, body []byte, status int, header http.Header, respBody []byte) {
	t.Helper()
	where := req.Method + " " + req.URL.Path
	route, params, err := v.router.FindRoute(req)
	if err != nil {
		v.checkNoRoute(t, where, err, status, header, respBody)
		return
	}
	ctx := context.Background()
	req.Body = io.NopCloser(bytes.NewReader(body))
	in := &openapi3filter.RequestValidationInput{
		Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: authenticate, MultiError: true},
	}
	reqErr := openapi3filter.ValidateRequest(ctx, in)
	if reqErr != nil && !refused(route, status, respBody) {
		t.Errorf("openapitest: %s: the document says the request is invalid, but the handler answered %d:\n  request: %.300s\n  why: %v",
			where, status, body, reqErr)
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: status, Header: header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	out.SetBodyBytes(respBody)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		t.Errorf("openapitest: %s: the response %d is not what the document says:\n  body: %.500s\n  why: %v", where, status, respBody, err)
	}
}

// checkNoRoute checks the answer to a path or method the document does not have.
func (v *Validator) checkNoRoute(t testing.TB, where string, err error, status int, header http.Header, respBody []byte) {
	t.Helper()
	var want int
	switch {
	case errors.Is(err, routers.ErrPathNotFound):
		want = http.StatusNotFound
	case errors.Is(err, routers.ErrMethodNotAllowed):
		want = http.StatusMethodNotAllowed
	default:
		t.Fatalf("openapitest: %s: %v", where, err)
	}
	if status != want {
		t.Errorf("openapitest: %s is not in the document: want %d, the handler answered %d", where, want, status)
		return
	}
	if want == http.StatusMethodNotAllowed && header.Get("Allow") == "" {
		t.Errorf("openapitest: %s: a 405 without Allow", where)
	}
	if ct := header.Get("Content-Type"); ct != apigw.ProblemContentType {
		t.Errorf("openapitest: %s: a %d of type %q, want a problem", where, status, ct)
	}
	var doc any
	if err := json.Unmarshal(respBody, &doc); err != nil {
		t.Errorf("openapitest: %s: the problem is not JSON: %v", where, err)
		return
	}
	if err := v.doc.Components.Schemas["Problem"].Value.VisitJSON(doc, openapi3.EnableJSONSchema2020()); err != nil {
		t.Errorf("openapitest: %s: the problem is not a Problem: %v", where, err)
	}
}

// refused reports whether the answer refuses the request: a 4xx, or a JSON-RPC error
// where the operation answers errors in the body (x-jsonrpc).
func refused(route *routers.Route, status int, body []byte) bool {
	if status >= 400 && status < 500 {
		return true
	}
	if _, ok := route.Operation.Extensions["x-jsonrpc"]; !ok || status != http.StatusOK {
		return false
	}
	var resp struct {
		Error json.RawMessage `json:"error"`
	}
	return json.Unmarshal(body, &resp) == nil && len(resp.Error) > 0 && string(resp.Error) != "null"
}

// authenticate accepts a request that presents the scheme's credential in its
// Authorization header; whether the credential is good is the handler's to say.
func authenticate(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	scheme, token, _ := strings.Cut(strings.TrimSpace(in.RequestValidationInput.Request.Header.Get("Authorization")), " ")
	want := in.SecurityScheme.Scheme
	if !strings.EqualFold(scheme, want) || strings.TrimSpace(token) == "" {
		return fmt.Errorf("no %s credential in Authorization", want)
	}
	return nil
}
