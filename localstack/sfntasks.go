package localstack

// This file is the one place where the local cloud makes Step Functions' Lambda Task
// states behave as they do on AWS. kumo v0.33.1's engine (internal/service/sfn) has two
// gaps, shown by quirks_test.go and worked around here:
//
//  1. It calls Lambda at http://localhost:4566 (a constant set in its init), whatever port
//     the endpoint serves on, through http.DefaultTransport: a test endpoint on a free
//     port would reach whatever listens on 4566, another developer's `make run` maybe.
//     routeEmulatorCalls sends every request for localhost:4566 made through
//     http.DefaultTransport of this process to the live Endpoint instead (an "http"
//     protocol registered on the transport, which passes every other request on).
//
//  2. It treats a Lambda function error (200 with X-Amz-Function-Error) as success, and
//     names every task failure States.TaskFailed: Retry and Catch on the function's
//     errorType never fire. Only its callback path (.waitForTaskToken) raises a failure
//     under a name of its own (SendTaskFailure's error). So the definition of every state
//     machine created or updated through the endpoint is rewritten: each Lambda Task
//     (arn:aws:states:::lambda:invoke, or a function ARN as the resource) becomes a
//     lambda:invoke.waitForTaskToken Task whose payload wraps the original one with the
//     task token. When the engine invokes the function with such a payload, the endpoint
//     answers the engine at once, invokes the function itself with the original payload
//     through its own front door (so the Runtime API watcher, and a supervisor that starts
//     instances on demand, and the meter see that invocation as any other, for as long as
//     the function works on it), and reports the outcome as AWS's Task integration would: SendTaskSuccess with
//     lambda:invoke's output ({ExecutedVersion, Payload, StatusCode}, or the bare payload
//     for a function-ARN resource), or SendTaskFailure with the function's errorType (a
//     Lambda service error as Lambda.<its type>) and the error payload as the cause.
//     States.TaskFailed in ErrorEquals becomes States.ALL (the engine matches names
//     exactly): the two differ on States.Timeout only, so a Task that has a timeout and
//     lists States.TaskFailed is refused rather than silently changed.
//
// kumo's own Retry (IntervalSeconds, BackoffRate, MaxAttempts, MaxDelaySeconds) and Catch
// (ResultPath with {Error, Cause}) then work on the real names. DescribeStateMachine
// shows the rewritten definition.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// emulatorBase is the host kumo's Step Functions call other services at.
const emulatorBase = "localhost:4566"

// NoRewriteHeader, on a CreateStateMachine request, leaves its definition as it is: for
// the quirk test that shows the emulator's own behaviour.
const NoRewriteHeader = "X-Localstack-No-Rewrite"

// taskEnvelope is the key of the payload wrapper of a rewritten Task.
const taskEnvelope = "__localstack_sfn_task"

const resourceLambdaInvoke = "arn:aws:states:::lambda:invoke"

var (
	liveMu        sync.Mutex
	live          []*Endpoint
	registerRoute sync.Once
)

// routeEmulatorCalls makes e the target of the emulator's calls to localhost:4566 until it
// closes; the newest live Endpoint of the process is the target (they share the
// emulator's state anyway).
func routeEmulatorCalls(e *Endpoint) {
	registerRoute.Do(func() {
		if t, ok := http.DefaultTransport.(*http.Transport); ok {
			t.RegisterProtocol("http", emulatorRoute{direct: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64}})
		}
	})
	liveMu.Lock()
	live = append(live, e)
	liveMu.Unlock()
}

func unrouteEmulatorCalls(e *Endpoint) {
	liveMu.Lock()
	defer liveMu.Unlock()
	for i, x := range live {
		if x == e {
			live = append(live[:i], live[i+1:]...)
			return
		}
	}
}

// emulatorRoute is the "http" protocol of http.DefaultTransport: it takes the requests for
// localhost:4566 and lets the transport handle every other one.
type emulatorRoute struct{ direct *http.Transport }

func (r emulatorRoute) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host != emulatorBase {
		return nil, http.ErrSkipAltProtocol
	}
	liveMu.Lock()
	var e *Endpoint
	if len(live) > 0 {
		e = live[len(live)-1]
	}
	liveMu.Unlock()
	if e == nil {
		return nil, errors.New("local AWS endpoint: no endpoint is running in this process for the emulator's call to " + emulatorBase)
	}
	out := req.Clone(req.Context())
	out.URL.Host = e.Addr
	return r.direct.RoundTrip(out)
}

