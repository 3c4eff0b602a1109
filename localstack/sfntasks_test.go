package localstack_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/federation-gateway/gateway/localstack"
)

func localConfig(url string) aws.Config {
	return aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""), BaseEndpoint: aws.String(url)}
}

// spec says how a test function fails.
type spec struct {
	fails   int
	errType string
}

// function is a Lambda function of the endpoint served by a Runtime API loop in the test:
// its first fails invocations end in an error of type errType, the others succeed with
// {"ok": true, "n": <invocation>}; it records when each one came.
type function struct {
	name    string
	fails   int
	errType string
	mu      sync.Mutex
	calls   []time.Time
	inputs  []string
}

func (f *function) times() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.calls...)
}

func serveFunction(t *testing.T, ep *localstack.Endpoint, f *function) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	lc := lambda.NewFromConfig(localConfig(ep.URL))
	_, err := lc.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String(f.name), Role: aws.String("arn:aws:iam::000000000000:role/x"),
		Runtime: lambdatypes.RuntimeProvidedal2023, Handler: aws.String("bootstrap"), Timeout: aws.Int32(5),
		Code: &lambdatypes.FunctionCode{ZipFile: []byte{0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
	})
	if err != nil {
		t.Fatal(err)
	}
	base := ep.URL + "/_runtime/" + f.name + "/2018-06-01/runtime/invocation/"
	go func() {
		for ctx.Err() == nil {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"next", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				continue
			}
			in, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
			f.mu.Lock()
			f.calls = append(f.calls, time.Now())
			f.inputs = append(f.inputs, string(in))
			n := len(f.calls)
			f.mu.Unlock()
			url, body := base+id+"/response", fmt.Sprintf(`{"ok":true,"n":%d}`, n)
			if n <= f.fails {
				url, body = base+id+"/error", fmt.Sprintf(`{"errorType":%q,"errorMessage":"attempt %d failed"}`, f.errType, n)
			}
			r, err := http.Post(url, "application/json", strings.NewReader(body))
			if err == nil {
				r.Body.Close()
			}
		}
	}()
	if err := ep.WaitPolling(ctx, f.name); err != nil {
		t.Fatal(err)
	}
}

