package devstack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/federation-gateway/gateway/localstack"
	"github.com/federation-gateway/gateway/shared/metrics"
)

// DefaultConcurrency is how many instances (processes) of a function the dev stack runs at
// most when the template sets no ReservedConcurrentExecutions for it. Lambda would run up
// to the account's limit; a laptop has a few cores.
const DefaultConcurrency = 4

// timeoutGrace is how long after an invocation's deadline its instance is killed: the
// emulator answers the invoker Sandbox.Timedout at the deadline itself, first.
const timeoutGrace = 250 * time.Millisecond

// Runtime is what a pool needs of the local endpoint; *localstack.Endpoint is one.
type Runtime interface {
	// RuntimeAPI is the AWS_LAMBDA_RUNTIME_API of one instance of a function.
	RuntimeAPI(function, instance string) string
	// FailInvocation answers an invocation with a function error for its instance.
	FailInvocation(ctx context.Context, function, requestID, errorType, message string) error
}

// process is one run of a function's bootstrap.
type process struct {
	cmd     *exec.Cmd
	started time.Time
	exited  chan struct{} // closed when the process has exited
	err     error         // why it exited; set before exited is closed
}

// instance is one execution environment of a function: one process, with a Runtime API
// path of its own. A process that exits is replaced by a new instance, never restarted
// under the same ID, so an event about a dead instance cannot be taken for its successor.
type instance struct {
	id       string
	proc     *process // nil until started
	polled   bool     // has asked for an invocation at least once
	polling  bool     // is asking now
	serving  string   // the request ID it works on, "" when idle
	deadline time.Time
	timer    *time.Timer // kills it when serving runs past the deadline
}

// pool runs a function's instances, as Lambda runs execution environments: one from the
// start, more on demand (an invocation waiting while none is free) up to max, each kept
// warm until the stack stops. Every invocation of the function reaches it through the
// local endpoint's watcher, whoever the invoker is (Stack.Invoke, a function calling a
// function, Step Functions, the AWS CLI), so it knows which instance serves which request:
// an instance that dies fails only that invocation (Runtime.ExitError, at once) and is
// replaced; one that runs past its deadline is killed, as Lambda stops a timed-out
// environment.
type pool struct {
	fn     Function
	binary string
	env    []string
	max    int
	rt     Runtime
	logs   *logSink

	mu        sync.Mutex
	ctx       context.Context // the pool's run; nil before run and once it ends
	seq       int
	instances map[string]*instance
	invoking  int           // Invoke API requests in flight
	delay     time.Duration // before the next replacement; grows while processes die at once
	tail      []string      // the last lines the function printed, for error messages
	wake      chan struct{} // closed and replaced whenever an instance changes
	wg        sync.WaitGroup
}

func newPool(fn Function, binary string, env []string, max int, rt Runtime, logs *logSink) *pool {
	return &pool{fn: fn, binary: binary, env: env, max: max, rt: rt, logs: logs,
		instances: map[string]*instance{}, wake: make(chan struct{})}
}

// run starts the first instance and keeps the pool until ctx ends, then stops every
// instance.
func (p *pool) run(ctx context.Context) {
	p.mu.Lock()
	p.ctx = ctx
	p.spawnLocked()
	p.mu.Unlock()
	<-ctx.Done()
	p.mu.Lock()
	p.ctx = nil // no instance starts after this: Wait sees every Add
	p.mu.Unlock()
	p.wg.Wait()
}

// spawnLocked starts one more instance, unless the pool is full or stopping.
func (p *pool) spawnLocked() {
	if p.ctx == nil || p.ctx.Err() != nil || len(p.instances) >= p.max {
		return
	}
	p.seq++
	inst := &instance{id: fmt.Sprint(p.seq)}
	p.instances[inst.id] = inst
	p.broadcastLocked()
	p.wg.Add(1)
	go p.keep(p.ctx, inst)
}

