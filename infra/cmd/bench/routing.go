package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/a2aproject/a2a-go/v2/a2a"
	"github.com/a2aproject/a2a-go/v2/a2aclient"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go/middleware"

	"github.com/federation-gateway/gateway/infra/demo"
	"github.com/federation-gateway/gateway/infra/devstack"
	"github.com/federation-gateway/gateway/infra/localtest"
	"github.com/federation-gateway/gateway/shared/config"
	"github.com/federation-gateway/gateway/shared/delivery"
	"github.com/federation-gateway/gateway/shared/directory"
	"github.com/federation-gateway/gateway/shared/dynamo"
	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/identity"
	"github.com/federation-gateway/gateway/shared/logs"
	"github.com/federation-gateway/gateway/shared/outbound"
	"github.com/federation-gateway/gateway/shared/routing"
	"github.com/federation-gateway/gateway/shared/smsecret"
)

// The routing section's fixed settings.
const (
	// routeSender is a demo agent with a did:key, listed by alpha, that signs its own
	// credentials.
	routeSender = "acme/weather-bot"
	// raisedRate is the policy's agent_rate and global_rate, and the local HTTP API's
	// throttling, while the section runs: high enough that no limit is what it measures.
	raisedRate = 1_000_000
	// routeWarmup requests of each path come before the timed ones: connections, the
	// functions' first invocations, the agents' copy of the gateway's keys.
	routeWarmup = 20
	// maxWarmupErrors is how many warm-up requests of a path may fail before the section
	// gives up.
	maxWarmupErrors = 3
	// routeConcurrency is the senders in flight in the in-process throughput run.
	routeConcurrency = 8
	// The time limits of the measured parts; a part cut short reports what it completed.
	latencyLimit    = 40 * time.Second
	throughputLimit = 20 * time.Second
	setupLimit      = 3 * time.Minute // build, start, sync: a cold Go build cache is slow
	// tokenTTL outlives every part: the tokens are signed before the clock starts.
	tokenTTL = 10 * time.Minute
	// maxOpsPerMessage is the goal of DynamoDB calls per routed message: the admission
	// before the delivery, the record after it (the parties' records come from the
	// Router's cache once it has read them).
	maxOpsPerMessage = 2
	// minMsgsPerSecond is the goal of the throughput runs: the gateway delivers at least
	// the policy's default global_rate of 1,000 messages a minute.
	minMsgsPerSecond = 1000.0 / 60
)

// stackSenders are the concurrent senders of the local stack's throughput runs.
var stackSenders = []int{1, 2, 4, 8}

// The latency section's paths, in the tables' order.
const (
	pathDirect    = "direct a2a SendMessage"
	pathInProcess = "routed, in-process Router"
	pathStackHop  = "local stack, GET jwks.json"
	pathStack     = "routed, local stack"
)

// routingResults is what the routing section measured.
type routingResults struct {
	Sender, Target string // human-readable IDs of the demo agents
	Requests       int    // asked for, per path, after routeWarmup
	Rounds         int    // of the latency runs completed within latencyLimit
	Latency        []pathLatency
	// DynamoDB calls of the in-process Router over Latency's in-process requests, and
	// the attempts its SDK made for them (more than the calls when it retried).
	Calls     map[string]int
	Attempts  int
	CallsOver int
	// Where an in-process routed message's time went, summed over the same requests.
	DynamoTime   map[string]time.Duration
	DeliveryTime time.Duration
	Throughput   []throughputRun
	Cost         costResults
	Shards       []shardRun
	Phases       []phase
}

// pathLatency is the sequential requests of one path.
type pathLatency struct {
	Name    string
	Samples []time.Duration // of the requests that succeeded
	Errors  map[string]int  // the requests that failed, by error
}

// throughputRun is a fixed count of messages sent by routeConcurrency senders.
type throughputRun struct {
	Name       string
	Sent       int // attempted before the count or the time limit was reached
	Delivered  int
	Errors     map[string]int // by error, e.g. "HTTP 409: ..."
	Took       time.Duration
	CutShort   bool // the time limit ended it
	Count      int  // asked for
	Concurrent int
	Instances  int // of the route function after the run; 0 in-process
}

