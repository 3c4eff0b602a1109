package devstack_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/federation-gateway/gateway/infra/devstack"
	"github.com/federation-gateway/gateway/infra/localtest"
	"github.com/federation-gateway/gateway/shared/apigw"
)

// startProbe runs the test template's probe function behind the local HTTP API. The stack
// is shared by the tests of this file: building and starting it is the slow part.
var probeStack = sync.OnceValues(func() (*devstack.Stack, error) {
	return devstack.Start(context.Background(), devstack.Options{
		Template:       "testdata/template.yaml",
		Config:         "testdata/config.json",
		StackName:      "probe",
		EndpointAddr:   "127.0.0.1:0",
		APIAddr:        "127.0.0.1:0",
		WebSocketAddr:  "127.0.0.1:0",
		BuildDir:       filepath.Join(os.TempDir(), "devstack-test-build"),
		Log:            io.Discard,
		QuietFunctions: true,
	})
})

func probe(t *testing.T) *devstack.Stack {
	t.Helper()
	s, err := probeStack()
	if err != nil {
		t.Fatalf("start the probe stack: %v", err)
	}
	return s
}

func do(t *testing.T, method, url string, body io.Reader, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func wantProblem(t *testing.T, resp *http.Response, body []byte, status int, mention string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != apigw.ProblemContentType {
		t.Errorf("Content-Type %q, want %q", ct, apigw.ProblemContentType)
	}
	var p apigw.Problem
	if err := json.Unmarshal(body, &p); err != nil || p.Status != status {
		t.Errorf("problem %s: %v", body, err)
	}
	if !strings.Contains(p.Detail, mention) {
		t.Errorf("problem detail %q does not mention %q", p.Detail, mention)
	}
}

// The function receives the payload 2.0 event API Gateway would send, and its response,
// headers and cookies come back as HTTP.
func TestEventAndResponse(t *testing.T) {
	s := probe(t)
	resp, body := do(t, "POST", s.APIURL+"/echo/42?b=2&a=1&a=3", strings.NewReader(`{"hello":"world"}`),
		map[string]string{"Content-Type": "application/json", "Cookie": "c1=x; c2=y", "X-Trace": "t-1"})
	if resp.StatusCode != 201 || resp.Header.Get("X-Probe") != "yes" || resp.Header.Get("Set-Cookie") != "session=1; Path=/" {
		t.Fatalf("response %d %v: %s", resp.StatusCode, resp.Header, body)
	}
	var got struct {
		Event events.APIGatewayV2HTTPRequest
		Env   map[string]string
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	ev := got.Event
	checks := map[string][2]string{
		"version":         {ev.Version, "2.0"},
		"routeKey":        {ev.RouteKey, "POST /echo/{id}"},
		"rawPath":         {ev.RawPath, "/echo/42"},
		"rawQueryString":  {ev.RawQueryString, "b=2&a=1&a=3"},
		"query a":         {ev.QueryStringParameters["a"], "1,3"},
		"path id":         {ev.PathParameters["id"], "42"},
		"header":          {ev.Headers["x-trace"], "t-1"},
		"cookies":         {strings.Join(ev.Cookies, ";"), "c1=x;c2=y"},
		"body":            {ev.Body, `{"hello":"world"}`},
		"method":          {ev.RequestContext.HTTP.Method, "POST"},
		"stage":           {ev.RequestContext.Stage, "$default"},
		"request ID":      {ev.RequestContext.RequestID, resp.Header.Get("Apigw-Requestid")},
		"env STAGE":       {got.Env["STAGE"], "local"},
		"env TABLE (Ref)": {got.Env["TABLE"], "probe-Table"},
		"env GREETING":    {got.Env["GREETING"], "hello from us-east-1 local ${Literal}"},
		"env TABLE_ARN":   {got.Env["TABLE_ARN"], "arn:aws:dynamodb:us-east-1:000000000000:table/probe-Table"},
		"env memory":      {got.Env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "512"},
	}
	for name, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s = %q, want %q", name, c[0], c[1])
		}
	}
	if ev.IsBase64Encoded {
		t.Error("a JSON body was base64-encoded")
	}

	// A binary body travels base64-encoded; a greedy path variable takes the rest.
	_, body = do(t, "PUT", s.APIURL+"/items/a/b/c", strings.NewReader("\x00\x01\xff"), map[string]string{"Content-Type": "application/octet-stream"})
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if dec, _ := base64.StdEncoding.DecodeString(got.Event.Body); !got.Event.IsBase64Encoded || string(dec) != "\x00\x01\xff" {
		t.Errorf("binary body: %+v", got.Event)
	}
	if got.Event.PathParameters["proxy"] != "a/b/c" || got.Event.RouteKey != "ANY /items/{proxy+}" {
		t.Errorf("greedy route: %v %q", got.Event.PathParameters, got.Event.RouteKey)
	}

	// A function may answer any JSON value: API Gateway sends it as a 200 JSON body.
	resp, body = do(t, "GET", s.APIURL+"/misbehave/bare", nil, nil)
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != `{"bare":true}` {
		t.Errorf("bare answer: %d %s", resp.StatusCode, body)
	}
}

