package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/federation-gateway/gateway/infra/devstack"
	"github.com/federation-gateway/gateway/localstack"
	"github.com/federation-gateway/gateway/shared/bridge"
)

// subject is one binary under measurement: a function of the template or the baseline.
type subject struct {
	Name    string            // the function's logical ID, or "hello"
	Host    string            // its bootstrap built for this machine
	Deploy  string            // its bootstrap as `make build` builds it
	Size    int64             // of Deploy, in bytes
	Fn      devstack.Function // as the template declares it: memory, environment
	Event   []byte            // what the first-response figure invokes it with
	EventOf string            // where Event comes from, for the report
}

// figure is what one run measures, from the exec of the process.
type figure int

const (
	firstPoll     figure = iota // until its first Runtime API poll for an invocation
	firstResponse               // until a lambda.Invoke, sent once it polls, returns
	// The same invocation sent again once the first returned, timed from its sending: what
	// the request's own work costs in a warm process, beside which the first response's
	// excess is the cold start's.
	warmResponse
)

// runner runs subjects as Lambda runs a bootstrap: a process serving the local endpoint's
// Runtime API, in the environment Lambda gives it.
type runner struct {
	ep      *localstack.Endpoint
	cloud   *devstack.Cloud
	timeout time.Duration // of one run
	seq     int           // runs so far, for fresh function names
}

// measure runs s once, under a function name of its own so that no earlier process's poll
// counts, and returns the time from exec to what f names; for firstResponse also the
// warmResponse of the same process. The process is killed at the end.
func (r *runner) measure(ctx context.Context, s subject, f figure) (time.Duration, time.Duration, error) {
	r.seq++
	name := fmt.Sprintf("%s-bench-%d", s.Name, r.seq)
	fn := s.Fn
	fn.LogicalID, fn.Timeout = name, r.timeout
	if err := r.cloud.Register(ctx, fn); err != nil {
		return 0, 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()

	p, err := start(s.Host, devstack.FunctionEnv(fn, r.ep.URL))
	if err != nil {
		return 0, 0, fmt.Errorf("%s: start %s: %w", s.Name, s.Host, err)
	}
	defer p.stop()
	go func() {
		select {
		case <-p.exited: // a process that dies ends the wait at once, not at the timeout
			cancel()
		case <-ctx.Done():
		}
	}()

	if err := r.ep.WaitPolling(ctx, name); err != nil {
		return 0, 0, r.failure(ctx, p, s.Name, "poll the Runtime API", err)
	}
	if f == firstPoll {
		return time.Since(p.started), 0, nil
	}
	if err := r.invoke(ctx, p, s, name); err != nil {
		return 0, 0, err
	}
	elapsed := time.Since(p.started)
	sent := time.Now()
	if err := r.invoke(ctx, p, s, name); err != nil {
		return 0, 0, fmt.Errorf("again: %w", err)
	}
	return elapsed, time.Since(sent), nil
}

// invoke sends s its event and checks the answer.
func (r *runner) invoke(ctx context.Context, p *process, s subject, name string) error {
	out, err := r.cloud.Lambda().Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(name), Payload: s.Event})
	if err != nil {
		return r.failure(ctx, p, s.Name, "answer "+s.EventOf, err)
	}
	if out.FunctionError != nil && !namedAnswer(out.Payload) {
		return fmt.Errorf("%s: %s failed: %s", s.Name, s.EventOf, out.Payload)
	}
	// An HTTP function that answers 5xx did not do its real work (a missing table, say):
	// its time would flatter it.
	var resp struct {
		StatusCode int `json:"statusCode"`
	}
	if json.Unmarshal(out.Payload, &resp) == nil && resp.StatusCode >= 500 {
		return fmt.Errorf("%s: %s answered %d: %s", s.Name, s.EventOf, resp.StatusCode, out.Payload)
	}
	return nil
}

// process is one run of a bootstrap.
type process struct {
	cmd     *exec.Cmd
	output  bytes.Buffer // stdout and stderr; read it only once exited is closed
	started time.Time
	exited  chan struct{}
	err     error // why it exited; set before exited is closed
}

func start(path string, env []string) (*process, error) {
	p := &process{cmd: exec.Command(path), exited: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Dir = os.TempDir()
	p.cmd.Stdout = &p.output
	p.cmd.Stderr = &p.output
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// stop kills the process, as Lambda ends a sandbox it no longer needs, and waits for it.
func (p *process) stop() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// failure explains why a run did not get to what it waited for: the process exited, or the
// time ran out; with the process's last output either way.
func (r *runner) failure(ctx context.Context, p *process, name, what string, err error) error {
	var why string
	select {
	case <-p.exited:
		why = fmt.Sprintf("its process exited (%v) before it could %s", p.err, what)
	default:
		p.stop()
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			why = fmt.Sprintf("it did not %s within %s (-timeout)", what, r.timeout)
		} else {
			why = fmt.Sprintf("%s: %v", what, err)
		}
	}
	return fmt.Errorf("%s: %s%s", name, why, lastLines(p.output.String(), 5))
}

// lastLines is the end of a process's output, for an error message.
func lastLines(out string, n int) string {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) == 1 && lines[0] == "" {
		return "; it printed nothing"
	}
	return "; its last output:\n    " + strings.Join(lines[max(0, len(lines)-n):], "\n    ")
}

// namedAnswer reports whether a function error is one of the bridge saga's named task
// errors: the task function's sample event names a transfer that does not exist, and
// BridgeInvalidState, after it read the table, is its real answer.
func namedAnswer(payload []byte) bool {
	var fe struct {
		ErrorType string `json:"errorType"`
	}
	return json.Unmarshal(payload, &fe) == nil && slices.Contains(bridge.TaskErrorNames, fe.ErrorType)
}
