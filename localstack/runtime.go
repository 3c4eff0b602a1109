package localstack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Lambda runs several execution environments of a function at once, and so does the dev
// stack: several processes of its bootstrap. kumo hands each invocation to whichever
// process polls its Runtime API first, under /_runtime/<function>, and says nothing about
// which one took it. So each process gets a Runtime API of its own,
// /_runtime/<function>@<instance> (RuntimeAPI), which the endpoint serves as kumo's
// /_runtime/<function> while it tells a watcher what the instance does: when it polls,
// which request ID it took (the Lambda-Runtime-Aws-Request-Id of its "next" answer) and
// when it answered. The Lambda Invoke API is watched too, so a supervisor sees the demand
// from every caller: the dev stack, a function calling a function, kumo's Step Functions.
//
// Invoke API calls pass through watchInvoke: the one place that sees every invocation of a
// function through the endpoint and its outcome.

// RuntimeEventKind says what happened.
type RuntimeEventKind int

// What a watcher is told.
const (
	// InvokeStarted: a Lambda Invoke API request for Function came in.
	InvokeStarted RuntimeEventKind = iota
	// InvokeEnded: that request was answered (or its caller went away).
	InvokeEnded
	// PollStarted: Instance asks for its next invocation.
	PollStarted
	// PollEnded: that request ended, with an invocation (Took comes first) or without one
	// (the instance went away).
	PollEnded
	// Took: Instance received the invocation RequestID, due by Deadline.
	Took
	// Answered: Instance posted the response or the error of RequestID.
	Answered
)

// RuntimeEvent is something a function instance or an invoker did through the endpoint.
type RuntimeEvent struct {
	Kind      RuntimeEventKind
	Function  string
	Instance  string    // "" for Invoke events and for processes polling /_runtime/<function>
	RequestID string    // for Took and Answered
	Deadline  time.Time // for Took
}

// RuntimeAPI returns the AWS_LAMBDA_RUNTIME_API value (host:port/path, no scheme) of one
// instance of a function.
func (e *Endpoint) RuntimeAPI(function, instance string) string {
	return e.Addr + "/_runtime/" + function + "@" + instance
}

// Watch makes f receive every RuntimeEvent, from the goroutines serving the requests; f
// must not block. One watcher at a time: a later call replaces it.
func (e *Endpoint) Watch(f func(RuntimeEvent)) {
	e.runtime.mu.Lock()
	e.runtime.watcher = f
	e.runtime.mu.Unlock()
}

// FailInvocation answers an invocation with a function error, as the Lambda service does
// when the execution environment dies before the function answers: the invoker gets
// X-Amz-Function-Error with {"errorType", "errorMessage"}. An invocation already answered
// or timed out is left as it is.
func (e *Endpoint) FailInvocation(ctx context.Context, function, requestID, errorType, message string) error {
	body, err := json.Marshal(map[string]string{"errorType": errorType, "errorMessage": message})
	if err != nil {
		return err
	}
	url := e.emulator.URL + "/_runtime/" + function + "/2018-06-01/runtime/invocation/" + requestID + "/error"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Lambda-Runtime-Function-Error-Type", errorType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("fail invocation %s of %s: %w", requestID, function, err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("fail invocation %s of %s: status %d", requestID, function, resp.StatusCode)
	}
	return nil
}

// WaitPolling returns once a process is polling the Runtime API for the function's next
// invocation, which is when an invoke will be picked up at once.
func (e *Endpoint) WaitPolling(ctx context.Context, function string) error {
	return e.runtime.wait(ctx, function)
}

// Polling reports whether a process is polling for the function's next invocation now.
func (e *Endpoint) Polling(function string) bool { return e.runtime.count(function) > 0 }

// runtimeWatch maps instance paths to kumo's, counts the polls in flight per function and
// tells the watcher what happens.
type runtimeWatch struct {
	mu      sync.Mutex
	polls   map[string]int
	known   map[string]bool // functions kumo's Runtime API has heard of
	changed chan struct{}   // closed and replaced on every change of polls
	watcher func(RuntimeEvent)
}

func newRuntimeWatch() *runtimeWatch {
	return &runtimeWatch{polls: map[string]int{}, known: map[string]bool{}, changed: make(chan struct{})}
}

func (rw *runtimeWatch) emit(ev RuntimeEvent) {
	rw.mu.Lock()
	f := rw.watcher
	rw.mu.Unlock()
	if f != nil {
		f(ev)
	}
}

func (rw *runtimeWatch) addPoll(fn string, d int) {
	rw.mu.Lock()
	rw.polls[fn] += d
	close(rw.changed)
	rw.changed = make(chan struct{})
	rw.mu.Unlock()
}

func (rw *runtimeWatch) count(fn string) int {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	return rw.polls[fn]
}

func (rw *runtimeWatch) wait(ctx context.Context, fn string) error {
	for {
		rw.mu.Lock()
		n, ch := rw.polls[fn], rw.changed
		rw.mu.Unlock()
		if n > 0 {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("wait for %s to poll the Runtime API: %w", fn, ctx.Err())
		}
	}
}

