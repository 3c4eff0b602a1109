// Package devstack runs the gateway outside AWS: the local AWS endpoint, the resources and
// functions that template.yaml declares, and its HTTP API, all derived from the template.
// Functions are the real bootstrap binaries, built for this machine and run as processes
// that serve the emulator's Lambda Runtime API, several per function as Lambda runs
// several execution environments (supervisor.go); every request reaches them as the same
// payload 2.0 event API Gateway would send.
//
// What the template declares and kumo lacks runs here as a local service: a goroutine of
// the stack started in Start with runService (the schedules, schedule.go; so would a
// DynamoDB stream poller or a WebSocket API), which invokes functions through
// Stack.Invoke only, from as many goroutines as it likes. Invocations that reach the
// Lambda API another way (a function calling a function, kumo's Step Functions, the AWS
// CLI) are served by the same instances: the local endpoint tells the supervisor about
// every one.
package devstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/federation-gateway/gateway/localstack"
	"github.com/federation-gateway/gateway/shared/config"
	"github.com/federation-gateway/gateway/shared/metrics"
)

// Options says what to run and where.
type Options struct {
	Template       string            // path of template.yaml
	Config         string            // path of the gateway configuration document
	StackName      string            // default "federation-gateway"
	Stage          string            // the Stage parameter, default "local"
	Overrides      map[string]string // further template parameter overrides
	EndpointAddr   string            // local AWS endpoint, default 127.0.0.1:4566
	APIAddr        string            // HTTP API, default 127.0.0.1:3000; "-" for none
	BuildDir       string            // where host builds go, default <template dir>/.build/host
	Functions      []string          // run only these functions (default: all)
	Log            io.Writer         // the stack's and the functions' log lines, default stderr
	QuietFunctions bool              // drop the functions' own log lines
	// Concurrency is how many instances of a function run at most when the template sets
	// no ReservedConcurrentExecutions for it; default DefaultConcurrency.
	Concurrency int
	// ReadyTimeout bounds the wait for every function to poll the Runtime API.
	ReadyTimeout time.Duration
	// ScheduleEvery, when set, fires every enabled schedule at this interval instead of
	// the template's rate, for development.
	ScheduleEvery time.Duration
	// ScheduleAtStart fires every enabled schedule once as soon as the stack is up, so a
	// developer does not wait a whole interval for the first sync.
	ScheduleAtStart bool
	// Prepare, when set, runs once the functions are up and before any schedule fires
	// (make run records the demo's bridge liquidity there, so the first reconciliation
	// reads seeded books); an error stops Start.
	Prepare func(ctx context.Context, s *Stack) error
	// Progress, when set, is told each step of Start as it begins ("building 5
	// functions", "built RouteFunction in 41.2s", ...), for a first run that compiles for
	// minutes.
	Progress func(step string)
	// Secrets are Secrets Manager secrets to store before the functions start: the
	// credentials of outside systems an operator would put there (name -> value).
	Secrets map[string]string
	// WebSocketAddr is where the template's WebSocket API is served (default
	// 127.0.0.1:3001; "-" for none); WebSocketIdle and WebSocketMaxAge shorten API
	// Gateway's 10-minute idle and 2-hour connection limits (tests).
	WebSocketAddr   string
	WebSocketIdle   time.Duration
	WebSocketMaxAge time.Duration
	// StreamPoll is how often the stream pollers read a stream that had nothing new
	// (default DefaultStreamPoll).
	StreamPoll time.Duration
}