// routingBench measures one routed message three ways over the same demo federation
// and table: straight to the agent with a2a-go, through the in-process Router, and
// through the local stack (HTTP API, the route function as a Lambda process).
type routingBench struct {
	fed      *demo.Federation
	stack    *devstack.Stack
	router   *routing.Router
	ops      *localtest.Ops
	timer    *opTimer
	attempts *attemptCounter
	deliver  *timedDeliverer
	direct   *a2aclient.Client
	http     *http.Client
	audience string
	sender   *demo.Agent
	target   federation.Agent
	run      string // makes the message IDs of this run unique
	dir      string // the stack's configuration and builds
	seq      atomic.Int64
	results  routingResults
	// functions are those the stack runs; nil means SyncFunction and RouteFunction.
	functions []string
}

// benchRouting runs the routing section: requests sequential requests of each path for
// their latency, and messages messages by routeConcurrency senders for throughput.
func benchRouting(ctx context.Context, tmplPath string, requests, messages int) (routingResults, error) {
	b := &routingBench{run: fmt.Sprint(time.Now().UnixNano()), results: routingResults{Sender: routeSender, Requests: requests}}
	defer b.close()
	setup, cancel := context.WithTimeout(ctx, setupLimit)
	defer cancel()
	if err := b.setUp(setup, tmplPath); err != nil {
		return b.results, err
	}
	if err := b.warmUp(ctx); err != nil {
		return b.results, err
	}
	start := time.Now()
	if err := b.latency(ctx, requests); err != nil {
		return b.results, err
	}
	b.phase(fmt.Sprintf("latency: %d sequential requests of each path, interleaved", requests), start)

	// The local stack's curve shows its functions' instances at work: one sender keeps
	// one busy, eight need the default four and more.
	runs := []struct {
		name    string
		senders int
		send    func(context.Context, routeCall) error
	}{{pathInProcess, routeConcurrency, b.routeInProcess}}
	for _, n := range stackSenders {
		runs = append(runs, struct {
			name    string
			senders int
			send    func(context.Context, routeCall) error
		}{pathStack, n, b.routeStack})
	}
	for _, t := range runs {
		start := time.Now()
		progress("routing: throughput, %s: %d messages, %d senders", t.name, messages, t.senders)
		run, err := b.throughput(ctx, t.name, messages, t.senders, t.send)
		if err != nil {
			return b.results, err
		}
		if t.name == pathStack {
			run.Instances = b.stack.Instances("RouteFunction")
		}
		b.results.Throughput = append(b.results.Throughput, run)
		b.phase(fmt.Sprintf("throughput, %s: %d messages, %d senders", t.name, messages, t.senders), start)
	}

	start = time.Now()
	if err := b.cost(ctx); err != nil {
		return b.results, err
	}
	b.results.Cost.Billed = billed(b.results.Latency)
	b.phase(fmt.Sprintf("cost: %d messages, every item sized", costMessages), start)
	start = time.Now()
	if err := b.globalLimit(ctx); err != nil {
		return b.results, err
	}
	b.phase(fmt.Sprintf("global limit: %d runs", len(b.results.Shards)), start)
	return b.results, nil
}

func (b *routingBench) phase(name string, start time.Time) {
	b.results.Phases = append(b.results.Phases, phase{Name: name, Took: time.Since(start)})
}

