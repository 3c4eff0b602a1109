package devstack

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"golang.org/x/time/rate"

	"github.com/federation-gateway/gateway/shared/apigw"
	"github.com/federation-gateway/gateway/shared/metrics"
)

// maxPayload is API Gateway's limit on a request body.
const maxPayload = 10 << 20

// apiRoute is a route of the HTTP API and the function behind it.
type apiRoute struct {
	Route
	function string
	segments []string
}

// httpAPI serves the template's HTTP API routes the way API Gateway does: each request
// becomes a payload 2.0 event, the function is invoked through the Lambda API, and its
// response becomes the HTTP response.
type httpAPI struct {
	routes  []apiRoute
	cors    *CORS
	limiter *rate.Limiter
	invoke  func(ctx context.Context, function string, payload []byte) ([]byte, error)
	logs    *logSink
}

func newHTTPAPI(t *Template, invoke func(context.Context, string, []byte) ([]byte, error), logs *logSink) *httpAPI {
	a := &httpAPI{cors: t.API.CORS, invoke: invoke, logs: logs}
	if t.API.RateLimit > 0 {
		a.limiter = rate.NewLimiter(rate.Limit(t.API.RateLimit), max(t.API.BurstLimit, 1))
	}
	for _, fn := range t.Functions {
		for _, r := range fn.Routes {
			a.routes = append(a.routes, apiRoute{Route: r, function: fn.LogicalID, segments: strings.Split(strings.Trim(r.Path, "/"), "/")})
		}
	}
	// API Gateway prefers the most specific route: literal segments over variables, and a
	// greedy variable last.
	slices.SortStableFunc(a.routes, func(x, y apiRoute) int { return specificity(y) - specificity(x) })
	return a
}

func specificity(r apiRoute) int {
	n := 0
	for _, s := range r.segments {
		switch {
		case strings.HasSuffix(s, "+}"):
		case strings.HasPrefix(s, "{"):
			n += 1
		default:
			n += 100
		}
	}
	if r.Method != "ANY" {
		n++
	}
	return n
}

// match finds the route of a request. When the path is served under other methods only,
// it returns those methods instead.
func (a *httpAPI) match(method, path string) (route *apiRoute, params map[string]string, allowed []string) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	for i := range a.routes {
		r := &a.routes[i]
		p, ok := matchPath(r.segments, parts)
		if !ok {
			continue
		}
		if r.Method == "ANY" || r.Method == method {
			return r, p, nil
		}
		if !slices.Contains(allowed, r.Method) {
			allowed = append(allowed, r.Method)
		}
	}
	return nil, nil, allowed
}

func matchPath(route, parts []string) (map[string]string, bool) {
	params := map[string]string{}
	for i, seg := range route {
		if name, ok := strings.CutSuffix(strings.TrimPrefix(seg, "{"), "+}"); ok && strings.HasPrefix(seg, "{") {
			if i >= len(parts) || parts[i] == "" {
				return nil, false
			}
			params[name] = strings.Join(parts[i:], "/")
			return params, true
		}
		if i >= len(parts) {
			return nil, false
		}
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			if parts[i] == "" {
				return nil, false
			}
			params[seg[1:len(seg)-1]] = parts[i]
			continue
		}
		if seg != parts[i] {
			return nil, false
		}
	}
	return params, len(parts) == len(route)
}

// MetricsPath is where the local HTTP API shows the functions' metrics: what CloudWatch
// would make of their Embedded Metric Format lines. Not a route of the template: API
// Gateway has no such page, CloudWatch's console is that page.
const MetricsPath = "/_local/metrics"

func (a *httpAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == MetricsPath && r.Method == http.MethodGet {
		a.serveMetrics(w, r)
		return
	}
	start := time.Now()
	reqID := newRequestID()
	w.Header().Set("Apigw-Requestid", reqID)
	status, target := a.serve(w, r, reqID)
	a.logs.printf("http  | %s %s %d %dms%s\n", r.Method, r.URL.RequestURI(), status, time.Since(start).Milliseconds(), target)
}