// Stack is a running local gateway.
type Stack struct {
	// EndpointURL is the local AWS endpoint, APIURL the HTTP API and WebSocketURL the
	// WebSocket API ("" if not served).
	EndpointURL  string
	APIURL       string
	WebSocketURL string
	Template     *Template

	endpoint *localstack.Endpoint
	cloud    *Cloud
	pools    map[string]*pool
	api      *http.Server
	ws       *wsServer
	pollers  map[string]*streamPoller
	logs     *logSink
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// Start brings the stack up: validate the configuration, start the endpoint, create the
// resources, build and start the functions, wait until each polls, serve the HTTP API.
// On failure everything started is stopped again.
func Start(ctx context.Context, opts Options) (_ *Stack, err error) {
	opts = withDefaults(opts)
	logs := &logSink{w: opts.Log, quiet: opts.QuietFunctions, metrics: metrics.NewAggregator()}

	doc, err := os.ReadFile(opts.Config)
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	if _, err := config.Parse(doc); err != nil {
		return nil, fmt.Errorf("configuration %s: %w", opts.Config, err)
	}
	overrides := map[string]string{"Stage": opts.Stage, "GatewayConfig": string(doc), "DeletionProtection": "false"}
	for k, v := range opts.Overrides {
		overrides[k] = v
	}
	tmpl, err := LoadTemplate(opts.Template, opts.StackName, overrides)
	if err != nil {
		return nil, err
	}
	functions, err := selectFunctions(tmpl.Functions, opts.Functions)
	if err != nil {
		return nil, err
	}

	prog := newProgress(opts.Progress)
	defer prog.stop()
	// The build is the long part (minutes on a first run): the endpoint starts and the
	// resources are created meanwhile.
	ids := make([]string, len(functions))
	for i, fn := range functions {
		ids[i] = fn.LogicalID
	}
	prog.building(ids)
	buildCtx, stopBuild := context.WithCancel(ctx)
	type built struct {
		binaries map[string]string
		err      error
	}
	builds := make(chan built, 1)
	go func(functions []Function) { // its own copy: Start points functions at the WebSocket API meanwhile
		b, err := build(buildCtx, tmpl, functions, opts.BuildDir, prog.built)
		builds <- built{b, err}
	}(functions)
	defer func() {
		stopBuild()
		if builds != nil {
			<-builds
		}
	}()

	prog.step("starting the local AWS endpoint on " + opts.EndpointAddr)
	ep, err := localstack.Start(opts.EndpointAddr)
	if err != nil {
		return nil, fmt.Errorf("%w (is another `make run` or LocalStack running?)", err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	s := &Stack{EndpointURL: ep.URL, Template: tmpl, endpoint: ep, pools: map[string]*pool{}, logs: logs, cancel: cancel}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	s.cloud = NewCloud(ep.URL)
	prog.step("creating the template's table, parameters and secrets")
	if err := s.cloud.Provision(ctx, tmpl); err != nil {
		return nil, err
	}
	for name, value := range opts.Secrets {
		if err := s.cloud.PutSecret(ctx, name, value); err != nil {
			return nil, err
		}
	}
	if functions, err = s.listenWebSocket(opts, functions); err != nil {
		return nil, err
	}
	b := <-builds
	builds = nil
	if b.err != nil {
		return nil, b.err
	}
	binaries := b.binaries
	prog.step("starting the functions")
	for _, fn := range functions {
		if err := s.cloud.Register(ctx, fn); err != nil {
			return nil, err
		}
		limit := opts.Concurrency
		if fn.ReservedConcurrency > 0 {
			limit = fn.ReservedConcurrency
		}
		s.pools[fn.LogicalID] = newPool(fn, binaries[fn.LogicalID], FunctionEnv(fn, ep.URL), limit, ep, logs)
	}
	ep.Watch(func(ev localstack.RuntimeEvent) {
		if p, ok := s.pools[ev.Function]; ok {
			p.observe(ev)
		}
	})
	for _, p := range s.pools {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			p.run(runCtx)
		}()
	}
	for _, fn := range functions {
		if err := s.pools[fn.LogicalID].ready(ctx, opts.ReadyTimeout); err != nil {
			return nil, fmt.Errorf("start: %w", err)
		}
	}

	if opts.APIAddr != "-" {
		ln, err := net.Listen("tcp", opts.APIAddr)
		if err != nil {
			return nil, fmt.Errorf("HTTP API: listen on %s: %w", opts.APIAddr, err)
		}
		s.APIURL = "http://" + ln.Addr().String()
		s.api = &http.Server{Handler: newHTTPAPI(tmpl, s.Invoke, logs), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = s.api.Serve(ln) }()
	}
	if s.ws != nil {
		s.ws.serve()
	}
	if err := s.startStreams(runCtx, functions, opts.StreamPoll); err != nil {
		return nil, err
	}
	if opts.Prepare != nil {
		if err := opts.Prepare(ctx, s); err != nil {
			return nil, err
		}
	}
	s.startSchedules(runCtx, functions, opts.ScheduleEvery, opts.ScheduleAtStart)
	return s, nil
}

func withDefaults(o Options) Options {
	if o.StackName == "" {
		o.StackName = "federation-gateway"
	}
	if o.Stage == "" {
		o.Stage = "local"
	}
	if o.EndpointAddr == "" {
		o.EndpointAddr = localstack.DefaultAddr
	}
	if o.APIAddr == "" {
		o.APIAddr = "127.0.0.1:3000"
	}
	if o.WebSocketAddr == "" {
		o.WebSocketAddr = "127.0.0.1:3001"
	}
	if o.BuildDir == "" {
		o.BuildDir = filepath.Join(filepath.Dir(o.Template), ".build", "host")
	}
	if o.Log == nil {
		o.Log = os.Stderr
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 30 * time.Second
	}
	return o
}

func selectFunctions(all []Function, names []string) ([]Function, error) {
	if len(names) == 0 {
		return all, nil
	}
	var out []Function
	for _, n := range names {
		found := false
		for _, fn := range all {
			if fn.LogicalID == n {
				out = append(out, fn)
				found = true
			}
		}
		if !found {
			var ids []string
			for _, fn := range all {
				ids = append(ids, fn.LogicalID)
			}
			return nil, fmt.Errorf("no function %q in the template; it has %s", n, strings.Join(ids, ", "))
		}
	}
	return out, nil
}

// FunctionEnv is the environment Lambda gives a function: the template's variables, the
// Lambda runtime's own, and the local endpoint for every AWS client.
func FunctionEnv(fn Function, endpoint string) []string {
	env := []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"TZ=:UTC",
		"AWS_LAMBDA_RUNTIME_API=" + strings.TrimPrefix(endpoint, "http://") + "/_runtime/" + fn.LogicalID,
		"AWS_LAMBDA_FUNCTION_NAME=" + fn.LogicalID,
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		fmt.Sprintf("AWS_LAMBDA_FUNCTION_MEMORY_SIZE=%d", fn.MemoryMB),
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/" + fn.LogicalID,
		"_HANDLER=bootstrap",
		"AWS_REGION=" + localRegion,
		"AWS_DEFAULT_REGION=" + localRegion,
		"AWS_ACCESS_KEY_ID=test",
		"AWS_SECRET_ACCESS_KEY=test",
		"AWS_ENDPOINT_URL=" + endpoint,
		"AWS_EC2_METADATA_DISABLED=true",
	}
	for k, v := range fn.Env {
		env = append(env, k+"="+v)
	}
	return env
}

// build builds each function's bootstrap for this machine the way its BuildMethod says:
// the Makefile's build-<LogicalID> target (what `sam build` runs) or go build of CodeUri,
// all at once, telling built as each one is done.
func build(ctx context.Context, t *Template, functions []Function, dir string, built func(string, time.Duration)) (map[string]string, error) {
	start := time.Now()
	binaries := map[string]string{}
	errs := make([]error, len(functions))
	var wg sync.WaitGroup
	for i, fn := range functions {
		out, err := filepath.Abs(filepath.Join(dir, fn.LogicalID))
		if err != nil {
			return nil, err
		}
		binaries[fn.LogicalID] = filepath.Join(out, "bootstrap")
		var cmd *exec.Cmd
		if fn.BuildMethod == "makefile" {
			cmd = exec.CommandContext(ctx, "make", "--no-print-directory", "build-"+fn.LogicalID, "ARTIFACTS_DIR="+out,
				"GOOS="+hostTarget[0], "GOARCH="+hostTarget[1])
		} else {
			cmd = exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-o", filepath.Join(out, "bootstrap"), "./"+filepath.Clean(fn.CodeURI))
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		}
		cmd.Dir = t.Dir
		wg.Add(1)
		go func() {
			defer wg.Done()
			if b, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("build %s: %v\n%s", fn.LogicalID, err, b)
				return
			}
			built(fn.LogicalID, time.Since(start))
		}()
	}
	wg.Wait()
	return binaries, errors.Join(errs...)
}