// setUp starts the demo federation and the local stack that federates it, syncs the
// directory once through the sync function, and builds the in-process Router over the
// stack's table, signing with the stack's key.
func (b *routingBench) setUp(ctx context.Context, tmplPath string) error {
	// The agents check the gateway's signature against its keys, so the demo needs the
	// API's URL before the stack exists: take a free port and give it to both.
	apiAddr, err := freeAddr()
	if err != nil {
		return err
	}
	apiURL := "http://" + apiAddr
	if b.functions == nil {
		b.functions = []string{"SyncFunction", "RouteFunction"}
	}
	start := time.Now()
	if b.fed, err = demo.Start(ctx, demo.Options{GatewayURL: apiURL}); err != nil {
		return fmt.Errorf("demo federation: %w", err)
	}
	doc, err := config.Parse(b.fed.Config())
	if err != nil {
		return fmt.Errorf("demo configuration: %w", err)
	}
	doc.Policy.AgentRate, doc.Policy.GlobalRate = raisedRate, raisedRate
	b.audience = doc.Gateway.ID
	if b.audience == "" {
		b.audience = "federation-gateway" // config.Load's default
	}
	dir, err := os.MkdirTemp("", "bench-routing-")
	if err != nil {
		return err
	}
	b.dir = dir // removed by close: the stack starts instances of the functions from it while it runs
	cfgPath := filepath.Join(dir, "config.json")
	raw, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	if err := os.WriteFile(cfgPath, raw, 0o600); err != nil {
		return err
	}
	b.phase("start the demo federation", start)

	start = time.Now()
	progress("routing: build and start %s behind the local HTTP API on %s", strings.Join(b.functions, ", "), apiURL)
	b.stack, err = devstack.Start(ctx, devstack.Options{
		Template: tmplPath,
		Config:   cfgPath,
		// Names of their own: kumo's state is shared by every endpoint of this process.
		StackName: "bench-routing",
		Stage:     "bench",
		Overrides: map[string]string{
			"ThrottlingRateLimit": fmt.Sprint(raisedRate), "ThrottlingBurstLimit": fmt.Sprint(raisedRate),
		},
		EndpointAddr:  "127.0.0.1:0",
		APIAddr:       apiAddr,
		WebSocketAddr: "127.0.0.1:0",
		// Not the .build/host of `make run`, whose binaries may be running.
		BuildDir:       filepath.Join(dir, "host"),
		Functions:      b.functions,
		Log:            io.Discard,
		QuietFunctions: true,
		// The template's schedule (every minute) would sync in the middle of a run.
		ScheduleEvery: time.Hour,
	})
	if err != nil {
		return fmt.Errorf("local stack: %w", err)
	}
	b.phase(fmt.Sprintf("build and start the local stack (%d functions)", len(b.functions)), start)

	start = time.Now()
	if err := b.sync(ctx); err != nil {
		return err
	}
	b.phase("sync the directory: invoke SyncFunction", start)

	start = time.Now()
	if err := b.inProcess(ctx); err != nil {
		return err
	}
	if b.sender = b.fed.Agent(routeSender); b.sender == nil || b.sender.Key == nil {
		return fmt.Errorf("the demo has no agent %s with a did:key", routeSender)
	}
	if err := b.pickTarget(ctx); err != nil {
		return err
	}
	b.direct, err = a2aclient.NewFromEndpoints(ctx, []*a2a.AgentInterface{a2a.NewAgentInterface(b.target.Endpoint, a2a.TransportProtocolJSONRPC)})
	if err != nil {
		return fmt.Errorf("A2A client of %s: %w", b.target.Endpoint, err)
	}
	// Enough idle connections for the concurrent senders: with http.DefaultTransport's
	// two, most requests would open a connection.
	b.http = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		Proxy: nil, MaxIdleConns: 64, MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second,
	}}
	b.phase("build the in-process Router", start)
	return nil
}