// sfnTasks runs the rewritten Tasks' invocations.
type sfnTasks struct {
	endpoint string // the Endpoint's URL: the function invocations go through its watcher and meter
	emulator string // kumo's own URL: the task callbacks, which AWS's integration makes inside the service
	client   *http.Client
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

func newSFNTasks(endpointURL, emulatorURL string) *sfnTasks {
	ctx, cancel := context.WithCancel(context.Background())
	return &sfnTasks{endpoint: endpointURL, emulator: emulatorURL, client: &http.Client{}, ctx: ctx, cancel: cancel}
}

func (s *sfnTasks) close() {
	s.cancel()
	s.wg.Wait()
}

// wrap serves the two interceptions in front of next.
func (s *sfnTasks) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		switch target := r.Header.Get("X-Amz-Target"); {
		case (target == "AWSStepFunctions.CreateStateMachine" || target == "AWSStepFunctions.UpdateStateMachine") && r.Header.Get(NoRewriteHeader) == "":
			s.rewriteRequest(w, r, next)
			return
		case strings.HasPrefix(r.URL.Path, "/2015-03-31/functions/") && strings.HasSuffix(r.URL.Path, "/invocations"):
			body, ok := readBody(w, r)
			if !ok {
				return
			}
			var env struct {
				Task    *taskCall       `json:"__localstack_sfn_task"`
				Payload json.RawMessage `json:"payload"`
			}
			if json.Unmarshal(body, &env) == nil && env.Task != nil && env.Task.Token != "" {
				fn := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/2015-03-31/functions/"), "/invocations")
				payload := env.Payload
				if len(payload) == 0 {
					payload = []byte("{}")
				}
				s.wg.Add(1)
				go func() {
					defer s.wg.Done()
					s.run(fn, *env.Task, payload)
				}()
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{}`))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// taskCall is what a rewritten Task hands to the endpoint besides the payload.
type taskCall struct {
	Token string `json:"token"`
	Kind  string `json:"kind"` // "invoke" (lambda:invoke) or "direct" (a function ARN)
	State string `json:"state"`
}

// run invokes the function and reports the outcome to the waiting Task.
func (s *sfnTasks) run(fn string, call taskCall, payload []byte) {
	status, header, body, err := s.post(s.endpoint+"/2015-03-31/functions/"+fn+"/invocations", "", payload, "lambda")
	switch {
	case err != nil:
		s.fail(call.Token, "Lambda.SdkClientException", err.Error())
	case status != http.StatusOK:
		typ := header.Get("X-Amzn-Errortype")
		if typ == "" {
			typ = "ServiceException"
		}
		s.fail(call.Token, "Lambda."+strings.TrimSuffix(typ, ":"), string(body))
	case header.Get("X-Amz-Function-Error") != "":
		var fe struct {
			ErrorType string `json:"errorType"`
		}
		_ = json.Unmarshal(body, &fe)
		if fe.ErrorType == "" {
			fe.ErrorType = "Lambda.Unknown"
		}
		s.fail(call.Token, fe.ErrorType, string(body))
	default:
		var out any = json.RawMessage(body)
		if !json.Valid(body) {
			out = string(body)
		}
		if call.Kind == "invoke" {
			out = map[string]any{"ExecutedVersion": "$LATEST", "Payload": out, "StatusCode": 200}
		}
		result, _ := json.Marshal(out)
		s.send("SendTaskSuccess", map[string]string{"taskToken": call.Token, "output": string(result)})
	}
}

func (s *sfnTasks) fail(token, name, cause string) {
	if len(cause) > 32768 {
		cause = cause[:32768]
	}
	s.send("SendTaskFailure", map[string]string{"taskToken": token, "error": name, "cause": cause})
}

func (s *sfnTasks) send(action string, in map[string]string) {
	body, _ := json.Marshal(in)
	// The engine may have stopped waiting (the execution was stopped or timed out):
	// nothing is left to tell then.
	_, _, _, _ = s.post(s.emulator+"/", "AWSStepFunctions."+action, body, "states")
}

func (s *sfnTasks) post(url, target string, body []byte, service string) (int, http.Header, []byte, error) {
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=test/19700101/us-east-1/"+service+"/aws4_request, SignedHeaders=host, Signature=local")
	if target != "" {
		req.Header.Set("X-Amz-Target", target)
		req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	} else {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b, err
}

// rewriteRequest rewrites the definition of a CreateStateMachine or UpdateStateMachine.
func (s *sfnTasks) rewriteRequest(w http.ResponseWriter, r *http.Request, next http.Handler) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	var req map[string]any
	if err := json.Unmarshal(body, &req); err == nil {
		if def, ok := req["definition"].(string); ok {
			rewritten, err := RewriteDefinition(def)
			if err != nil {
				w.Header().Set("Content-Type", "application/x-amz-json-1.0")
				w.WriteHeader(http.StatusBadRequest)
				_ = json.NewEncoder(w).Encode(map[string]string{"__type": "InvalidDefinition", "message": "local AWS endpoint: " + err.Error()})
				return
			}
			req["definition"] = rewritten
			body, _ = json.Marshal(req)
		}
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.Header.Set("Content-Length", strconv.Itoa(len(body)))
	next.ServeHTTP(w, r)
}

// RewriteDefinition rewrites a state machine definition's Lambda Tasks as the file's
// comment says. A definition that is not JSON is left as it is, for the emulator to
// refuse.
func RewriteDefinition(def string) (string, error) {
	var doc map[string]any
	if err := json.Unmarshal([]byte(def), &doc); err != nil {
		return def, nil
	}
	if err := rewriteMachine(doc); err != nil {
		return "", err
	}
	out, err := json.Marshal(doc)
	return string(out), err
}

func rewriteMachine(m map[string]any) error {
	states, _ := m["States"].(map[string]any)
	for name, v := range states {
		st, ok := v.(map[string]any)
		if !ok {
			continue
		}
		if st["Type"] == "Task" {
			if err := rewriteTask(name, st); err != nil {
				return err
			}
		}
		for _, key := range []string{"Branches"} {
			for _, b := range asSlice(st[key]) {
				if bm, ok := b.(map[string]any); ok {
					if err := rewriteMachine(bm); err != nil {
						return err
					}
				}
			}
		}
		for _, key := range []string{"ItemProcessor", "Iterator"} {
			if bm, ok := st[key].(map[string]any); ok {
				if err := rewriteMachine(bm); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

func rewriteTask(name string, st map[string]any) error {
	resource, _ := st["Resource"].(string)
	params, _ := st["Parameters"].(map[string]any)
	wrapped := map[string]any{taskEnvelope: nil}
	var call map[string]any
	switch {
	case resource == resourceLambdaInvoke:
		call = map[string]any{"kind": "invoke"}
		newParams := map[string]any{}
		for k, v := range params {
			switch k {
			case "Payload":
				wrapped["payload"] = v
			case "Payload.$":
				wrapped["payload.$"] = v
			case "FunctionName", "FunctionName.$":
				newParams[k] = v
			}
		}
		params = newParams
	case strings.HasPrefix(resource, "arn:aws:lambda:") && strings.Contains(resource, ":function:"):
		call = map[string]any{"kind": "direct"}
		if params != nil {
			wrapped["payload"] = params
		} else {
			wrapped["payload.$"] = "$"
		}
		params = map[string]any{"FunctionName": resource}
	default:
		return nil // another integration, or a callback Task already: left alone
	}
	call["token.$"] = "$$.Task.Token"
	call["state"] = name
	wrapped[taskEnvelope] = call
	params["Payload"] = wrapped
	st["Parameters"] = params
	st["Resource"] = resourceLambdaInvoke + ".waitForTaskToken"

	_, hasTimeout := st["TimeoutSeconds"]
	_, hasTimeoutPath := st["TimeoutSecondsPath"]
	_, hasHeartbeat := st["HeartbeatSeconds"]
	for _, key := range []string{"Retry", "Catch"} {
		for _, r := range asSlice(st[key]) {
			rm, ok := r.(map[string]any)
			if !ok {
				continue
			}
			names := asSlice(rm["ErrorEquals"])
			for i, n := range names {
				if n != "States.TaskFailed" {
					continue
				}
				if hasTimeout || hasTimeoutPath || hasHeartbeat {
					return fmt.Errorf("state %q lists States.TaskFailed and has a timeout: the local Step Functions cannot tell it from States.Timeout", name)
				}
				names[i] = "States.ALL"
			}
		}
	}
	return nil
}