func (a *httpAPI) serve(w http.ResponseWriter, r *http.Request, reqID string) (int, string) {
	if a.cors != nil && r.Header.Get("Origin") != "" {
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			a.preflight(w, r)
			return http.StatusNoContent, " (CORS preflight)"
		}
		if origin := a.allowOrigin(r.Header.Get("Origin")); origin != "" {
			w.Header().Set("Access-Control-Allow-Origin", origin)
		}
	}
	if a.limiter != nil && !a.limiter.Allow() {
		return problem(w, http.StatusTooManyRequests, "throttled", "the API's default route throttling limit was reached"), ""
	}
	route, params, allowed := a.match(r.Method, r.URL.Path)
	if route == nil && len(allowed) > 0 {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		return problem(w, http.StatusMethodNotAllowed, "method_not_allowed",
			fmt.Sprintf("%s is not allowed on %s; allowed: %s", r.Method, r.URL.Path, strings.Join(allowed, ", "))), ""
	}
	if route == nil {
		return problem(w, http.StatusNotFound, "not_found", "no route for "+r.Method+" "+r.URL.Path), ""
	}
	target := " -> " + route.function

	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxPayload))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return problem(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("the request body is over %d bytes", maxPayload)), target
		}
		return problem(w, http.StatusBadRequest, "invalid", "could not read the request body"), target
	}
	payload, err := json.Marshal(toEvent(r, route, params, body, reqID))
	if err != nil {
		return problem(w, http.StatusInternalServerError, "internal", "could not build the event"), target
	}
	out, err := a.invoke(r.Context(), route.function, payload)
	if err != nil {
		if r.Context().Err() != nil {
			return 499, target + " (client went away)"
		}
		return problem(w, http.StatusBadGateway, "function_failed", err.Error()), target
	}
	resp, err := fromResponse(out)
	if err != nil {
		return problem(w, http.StatusBadGateway, "function_failed", fmt.Sprintf("%s returned a malformed response: %v", route.function, err)), target
	}
	return writeResponse(w, resp), target
}

// serveMetrics answers the metrics as a plain-text table, or as JSON for ?format=json or
// Accept: application/json. ?function=route keeps one function's.
func (a *httpAPI) serveMetrics(w http.ResponseWriter, r *http.Request) {
	series := a.logs.metrics.Snapshot()
	if fn := r.URL.Query().Get("function"); fn != "" {
		series = slices.DeleteFunc(series, func(s metrics.Series) bool { return s.Dimensions[metrics.DimFunction] != fn })
	}
	w.Header().Set("Cache-Control", "no-store")
	if r.URL.Query().Get("format") == "json" || strings.Contains(r.Header.Get("Accept"), "application/json") {
		apigw.JSON(w, http.StatusOK, map[string]any{"namespace": metrics.Namespace, "series": series})
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "Federation Gateway metrics (namespace %s), from the functions' Embedded Metric Format lines since the stack started\n\n", metrics.Namespace)
	if len(series) == 0 {
		fmt.Fprintln(w, "none yet: route a message, or wait for the sync")
		return
	}
	_ = metrics.WriteTable(w, series)
}

func (a *httpAPI) allowOrigin(origin string) string {
	for _, o := range a.cors.AllowOrigins {
		if o == "*" || o == origin {
			return o
		}
	}
	return ""
}