// keep runs one instance's process until it exits or ctx ends, then answers the
// invocation it was serving, if any, and starts its replacement.
func (p *pool) keep(ctx context.Context, inst *instance) {
	defer p.wg.Done()
	proc, err := p.start(inst)
	if err == nil {
		select {
		case <-proc.exited:
		case <-ctx.Done():
			p.stop(proc)
		}
	}

	p.mu.Lock()
	delete(p.instances, inst.id)
	if inst.timer != nil {
		inst.timer.Stop()
	}
	serving, deadline := inst.serving, inst.deadline
	if err == nil && time.Since(proc.started) > time.Second {
		p.delay = 0
	} else {
		p.delay = min(max(2*p.delay, 100*time.Millisecond), 5*time.Second)
	}
	delay := p.delay
	p.broadcastLocked()
	p.mu.Unlock()

	name := p.fn.LogicalID + "@" + inst.id
	switch {
	case err != nil:
		p.logs.system(name, "cannot start: "+err.Error())
	case ctx.Err() != nil:
		return
	default:
		p.logs.system(name, fmt.Sprintf("process exited (%v); replacing it", proc.err))
	}
	if serving != "" {
		errorType, msg := "Runtime.ExitError", fmt.Sprintf("RequestId: %s Error: Runtime exited with error: %v", serving, proc.err)
		if !deadline.IsZero() && time.Now().After(deadline) {
			errorType, msg = "Sandbox.Timedout", fmt.Sprintf("Task timed out after %.2f seconds", p.fn.Timeout.Seconds())
		}
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := p.rt.FailInvocation(fctx, p.fn.LogicalID, serving, errorType, msg); err != nil && ctx.Err() == nil {
			p.logs.system(name, err.Error())
		}
		cancel()
	}
	select {
	case <-time.After(delay):
	case <-ctx.Done():
		return
	}
	p.mu.Lock()
	p.spawnLocked()
	p.mu.Unlock()
}

func (p *pool) start(inst *instance) (*process, error) {
	cmd := exec.Command(p.binary)
	cmd.Env = append(append([]string(nil), p.env...), "AWS_LAMBDA_RUNTIME_API="+p.rt.RuntimeAPI(p.fn.LogicalID, inst.id))
	cmd.Dir = os.TempDir()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	setProcessGroup(cmd)
	proc := &process{cmd: cmd, exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	proc.started = time.Now()
	copied := make(chan struct{})
	go func() {
		p.copyLogs(p.fn.LogicalID+"@"+inst.id, stdout)
		close(copied)
	}()
	go func() {
		<-copied // the pipe is drained before Wait closes it
		proc.err = cmd.Wait()
		close(proc.exited)
	}()
	p.mu.Lock()
	inst.proc = proc
	p.mu.Unlock()
	return proc, nil
}

// stop ends a process: SIGTERM, as Lambda sends at shutdown, then SIGKILL.
func (p *pool) stop(proc *process) {
	terminate(proc.cmd)
	select {
	case <-proc.exited:
	case <-time.After(2 * time.Second):
		kill(proc.cmd)
		<-proc.exited
	}
}

// observe takes what the endpoint saw of this function.
func (p *pool) observe(ev localstack.RuntimeEvent) {
	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.broadcastLocked()
	switch ev.Kind {
	case localstack.InvokeStarted:
		p.invoking++
		p.scaleLocked()
		return
	case localstack.InvokeEnded:
		p.invoking--
		return
	}
	inst := p.instances[ev.Instance]
	if inst == nil {
		if ev.Kind == localstack.Took && ev.Instance != "" && ev.RequestID != "" {
			// The process exited as the invocation was handed to it.
			go func() {
				msg := fmt.Sprintf("RequestId: %s Error: Runtime exited before taking the invocation", ev.RequestID)
				_ = p.rt.FailInvocation(context.Background(), p.fn.LogicalID, ev.RequestID, "Runtime.ExitError", msg)
			}()
		}
		return
	}
	switch ev.Kind {
	case localstack.PollStarted:
		inst.polled, inst.polling, inst.serving = true, true, ""
		p.scaleLocked()
	case localstack.PollEnded:
		inst.polling = false
	case localstack.Took:
		inst.serving, inst.deadline = ev.RequestID, ev.Deadline
		if inst.timer != nil {
			inst.timer.Stop()
		}
		if !ev.Deadline.IsZero() {
			id := ev.RequestID
			inst.timer = time.AfterFunc(time.Until(ev.Deadline)+timeoutGrace, func() { p.timedOut(inst, id) })
		}
		p.scaleLocked()
	case localstack.Answered:
		if inst.serving == ev.RequestID {
			inst.serving = ""
			if inst.timer != nil {
				inst.timer.Stop()
			}
		}
	}
}

// scaleLocked starts instances until there is one for each invocation in flight, up to
// the limit. An instance that answered counts as free before it polls again: it does at
// once, and counting only the polling ones started instances on every brief gap.
func (p *pool) scaleLocked() {
	for n := len(p.instances); n < min(p.max, p.invoking); n = len(p.instances) {
		if p.spawnLocked(); len(p.instances) == n {
			return // stopping
		}
	}
}

// killBusy kills every instance serving an invocation now; keep replaces them.
func (p *pool) killBusy() {
	p.mu.Lock()
	var busy []*process
	for _, inst := range p.instances {
		if inst.serving != "" && inst.proc != nil {
			busy = append(busy, inst.proc)
		}
	}
	p.mu.Unlock()
	for _, proc := range busy {
		kill(proc.cmd)
	}
}

// timedOut kills the instance still serving an invocation past its deadline.
func (p *pool) timedOut(inst *instance, requestID string) {
	p.mu.Lock()
	proc := inst.proc
	still := inst.serving == requestID && p.instances[inst.id] == inst
	p.mu.Unlock()
	if still && proc != nil {
		p.logs.system(p.fn.LogicalID+"@"+inst.id, fmt.Sprintf("invocation %s timed out after %s; killing the process", requestID, p.fn.Timeout))
		kill(proc.cmd)
	}
}

func (p *pool) broadcastLocked() {
	close(p.wake)
	p.wake = make(chan struct{})
}

func (p *pool) copyLogs(name string, r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		p.mu.Lock()
		p.tail = append(p.tail, line)
		if len(p.tail) > 20 {
			p.tail = p.tail[len(p.tail)-20:]
		}
		p.mu.Unlock()
		p.logs.function(name, line)
	}
}