// Invoke invokes a function through the Lambda API and returns its response payload. It
// is the one way the dev stack's services invoke functions, safe to call from any number
// of goroutines: invocations run in parallel on the function's instances, as on Lambda.
// It fails fast, with the function's last output, when the function cannot start, when
// the process serving the invocation dies (it is replaced), and when the invocation times
// out (its process is killed and replaced, as Lambda replaces a timed-out environment).
func (s *Stack) Invoke(ctx context.Context, function string, payload []byte) ([]byte, error) {
	p, ok := s.pools[function]
	if !ok {
		return nil, fmt.Errorf("no function %s is running", function)
	}
	if err := p.ready(ctx, 10*time.Second); err != nil {
		return nil, err
	}
	out, err := s.cloud.lambda.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(function), Payload: payload})
	if err != nil {
		return nil, fmt.Errorf("invoke %s: %w", function, err)
	}
	if out.FunctionError != nil {
		var fe struct {
			ErrorType    string `json:"errorType"`
			ErrorMessage string `json:"errorMessage"`
		}
		_ = json.Unmarshal(out.Payload, &fe)
		switch fe.ErrorType {
		case "Sandbox.Timedout":
			return nil, fmt.Errorf("%s timed out after %s; its process was replaced", function, p.fn.Timeout)
		case "Runtime.ExitError":
			return nil, fmt.Errorf("%s: %w (%s)%s", function, errCrashed, fe.ErrorMessage, p.lastWords())
		}
		return nil, fmt.Errorf("%s failed: %s: %s", function, fe.ErrorType, fe.ErrorMessage)
	}
	return out.Payload, nil
}