// register makes sure kumo knows fn as a function with a Runtime API before a poll of it
// is counted. kumo learns of a function when a "next" poll reaches it, and until then
// answers an invocation with a 502 "has no runtime handler" instead of waiting for a
// process; a poll is counted here before it travels on to kumo, so an invocation made as
// soon as WaitPolling returned could land in that gap (TestRuntimeRegisteredBeforePollCounted).
// A result posted for an unknown request ID registers the function too, and does nothing
// else, so one is posted, synchronously, the first time the function polls.
func (rw *runtimeWatch) register(fn string, next http.Handler) {
	rw.mu.Lock()
	known := rw.known[fn]
	rw.mu.Unlock()
	if known {
		return
	}
	probe := httptest.NewRequest(http.MethodPost, "/_runtime/"+fn+"/2018-06-01/runtime/invocation/registration-probe/response", strings.NewReader("{}"))
	rec := httptest.NewRecorder()
	next.ServeHTTP(rec, probe)
	if rec.Code < 300 {
		rw.mu.Lock()
		rw.known[fn] = true
		rw.mu.Unlock()
	}
}

// handler serves the Runtime API and the Invoke API through next, watching both, and
// everything else straight through.
func (rw *runtimeWatch) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fn, ok := invokedFunction(r); ok {
			rw.watchInvoke(w, r, fn, next)
			return
		}
		rest, ok := strings.CutPrefix(r.URL.Path, "/_runtime/")
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		target, tail, _ := strings.Cut(rest, "/")
		fn, instance, _ := strings.Cut(target, "@")
		if instance != "" {
			r = r.Clone(r.Context())
			r.URL.Path = "/_runtime/" + fn + "/" + tail
			r.URL.RawPath = ""
		}
		switch {
		case r.Method == http.MethodGet && tail == "2018-06-01/runtime/invocation/next":
			rw.register(fn, next)
			rw.addPoll(fn, 1)
			defer rw.addPoll(fn, -1)
			rw.emit(RuntimeEvent{Kind: PollStarted, Function: fn, Instance: instance})
			defer rw.emit(RuntimeEvent{Kind: PollEnded, Function: fn, Instance: instance})
			next.ServeHTTP(&nextWriter{ResponseWriter: w, took: func(h http.Header) {
				ev := RuntimeEvent{Kind: Took, Function: fn, Instance: instance, RequestID: h.Get("Lambda-Runtime-Aws-Request-Id")}
				if ms, err := strconv.ParseInt(h.Get("Lambda-Runtime-Deadline-Ms"), 10, 64); err == nil {
					ev.Deadline = time.UnixMilli(ms)
				}
				rw.emit(ev)
			}}, r)
		case r.Method == http.MethodPost && strings.HasPrefix(tail, "2018-06-01/runtime/invocation/"):
			id, result, _ := strings.Cut(strings.TrimPrefix(tail, "2018-06-01/runtime/invocation/"), "/")
			if result != "response" && result != "error" {
				next.ServeHTTP(w, r)
				return
			}
			// Told before the instance hears back, so before it can poll again.
			next.ServeHTTP(&statusWriter{ResponseWriter: w, written: func(status int) {
				if status < 300 {
					rw.emit(RuntimeEvent{Kind: Answered, Function: fn, Instance: instance, RequestID: id})
				}
			}}, r)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// watchInvoke passes an Invoke API request through, telling the watcher it came and went.
func (rw *runtimeWatch) watchInvoke(w http.ResponseWriter, r *http.Request, fn string, next http.Handler) {
	rw.emit(RuntimeEvent{Kind: InvokeStarted, Function: fn})
	defer rw.emit(RuntimeEvent{Kind: InvokeEnded, Function: fn})
	next.ServeHTTP(w, r)
}

// invokedFunction returns the function name of a Lambda Invoke API request:
// POST /2015-03-31/functions/{name, ARN or name:qualifier}/invocations.
func invokedFunction(r *http.Request) (string, bool) {
	if r.Method != http.MethodPost {
		return "", false
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/2015-03-31/functions/")
	if !ok {
		return "", false
	}
	name, ok := strings.CutSuffix(rest, "/invocations")
	if !ok || name == "" || strings.Contains(name, "/") {
		return "", false
	}
	if _, after, ok := strings.Cut(name, ":function:"); ok {
		name = after
	}
	name, _, _ = strings.Cut(name, ":")
	return name, true
}

// nextWriter reports the invocation a "next" answer carries before any of it is written,
// so the watcher knows who holds the invocation before its process can answer or die.
type nextWriter struct {
	http.ResponseWriter
	took    func(http.Header)
	written bool
}

func (w *nextWriter) WriteHeader(status int) {
	if !w.written {
		w.written = true
		if status == http.StatusOK && w.Header().Get("Lambda-Runtime-Aws-Request-Id") != "" {
			w.took(w.Header())
		}
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *nextWriter) Write(b []byte) (int, error) {
	if !w.written {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController (the proxy's flushes) reach the connection.
func (w *nextWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// statusWriter tells written the status of a response before it is sent.
type statusWriter struct {
	http.ResponseWriter
	written func(status int)
	status  int
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
		w.written(status)
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