// run creates a state machine of definition (the function's ARN substituted for FN) and
// runs it to its end.
func run(t *testing.T, client *sfn.Client, name, definition, fn string) *sfn.DescribeExecutionOutput {
	t.Helper()
	ctx := context.Background()
	def := strings.ReplaceAll(definition, "FN", "arn:aws:lambda:us-east-1:000000000000:function:"+fn)
	sm, err := client.CreateStateMachine(ctx, &sfn.CreateStateMachineInput{Name: aws.String(name), Definition: aws.String(def),
		RoleArn: aws.String("arn:aws:iam::000000000000:role/x")})
	if err != nil {
		t.Fatal(err)
	}
	ex, err := client.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: sm.StateMachineArn, Input: aws.String(`{"x":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		out, err := client.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: ex.ExecutionArn})
		if err != nil {
			t.Fatal(err)
		}
		if out.Status != sfntypes.ExecutionStatusRunning {
			return out
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not finish", name)
	return nil
}

const invokeTask = `"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
	"Parameters": {"FunctionName": "FN", "Payload": {"step": "s", "x.$": "$.x"}}`

// Step Functions' Retry and Catch on a Lambda Task behave locally as on AWS: the error's
// name is the function's errorType, States.TaskFailed and States.ALL match it, and Retry
// waits IntervalSeconds × BackoffRate^n between at most MaxAttempts retries.
func TestStepFunctionsTaskErrors(t *testing.T) {
	ep := start(t)
	client := sfn.NewFromConfig(localConfig(ep.URL))
	tests := []struct {
		name       string
		fn         spec
		definition string
		status     sfntypes.ExecutionStatus
		output     string // in the output, or the execution's error
		calls      int
		gaps       []time.Duration // at least, between calls
	}{
		{"catch by errorType", spec{fails: 9, errType: "BridgeUnavailable"},
			`{"StartAt": "T", "States": {"T": {` + invokeTask + `, "Catch": [{"ErrorEquals": ["Other"], "Next": "Wrong"},
			  {"ErrorEquals": ["BridgeUnavailable"], "ResultPath": "$.error", "Next": "Caught"}], "End": true},
			  "Wrong": {"Type": "Fail", "Error": "Wrong"}, "Caught": {"Type": "Succeed"}}}`,
			sfntypes.ExecutionStatusSucceeded, `"Error":"BridgeUnavailable"`, 1, nil},
		{"retry with backoff, then success", spec{fails: 2, errType: "Transient"},
			`{"StartAt": "T", "States": {"T": {` + invokeTask + `, "Retry": [{"ErrorEquals": ["Other"], "MaxAttempts": 0},
			  {"ErrorEquals": ["Transient"], "IntervalSeconds": 1, "BackoffRate": 2, "MaxAttempts": 3}],
			  "ResultSelector": {"n.$": "$.Payload.n", "status.$": "$.StatusCode"}, "ResultPath": "$.result", "End": true}}}`,
			sfntypes.ExecutionStatusSucceeded, `"result":{"n":3,"status":200}`, 3, []time.Duration{time.Second, 2 * time.Second}},
		{"retries exhausted, then caught by States.ALL", spec{fails: 9, errType: "Transient"},
			`{"StartAt": "T", "States": {"T": {` + invokeTask + `, "Retry": [{"ErrorEquals": ["Transient"], "IntervalSeconds": 1, "MaxAttempts": 1}],
			  "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Caught"}], "End": true},
			  "Caught": {"Type": "Pass", "End": true}}}`,
			sfntypes.ExecutionStatusSucceeded, `attempt 2 failed`, 2, []time.Duration{time.Second}},
		{"States.TaskFailed matches a function error", spec{fails: 9, errType: "Custom"},
			`{"StartAt": "T", "States": {"T": {` + invokeTask + `, "Catch": [{"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.error", "Next": "Caught"}], "End": true},
			  "Caught": {"Type": "Succeed"}}}`,
			sfntypes.ExecutionStatusSucceeded, `"Error":"Custom"`, 1, nil},
		{"uncaught: the execution fails with the errorType", spec{fails: 9, errType: "Fatal"},
			`{"StartAt": "T", "States": {"T": {` + invokeTask + `, "End": true}}}`,
			sfntypes.ExecutionStatusFailed, `Fatal`, 1, nil},
		{"a function ARN as the resource answers its bare payload", spec{},
			`{"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "FN", "ResultPath": "$.r", "End": true}}}`,
			sfntypes.ExecutionStatusSucceeded, `"r":{"n":1,"ok":true}`, 1, nil},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := &function{name: fmt.Sprintf("sfn-task-%d-%d", time.Now().UnixNano(), i), fails: tt.fn.fails, errType: tt.fn.errType}
			serveFunction(t, ep, f)
			out := run(t, client, f.name, tt.definition, f.name)
			got := aws.ToString(out.Output) + aws.ToString(out.Error) + aws.ToString(out.Cause)
			if out.Status != tt.status || !strings.Contains(got, tt.output) {
				t.Errorf("%s %s; want %s with %s", out.Status, got, tt.status, tt.output)
			}
			calls := f.times()
			if len(calls) != tt.calls {
				t.Errorf("%d invocations, want %d", len(calls), tt.calls)
			}
			for j, gap := range tt.gaps {
				if j+1 < len(calls) && calls[j+1].Sub(calls[j]) < gap {
					t.Errorf("retry %d came after %s, want at least %s", j+1, calls[j+1].Sub(calls[j]), gap)
				}
			}
			if f.inputs[0] != `{"step":"s","x":1}` && !strings.Contains(tt.definition, `"Resource": "FN"`) {
				t.Errorf("the function got %s, not the Task's payload", f.inputs[0])
			}
		})
	}
}