// Instances returns how many instances (processes) of a function run now.
func (s *Stack) Instances(function string) int {
	if p, ok := s.pools[function]; ok {
		return p.size()
	}
	return 0
}

// runService runs a local service until the stack closes.
func (s *Stack) runService(ctx context.Context, run func(ctx context.Context)) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		run(ctx)
	}()
}

// Close stops the APIs, the functions and the endpoint.
func (s *Stack) Close() {
	if s.ws != nil {
		s.ws.close()
	}
	if s.api != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_ = s.api.Shutdown(ctx)
		cancel()
	}
	s.cancel()
	s.wg.Wait()
	_ = s.endpoint.Close()
}

// Kill kills the processes of a function that are serving an invocation now, at once, as
// a crash would: each of their invocations fails with Runtime.ExitError and each instance
// is replaced. Every busy one, since which of them made a given outside request is not
// known.
func (s *Stack) Kill(function string) {
	if p, ok := s.pools[function]; ok {
		p.killBusy()
	}
}

// Endpoint returns the stack's local AWS endpoint.
func (s *Stack) Endpoint() *localstack.Endpoint { return s.endpoint }

// Metrics returns the functions' metrics so far: their Embedded Metric Format lines,
// summed by metric and dimensions (what GET /_local/metrics shows).
func (s *Stack) Metrics() []metrics.Series { return s.logs.metrics.Snapshot() }

// Tail returns the last lines a function printed, from all its instances.
func (s *Stack) Tail(function string) []string {
	p, ok := s.pools[function]
	if !ok {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.tail...)
}