func (b *routingBench) close() {
	if b.direct != nil {
		_ = b.direct.Destroy()
	}
	if b.stack != nil {
		b.stack.Close()
	}
	if b.fed != nil {
		_ = b.fed.Close()
	}
	if b.dir != "" {
		_ = os.RemoveAll(b.dir)
	}
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("pick a port for the HTTP API: %w", err)
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// sync invokes the sync function with a scheduled event, as EventBridge would, and
// checks that it synced both registries.
func (b *routingBench) sync(ctx context.Context) error {
	progress("routing: sync the directory (SyncFunction)")
	event, err := os.ReadFile(filepath.Join(b.stack.Template.Dir, "events", "sync.json"))
	if err != nil {
		return fmt.Errorf("sync event: %w", err)
	}
	out, err := b.stack.Invoke(ctx, "SyncFunction", event)
	if err != nil {
		return fmt.Errorf("sync: %w%s", err, tail(b.stack, "SyncFunction"))
	}
	var rep directory.SyncReport
	if err := json.Unmarshal(out, &rep); err != nil {
		return fmt.Errorf("sync: the report is not JSON: %s", out)
	}
	ok := 0
	for _, r := range rep.Registries {
		if r.OK {
			ok++
		}
	}
	if rep.Skipped != "" || ok != len(b.fed.Registries()) {
		return fmt.Errorf("sync: %s", out)
	}
	return nil
}

// inProcess builds the Router the route function builds (functions/route/main.go), over
// the stack's table, with a DynamoDB client that counts and times its calls.
func (b *routingBench) inProcess(ctx context.Context) error {
	table := b.stack.Template.Tables[0].Name
	b.ops, b.timer, b.attempts = &localtest.Ops{}, &opTimer{took: map[string]time.Duration{}}, &attemptCounter{}
	client := dynamo.NewClient(devstack.LocalAWSConfig(b.stack.EndpointURL), true)
	db := localtest.CountOps(b.timer.wrap(b.attempts.wrap(client)), b.ops)
	store := dynamo.NewStore(db, table)
	verifier, err := identity.NewVerifier(identity.Options{Audience: b.audience, Replay: store.ReplayGuard()})
	if err != nil {
		return err
	}
	signer, err := b.stackSigner(ctx)
	if err != nil {
		return err
	}
	httpClient := outbound.NewClient(outbound.Options{AllowPrivate: true, Timeout: routing.DeliveryBudget})
	b.deliver = &timedDeliverer{d: delivery.ForRouting{D: delivery.New(httpClient, signer, b.audience)}}
	b.router, err = routing.New(verifier, store, b.deliver, routing.Options{
		AgentRate: raisedRate, GlobalRate: raisedRate, Caveat: identity.Caveat,
	}, logs.New(io.Discard, "error"))
	return err
}

// stackSigner is the route function's signing key, derived from the stack's secret as the
// route function derives it. The in-process Router must sign with it: a target that cannot verify a
// signature fetches the gateway's keys again, through the stack, for every message.
// The derived keys are checked against what the stack publishes.
func (b *routingBench) stackSigner(ctx context.Context) (*delivery.Signer, error) {
	var secretID string
	for _, fn := range b.stack.Template.Functions {
		if fn.LogicalID == "RouteFunction" {
			secretID = fn.Env["GATEWAY_KEY_SECRET"]
		}
	}
	seed, err := smsecret.New(secretsmanager.NewFromConfig(devstack.LocalAWSConfig(b.stack.EndpointURL))).Secret(ctx, secretID)
	if err != nil {
		return nil, fmt.Errorf("gateway key: %w", err)
	}
	signer, err := delivery.NewSignerFromSeed(seed)
	if err != nil {
		return nil, err
	}
	published, err := b.get(ctx, b.stack.APIURL+"/.well-known/jwks.json")
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(bytes.TrimSpace(published), bytes.TrimSpace(signer.JWKS())) {
		return nil, fmt.Errorf("the key derived from the gateway's secret is not the one the stack publishes "+
			"(does the route function still use delivery.NewSignerFromSeed?):\n  derived   %s\n  published %s", signer.JWKS(), published)
	}
	return signer, nil
}

// pickTarget picks a beta-only agent without a DID that answers with a message, active
// in the directory, as shared/routing's tests do.
func (b *routingBench) pickTarget(ctx context.Context) error {
	store := dynamo.NewStore(dynamo.NewClient(devstack.LocalAWSConfig(b.stack.EndpointURL), true), b.stack.Template.Tables[0].Name)
	for _, a := range b.fed.Agents() {
		if len(a.Registries) != 1 || a.Registries[0] != demo.Beta || a.DID != "" || a.ReplyWithTask {
			continue
		}
		agent, err := store.Agent(ctx, "did:agentvault:"+a.HumanReadableID)
		if err == nil && agent.Status == federation.StatusActive && agent.Endpoint != "" {
			b.target, b.results.Target = agent, a.HumanReadableID
			return nil
		}
	}
	return errors.New("no active beta-only agent in the synced directory to send to")
}

// routeCall is one prepared request: its message ID and a fresh credential, signed
// before the clock starts.
type routeCall struct {
	id    string
	token string
	body  []byte // the POST /api/v1/route body
	req   federation.RouteRequest
}

// calls prepares n requests from the sender to the target.
func (b *routingBench) calls(n int) ([]routeCall, error) {
	out := make([]routeCall, n)
	for i := range out {
		tok, err := demo.SignToken(b.sender.Key, b.sender.DID, b.audience, tokenTTL)
		if err != nil {
			return nil, err
		}
		id := fmt.Sprintf("bench-%s-%d", b.run, b.seq.Add(1))
		req := federation.RouteRequest{
			From: b.sender.DID, To: b.target.DID, MessageID: id,
			Payload: json.RawMessage(fmt.Sprintf(`{"text":"bench message %d"}`, i)),
		}
		body, err := json.Marshal(req)
		if err != nil {
			return nil, err
		}
		out[i] = routeCall{id: id, token: tok, body: body, req: req}
	}
	return out, nil
}

// routeInProcess routes c with Router.Route: no HTTP API, no Lambda.
func (b *routingBench) routeInProcess(ctx context.Context, c routeCall) error {
	res, err := b.router.Route(ctx, c.req, federation.Credential{Type: "jwt", Token: c.token})
	if err != nil {
		return err
	}
	return checkRouted(res, c.id)
}

// routeStack routes c through the local stack: POST /api/v1/route.
func (b *routingBench) routeStack(ctx context.Context, c routeCall) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.stack.APIURL+"/api/v1/route", bytes.NewReader(c.body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := b.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		p := &problemError{status: resp.StatusCode, detail: firstLine(string(body))}
		var doc struct {
			Detail string `json:"detail"`
		}
		if json.Unmarshal(body, &doc) == nil && doc.Detail != "" {
			p.detail = doc.Detail
		}
		return p
	}
	var res federation.RouteResult
	if err := json.Unmarshal(body, &res); err != nil {
		return fmt.Errorf("200 but not a route result: %s", firstLine(string(body)))
	}
	return checkRouted(res, c.id)
}