// TestKumoStepFunctionsIgnoreFunctionErrors shows what sfntasks.go works around: a state
// machine created on the emulator directly (not through the endpoint) treats a Lambda
// function error as success, so its Catch never fires. When this test fails, the emulator
// raises function errors by itself and the rewriting of sfntasks.go can go.
func TestKumoStepFunctionsIgnoreFunctionErrors(t *testing.T) {
	ep := start(t)
	f := &function{name: fmt.Sprintf("sfn-quirk-%d", time.Now().UnixNano()), fails: 9, errType: "Boom"}
	serveFunction(t, ep, f)
	raw := sfn.NewFromConfig(localConfig(ep.URL), func(o *sfn.Options) {
		o.HTTPClient = bypass{ep: ep}
	})
	out := run(t, raw, f.name, `{"StartAt": "T", "States": {"T": {`+invokeTask+`,
		"Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}], "End": true}, "Caught": {"Type": "Fail", "Error": "Caught"}}}`, f.name)
	if out.Status != sfntypes.ExecutionStatusSucceeded || !strings.Contains(aws.ToString(out.Output), `"errorType":"Boom"`) {
		t.Errorf("the emulator's own engine: %s %s %s; it no longer ignores function errors", out.Status, aws.ToString(out.Output), aws.ToString(out.Error))
	}
}

// bypass marks a CreateStateMachine so that the endpoint leaves its definition alone.
type bypass struct{ ep *localstack.Endpoint }

func (b bypass) Do(req *http.Request) (*http.Response, error) {
	if req.Header.Get("X-Amz-Target") == "AWSStepFunctions.CreateStateMachine" {
		req.Header.Set(localstack.NoRewriteHeader, "1")
	}
	return http.DefaultClient.Do(req)
}

func TestRewriteRefusesTaskFailedWithTimeout(t *testing.T) {
	_, err := localstack.RewriteDefinition(`{"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
		"Parameters": {"FunctionName": "f"}, "TimeoutSeconds": 5, "Retry": [{"ErrorEquals": ["States.TaskFailed"]}], "End": true}}}`)
	if err == nil || !strings.Contains(err.Error(), "States.Timeout") {
		t.Errorf("err = %v", err)
	}
	def, err := localstack.RewriteDefinition(`{"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage", "End": true}}}`)
	var doc map[string]any
	if err != nil || json.Unmarshal([]byte(def), &doc) != nil || bytes.Contains([]byte(def), []byte("waitForTaskToken")) {
		t.Errorf("another integration is left alone: %s %v", def, err)
	}
}

// A Task's invocation is in flight, for the endpoint's watcher, while the function works on
// it: a supervisor that starts instances on demand (the dev stack's pool) sees the demand
// of Step Functions, and the meter counts each invocation once, with its duration.
func TestStepFunctionsTaskInvocationsAreWatched(t *testing.T) {
	ep := start(t)
	f := &function{name: fmt.Sprintf("sfn-watch-%d", time.Now().UnixNano()), fails: 1, errType: "Transient"}
	var mu sync.Mutex
	inFlight, took, idle := 0, 0, 0
	ep.Watch(func(ev localstack.RuntimeEvent) {
		if ev.Function != f.name {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		switch ev.Kind {
		case localstack.InvokeStarted:
			inFlight++
		case localstack.InvokeEnded:
			inFlight--
		case localstack.Took:
			took++
			if inFlight < 1 {
				idle++
			}
		}
	})
	serveFunction(t, ep, f)
	out := run(t, sfn.NewFromConfig(localConfig(ep.URL)), f.name, `{"StartAt": "T", "States": {"T": {`+invokeTask+`,
		"Retry": [{"ErrorEquals": ["Transient"], "IntervalSeconds": 1, "MaxAttempts": 1}], "End": true}}}`, f.name)
	if out.Status != sfntypes.ExecutionStatusSucceeded {
		t.Fatalf("%s %s", out.Status, aws.ToString(out.Error))
	}
	mu.Lock()
	defer mu.Unlock()
	if took != 2 || idle != 0 || inFlight != 0 {
		t.Errorf("%d invocations taken, %d of them with no invocation in flight for the watcher, %d left in flight; want 2, 0, 0", took, idle, inFlight)
	}
	m := ep.Meter().Snapshot()
	if m["lambda:"+f.name] != 2 || m["lambda-ms:"+f.name] < 2 {
		t.Errorf("metered %v invocations, %v ms; want 2, and their time", m["lambda:"+f.name], m["lambda-ms:"+f.name])
	}
}