// ready waits until an instance of the function is up (it has polled for an invocation),
// so that an invocation will be served. It gives up after wait with the function's last
// output in the error: the emulator would otherwise hold the invocation 30 s.
func (p *pool) ready(ctx context.Context, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		p.mu.Lock()
		up := false
		for _, in := range p.instances {
			up = up || in.polled
		}
		wake := p.wake
		p.mu.Unlock()
		if up {
			return nil
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return fmt.Errorf("function %s is not running%s", p.fn.LogicalID, p.lastWords())
		}
	}
}

// size returns the instances running now.
func (p *pool) size() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.instances)
}

// lastWords is the function's last output, for an error message.
func (p *pool) lastWords() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.tail) == 0 {
		return ""
	}
	return "; its last output: " + strings.Join(p.tail[max(0, len(p.tail)-5):], " | ")
}

// errCrashed says the process serving an invocation exited before answering.
var errCrashed = errors.New("the function's process exited before answering")

// logSink writes the dev stack's and the functions' log lines, one writer for all, and
// sums the functions' metrics (their Embedded Metric Format lines) as CloudWatch would.
type logSink struct {
	mu      sync.Mutex
	w       io.Writer
	quiet   bool // drop the functions' own lines (tests)
	metrics *metrics.Aggregator
}

func (l *logSink) function(fn, line string) {
	l.metrics.Observe([]byte(line))
	if l.quiet {
		return
	}
	l.printf("%s | %s\n", fn, line)
}

func (l *logSink) system(fn, msg string) { l.printf("%s | devstack: %s\n", fn, msg) }

func (l *logSink) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, format, args...)
}

// hostTarget is the GOOS/GOARCH the dev stack builds functions for: this machine.
var hostTarget = [2]string{runtime.GOOS, runtime.GOARCH}