// sendDirect sends the same message straight to the target's A2A endpoint.
func (b *routingBench) sendDirect(ctx context.Context, c routeCall) error {
	var data map[string]any
	if err := json.Unmarshal(c.req.Payload, &data); err != nil {
		return err
	}
	part := a2a.NewDataPart(data)
	part.MediaType = "application/json"
	msg := a2a.NewMessage(a2a.MessageRoleUser, part)
	msg.ID = c.id
	res, err := b.direct.SendMessage(ctx, &a2a.SendMessageRequest{Message: msg})
	if err != nil {
		return fmt.Errorf("direct SendMessage: %w", err)
	}
	if _, ok := res.(*a2a.Message); !ok {
		return fmt.Errorf("direct SendMessage: the agent answered %T, not a message", res)
	}
	return nil
}

// stackHop is the local stack's own cost: a route of the same function that does no
// routing work, through the same HTTP API and Lambda emulation.
func (b *routingBench) stackHop(ctx context.Context, _ routeCall) error {
	_, err := b.get(ctx, b.stack.APIURL+"/.well-known/jwks.json")
	return err
}

func (b *routingBench) get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	client := b.http
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s", resp.Status)
	}
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	return body, nil
}

// checkRouted checks that a message was delivered, once, and that the target verified
// the gateway's signature: a target that could not would fetch the keys again each time.
func checkRouted(res federation.RouteResult, id string) error {
	switch {
	case res.Status != routing.ClaimDelivered || res.MessageID != id:
		return fmt.Errorf("not delivered: %+v", res)
	case res.Duplicate:
		return fmt.Errorf("%s was delivered before: message IDs must be unique", id)
	case !bytes.Contains(res.Response, []byte(`"gateway_signature":"valid"`)):
		return fmt.Errorf("the target did not verify the gateway's signature: %s", res.Response)
	}
	return nil
}