func (a *httpAPI) preflight(w http.ResponseWriter, r *http.Request) {
	if origin := a.allowOrigin(r.Header.Get("Origin")); origin != "" {
		w.Header().Set("Access-Control-Allow-Origin", origin)
		w.Header().Set("Access-Control-Allow-Methods", strings.Join(a.cors.AllowMethods, ","))
		w.Header().Set("Access-Control-Allow-Headers", strings.Join(a.cors.AllowHeaders, ","))
		if a.cors.MaxAge > 0 {
			w.Header().Set("Access-Control-Max-Age", strconv.Itoa(a.cors.MaxAge))
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func problem(w http.ResponseWriter, status int, code, detail string) int {
	apigw.WriteProblem(w, apigw.NewProblem(status, code, detail))
	return status
}

// toEvent builds the API Gateway HTTP API payload 2.0 event of a request.
func toEvent(r *http.Request, route *apiRoute, params map[string]string, body []byte, reqID string) events.APIGatewayV2HTTPRequest {
	now := time.Now().UTC()
	routeKey := route.Method + " " + route.Path
	if route.Method == "ANY" {
		routeKey = "ANY " + route.Path
	}
	ev := events.APIGatewayV2HTTPRequest{
		Version:        "2.0",
		RouteKey:       routeKey,
		RawPath:        r.URL.EscapedPath(),
		RawQueryString: r.URL.RawQuery,
		Headers:        map[string]string{},
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey:     routeKey,
			AccountID:    localAccountID,
			Stage:        "$default",
			RequestID:    reqID,
			APIID:        "local",
			DomainName:   r.Host,
			DomainPrefix: strings.Split(r.Host, ".")[0],
			Time:         now.Format("02/Jan/2006:15:04:05 -0700"),
			TimeEpoch:    now.UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method:    r.Method,
				Path:      r.URL.Path,
				Protocol:  r.Proto,
				SourceIP:  sourceIP(r.RemoteAddr),
				UserAgent: r.UserAgent(),
			},
		},
	}
	for name, values := range r.Header {
		if strings.EqualFold(name, "Cookie") {
			for _, v := range values {
				for _, c := range strings.Split(v, ";") {
					ev.Cookies = append(ev.Cookies, strings.TrimSpace(c))
				}
			}
			continue
		}
		ev.Headers[strings.ToLower(name)] = strings.Join(values, ",")
	}
	ev.Headers["host"] = r.Host
	if q := r.URL.Query(); len(q) > 0 {
		ev.QueryStringParameters = map[string]string{}
		for k, v := range q {
			ev.QueryStringParameters[k] = strings.Join(v, ",")
		}
	}
	if len(params) > 0 {
		ev.PathParameters = params
	}
	if len(body) > 0 {
		if utf8.Valid(body) && isText(r.Header.Get("Content-Type")) {
			ev.Body = string(body)
		} else {
			ev.Body = base64.StdEncoding.EncodeToString(body)
			ev.IsBase64Encoded = true
		}
	}
	return ev
}

func isText(contentType string) bool {
	ct := strings.ToLower(contentType)
	return ct == "" || strings.HasPrefix(ct, "text/") || strings.Contains(ct, "json") ||
		strings.Contains(ct, "xml") || strings.HasPrefix(ct, "application/x-www-form-urlencoded")
}

func sourceIP(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return remote
	}
	return host
}

// fromResponse reads a function's answer. A payload 2.0 function may answer a full
// response object or any other JSON value, which API Gateway sends as a 200 JSON body.
func fromResponse(out []byte) (events.APIGatewayV2HTTPResponse, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(out, &probe); err == nil {
		if _, ok := probe["statusCode"]; ok {
			var resp events.APIGatewayV2HTTPResponse
			if err := json.Unmarshal(out, &resp); err != nil {
				return resp, err
			}
			if resp.StatusCode < 100 || resp.StatusCode > 599 {
				return resp, fmt.Errorf("status code %d", resp.StatusCode)
			}
			return resp, nil
		}
	} else if !json.Valid(out) {
		return events.APIGatewayV2HTTPResponse{}, errors.New("not JSON")
	}
	return events.APIGatewayV2HTTPResponse{
		StatusCode: http.StatusOK,
		Headers:    map[string]string{"Content-Type": "application/json"},
		Body:       string(out),
	}, nil
}

func writeResponse(w http.ResponseWriter, resp events.APIGatewayV2HTTPResponse) int {
	for k, v := range resp.Headers {
		w.Header().Set(k, v)
	}
	for k, vs := range resp.MultiValueHeaders {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	for _, c := range resp.Cookies {
		w.Header().Add("Set-Cookie", c)
	}
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		if b, err := base64.StdEncoding.DecodeString(resp.Body); err == nil {
			body = b
		}
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(body)
	return resp.StatusCode
}

func newRequestID() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return strings.TrimRight(base64.RawURLEncoding.EncodeToString(b), "=")
}