func TestRoutingErrors(t *testing.T) {
	s := probe(t)
	resp, body := do(t, "GET", s.APIURL+"/nowhere", nil, nil)
	wantProblem(t, resp, body, 404, "GET /nowhere")
	resp, body = do(t, "GET", s.APIURL+"/echo/1", nil, nil)
	wantProblem(t, resp, body, 405, "allowed: POST")
	if resp.Header.Get("Allow") != "POST" {
		t.Errorf("Allow = %q", resp.Header.Get("Allow"))
	}
	resp, body = do(t, "POST", s.APIURL+"/echo", nil, nil)
	wantProblem(t, resp, body, 404, "/echo")
	resp, body = do(t, "POST", s.APIURL+"/echo/1", strings.NewReader(strings.Repeat("x", 10<<20+1)), nil)
	wantProblem(t, resp, body, 413, "over")
}

func TestCORS(t *testing.T) {
	s := probe(t)
	resp, _ := do(t, "OPTIONS", s.APIURL+"/echo/1", nil, map[string]string{
		"Origin": "https://app.example", "Access-Control-Request-Method": "POST"})
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		resp.Header.Get("Access-Control-Allow-Methods") != "GET,POST" || resp.Header.Get("Access-Control-Max-Age") != "60" {
		t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	resp, _ = do(t, "OPTIONS", s.APIURL+"/echo/1", nil, map[string]string{
		"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("an origin not allowed got %v", resp.Header)
	}
}

// A function that crashes, hangs, panics or answers garbage is a 502 problem for that
// request only: the process that served it is replaced when it died (or was killed at its
// timeout), the others of the function keep serving, and the next request is served.
func TestFunctionFaults(t *testing.T) {
	s := probe(t)
	tests := []struct {
		how, mention string
		replaced     bool
	}{
		{"crash", "exited before answering", true},
		{"hang", "timed out after 1s", true},
		{"panic", "probe panicked", true}, // aws-lambda-go exits after a panic, as Lambda resets the sandbox
		{"garbage", "malformed response", false},
	}
	for _, tt := range tests {
		t.Run(tt.how, func(t *testing.T) {
			pidfile := filepath.Join(t.TempDir(), "pid")
			start := time.Now()
			bystanders := sleepers(t, s, 2) // other invocations in flight on other instances
			resp, body := do(t, "GET", s.APIURL+"/misbehave/"+tt.how+"?pidfile="+pidfile, nil, nil)
			wantProblem(t, resp, body, 502, tt.mention)
			if d := time.Since(start); d > 8*time.Second {
				t.Errorf("the 502 took %s: a dead function must not wait out the emulator's timeouts", d)
			}
			for _, b := range bystanders() {
				if b.err != "" {
					t.Errorf("an invocation on another instance failed: %s", b.err)
				}
			}
			raw, err := os.ReadFile(pidfile)
			if err != nil {
				t.Fatal(err)
			}
			pid, _ := strconv.Atoi(string(raw))
			wait := 300 * time.Millisecond
			if tt.replaced {
				wait = 3 * time.Second
			}
			if gone := waitGone(pid, wait); gone != tt.replaced {
				t.Errorf("process %d gone: %v, want %v", pid, gone, tt.replaced)
			}
			if resp, body := do(t, "GET", s.APIURL+"/misbehave/pid", nil, nil); resp.StatusCode != 200 {
				t.Errorf("the next request: %d %s", resp.StatusCode, body)
			}
		})
	}
}

// waitGone reports whether process pid has exited within wait.
func waitGone(pid int, wait time.Duration) bool {
	for end := time.Now().Add(wait); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if syscall.Kill(pid, 0) != nil {
			return true
		}
	}
	return false
}

// sleep is what the probe's /misbehave/sleep answers: who served it, and when.
type sleep struct {
	PID        int   `json:"pid"`
	Start, End int64 // Unix nanoseconds
	err        string
}

// sleepers sends n /misbehave/sleep requests at once and returns a function that waits
// for their answers.
func sleepers(t *testing.T, s *devstack.Stack, n int) func() []sleep {
	t.Helper()
	return sleepersAt(t, s, "/misbehave/sleep", n)
}

func sleepersAt(t *testing.T, s *devstack.Stack, path string, n int) func() []sleep {
	t.Helper()
	out := make([]sleep, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(s.APIURL + path)
			if err != nil {
				out[i].err = err.Error()
				return
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || json.Unmarshal(body, &out[i]) != nil {
				out[i].err = fmt.Sprintf("%d %s", resp.StatusCode, body)
			}
		}()
	}
	return func() []sleep { wg.Wait(); return out }
}

// Invocations of one function run at once on several instances, as Lambda runs several
// execution environments: four requests that each take 300 ms overlap in time.
func TestConcurrentInvocations(t *testing.T) {
	s := probe(t)
	got := sleepers(t, s, devstack.DefaultConcurrency)()
	pids := map[int]bool{}
	for _, g := range got {
		if g.err != "" {
			t.Fatal(g.err)
		}
		pids[g.PID] = true
	}
	overlapping := 0
	for i, a := range got {
		for _, b := range got[i+1:] {
			if a.Start < b.End && b.Start < a.End {
				overlapping++
			}
		}
	}
	if overlapping == 0 || len(pids) < 2 {
		t.Errorf("%d overlapping pairs on %d processes: the invocations ran one after another", overlapping, len(pids))
	}
	if n := s.Instances("ProbeFunction"); n > devstack.DefaultConcurrency {
		t.Errorf("%d instances, more than the default limit %d", n, devstack.DefaultConcurrency)
	}
}

// A function that invokes itself through the Lambda API completes: its second invocation
// runs on a second instance, within the template's ReservedConcurrentExecutions (2).
func TestFunctionCallsItself(t *testing.T) {
	s := probe(t)
	resp, body := do(t, "GET", s.APIURL+"/caller/self", nil, nil)
	if resp.StatusCode != 200 || string(body) != `"scheduled"` {
		t.Fatalf("self-invocation: %d %s", resp.StatusCode, body)
	}
	for range 3 { // more at once than it may run: they wait for a free instance
		defer func(done func() []sleep) {
			for _, r := range done() {
				if r.err != "" {
					t.Error(r.err)
				}
			}
		}(sleepersAt(t, s, "/caller/sleep", 2))
	}
	time.Sleep(100 * time.Millisecond)
	if n := s.Instances("CallerFunction"); n > 2 {
		t.Errorf("%d instances of a function with ReservedConcurrentExecutions 2", n)
	}
}

// The function is registered in the emulator's Lambda service under its logical ID, so any
// Lambda client (aws lambda invoke --endpoint-url ...) reaches it.
func TestInvokeByLogicalID(t *testing.T) {
	s := probe(t)
	out, err := s.Invoke(context.Background(), "ProbeFunction", []byte(`{"source":"aws.events"}`))
	if err != nil || string(out) != `"scheduled"` {
		t.Fatalf("Invoke = %s, %v", out, err)
	}
	if _, err := s.Invoke(context.Background(), "NoSuchFunction", []byte(`{}`)); err == nil {
		t.Error("invoking an unknown function succeeded")
	}
}

func TestStartFailsClearly(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"registries": [{"id": "x", "url": "http://10.0.0.1", "kind": "ldap"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		opts    devstack.Options
		mention []string
	}{
		{"missing config", devstack.Options{Template: "testdata/template.yaml", Config: filepath.Join(dir, "none.json")},
			[]string{"configuration", "no such file"}},
		{"invalid config", devstack.Options{Template: "testdata/template.yaml", Config: bad},
			[]string{bad, `kind "ldap"`, "https is required"}},
		{"missing template", devstack.Options{Template: filepath.Join(dir, "template.yaml"), Config: "testdata/config.json"},
			[]string{"template", "no such file"}},
		{"unknown function", devstack.Options{Template: "testdata/template.yaml", Config: "testdata/config.json", Functions: []string{"Nope"}},
			[]string{`no function "Nope"`, "ProbeFunction"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.EndpointAddr, tt.opts.APIAddr, tt.opts.WebSocketAddr, tt.opts.Log = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", io.Discard
			s, err := devstack.Start(context.Background(), tt.opts)
			if err == nil {
				s.Close()
				t.Fatal("Start succeeded")
			}
			for _, m := range tt.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
		})
	}
}

// The real template and the real status function, end to end through the HTTP API.
func TestGatewayTemplate(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the gateway's functions")
	}
	root := localtest.RepoRoot(t)
	s, err := devstack.Start(context.Background(), devstack.Options{
		Template:      filepath.Join(root, "template.yaml"),
		Config:        filepath.Join(root, "infra", "config.local.json"),
		StackName:     "gateway-test",
		EndpointAddr:  "127.0.0.1:0",
		APIAddr:       "127.0.0.1:0",
		WebSocketAddr: "127.0.0.1:0",
		BuildDir:      filepath.Join(os.TempDir(), "devstack-test-gateway-build"),
		Log:           io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	resp, body := do(t, "GET", s.APIURL+"/api/v1/status", nil, nil)
	var status map[string]any
	if resp.StatusCode != 200 || json.Unmarshal(body, &status) != nil || status["stage"] != "local" || status["status"] != "ok" {
		t.Fatalf("status: %d %s", resp.StatusCode, body)
	}
	resp, body = do(t, "DELETE", s.APIURL+"/api/v1/status", nil, nil)
	wantProblem(t, resp, body, 405, "allowed: GET")
}