// warmUp sends routeWarmup requests of each path: the agents fetch the gateway's keys
// from the stack on the first signed message, and the stack starts instances on demand.
func (b *routingBench) warmUp(ctx context.Context) error {
	start := time.Now()
	progress("routing: warm-up, %d requests of each path", routeWarmup)
	for _, p := range b.paths() {
		calls, err := b.calls(routeWarmup)
		if err != nil {
			return err
		}
		failed := 0
		for _, c := range calls {
			if err := p.send(ctx, c); err != nil {
				if failed++; failed > maxWarmupErrors || ctx.Err() != nil {
					return b.failure(p.name, "warm-up", err)
				}
				progress("routing: %s, warm-up: %v", p.name, firstLine(err.Error()))
			}
		}
	}
	b.phase(fmt.Sprintf("warm-up: %d requests of each path", routeWarmup), start)
	return nil
}

type routePath struct {
	name string
	send func(context.Context, routeCall) error
}

// paths are the latency section's, in the order the warm-up needs.
func (b *routingBench) paths() []routePath {
	return []routePath{
		{pathDirect, b.sendDirect},
		{pathInProcess, b.routeInProcess},
		{pathStackHop, b.stackHop},
		{pathStack, b.routeStack},
	}
}

// latency sends n requests of each path one at a time, the paths taking turns (and
// turning which goes first) so that a slow moment of the machine falls on all of them.
func (b *routingBench) latency(ctx context.Context, n int) error {
	progress("routing: latency, %d requests of each path", n)
	ctx, cancel := context.WithTimeout(ctx, latencyLimit)
	defer cancel()
	paths := b.paths()
	calls := make([][]routeCall, len(paths))
	for i := range paths {
		var err error
		if calls[i], err = b.calls(n); err != nil {
			return err
		}
	}
	samples := make([][]time.Duration, len(paths))
	errs := make([]map[string]int, len(paths))
	for j := range errs {
		errs[j] = map[string]int{}
	}
	b.ops.Reset()
	b.timer.reset()
	b.deliver.reset()
	b.attempts.reset()
	done, inProcess := 0, 0
	for i := 0; i < n && ctx.Err() == nil; i++ {
		for k := range paths {
			j := (i + k) % len(paths)
			if paths[j].name == pathInProcess {
				inProcess++
			}
			start := time.Now()
			err := paths[j].send(ctx, calls[j][i])
			took := time.Since(start)
			switch {
			case ctx.Err() != nil:
				// The time limit: this request is not counted.
			case err != nil:
				// A failed request is reported, not timed: its time is no routed
				// message's. Many failures are a broken setup, not noise.
				errs[j][errorKind(err)]++
				if failed := total(errs[j]); failed > max(maxWarmupErrors, n/10) {
					return b.failure(paths[j].name, fmt.Sprintf("request %d (%d failed)", i+1, failed), err)
				}
			default:
				samples[j] = append(samples[j], took)
			}
		}
		if ctx.Err() == nil {
			done++
		}
	}
	for j, p := range paths {
		b.results.Latency = append(b.results.Latency, pathLatency{Name: p.name, Samples: samples[j], Errors: errs[j]})
	}
	b.results.Rounds = done
	// The counts cover every in-process request sent, one the time limit cut included.
	b.results.Calls, b.results.CallsOver, b.results.Attempts = snapshot(b.ops), inProcess, b.attempts.count()
	b.results.DynamoTime, b.results.DeliveryTime = b.timer.snapshot(), b.deliver.total()
	return nil
}

// throughput sends count messages with senders concurrent senders, within throughputLimit.
func (b *routingBench) throughput(ctx context.Context, name string, count, senders int, send func(context.Context, routeCall) error) (throughputRun, error) {
	calls, err := b.calls(count)
	if err != nil {
		return throughputRun{}, err
	}
	run := throughputRun{Name: name, Count: count, Concurrent: senders, Errors: map[string]int{}}
	ctx, cancel := context.WithTimeout(ctx, throughputLimit)
	defer cancel()
	var (
		next      atomic.Int64
		sent      atomic.Int64
		delivered atomic.Int64
		mu        sync.Mutex
		wg        sync.WaitGroup
	)
	start := time.Now()
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= len(calls) {
					return
				}
				sent.Add(1)
				if err := send(ctx, calls[i]); err != nil {
					if ctx.Err() != nil {
						return
					}
					mu.Lock()
					run.Errors[errorKind(err)]++
					mu.Unlock()
					continue
				}
				delivered.Add(1)
			}
		}()
	}
	wg.Wait()
	run.Took = time.Since(start)
	run.CutShort = ctx.Err() != nil
	run.Sent, run.Delivered = int(sent.Load()), int(delivered.Load())
	return run, nil
}

// failure explains a failed request, with the route function's last output for the
// stack's paths.
func (b *routingBench) failure(path, what string, err error) error {
	msg := fmt.Sprintf("%s, %s: %v", path, what, err)
	if path == pathStack || path == pathStackHop {
		msg += tail(b.stack, "RouteFunction")
	}
	return errors.New(msg)
}

func tail(s *devstack.Stack, function string) string {
	lines := s.Tail(function)
	if len(lines) == 0 {
		return ""
	}
	return "; its last output:\n    " + strings.Join(lines[max(0, len(lines)-5):], "\n    ")
}

// problemError is an HTTP API answer other than 200.
type problemError struct {
	status int
	detail string
}

func (p *problemError) Error() string { return fmt.Sprintf("HTTP %d: %s", p.status, p.detail) }

// messageIDs are this program's message IDs, which make each error's text unique.
var messageIDs = regexp.MustCompile(`bench-[0-9]+-[0-9]+`)

// errorKind is what the report counts a failed request under: the code and the
// caller-safe message of a domain error (not its cause, whose request IDs differ every
// time), without message IDs.
func errorKind(err error) string {
	var domain *federation.Error
	msg := firstLine(err.Error())
	if errors.As(err, &domain) && domain.Code != federation.EINTERNAL {
		msg = domain.Code + ": " + federation.ErrorMessage(err)
	}
	msg, _, _ = strings.Cut(msg, "; its last output") // the dev stack's, with timestamps
	return messageIDs.ReplaceAllString(msg, "<message_id>")
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

func total(counts map[string]int) int {
	n := 0
	for _, c := range counts {
		n += c
	}
	return n
}

// attemptCounter counts the attempts of a client's DynamoDB calls: one per call unless
// the SDK retried.
type attemptCounter struct {
	n atomic.Int64
}

// wrap returns a copy of client that counts its attempts in a.
func (a *attemptCounter) wrap(client *dynamodb.Client) *dynamodb.Client {
	return dynamodb.New(client.Options(), func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
			// Finalize, after the retry middleware: once per attempt.
			return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("countAttempts",
				func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
					a.n.Add(1)
					return next.HandleFinalize(ctx, in)
				}), middleware.After)
		})
	})
}

func (a *attemptCounter) reset()     { a.n.Store(0) }
func (a *attemptCounter) count() int { return int(a.n.Load()) }

// opTimer sums the time of each DynamoDB operation a client makes, retries and all.
type opTimer struct {
	mu   sync.Mutex
	took map[string]time.Duration
}

// wrap returns a copy of client that times its operations in t.
func (t *opTimer) wrap(client *dynamodb.Client) *dynamodb.Client {
	return dynamodb.New(client.Options(), func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
			return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("timeOps",
				func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
					start := time.Now()
					out, md, err := next.HandleInitialize(ctx, in)
					t.mu.Lock()
					t.took[middleware.GetOperationName(ctx)] += time.Since(start)
					t.mu.Unlock()
					return out, md, err
				}), middleware.Before)
		})
	})
}

func (t *opTimer) reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.took)
}

func (t *opTimer) snapshot() map[string]time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]time.Duration, len(t.took))
	for op, d := range t.took {
		out[op] = d
	}
	return out
}

// timedDeliverer sums the time of the deliveries: the A2A exchange with the target,
// the signing of the message included.
type timedDeliverer struct {
	d    routing.Deliverer
	took atomic.Int64
}

func (t *timedDeliverer) Deliver(ctx context.Context, endpoint string, m routing.Message) (json.RawMessage, error) {
	start := time.Now()
	out, err := t.d.Deliver(ctx, endpoint, m)
	t.took.Add(int64(time.Since(start)))
	return out, err
}

func (t *timedDeliverer) reset()               { t.took.Store(0) }
func (t *timedDeliverer) total() time.Duration { return time.Duration(t.took.Load()) }
