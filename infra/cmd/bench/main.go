// Command bench measures what a Lambda cold start and deployment cost for each function of
// template.yaml, beside the smallest aws-lambda-go function (infra/benchdata/hello) built
// the same way, what the directory's sync and discovery cost, and what a routed message
// costs, and what a bridged transfer costs (make bench):
//
//   - cold start: exec of the bootstrap until its first Runtime API poll, and until the
//     answer to one invocation, each run against the local AWS endpoint with the function's
//     resources provisioned, as the function would start on Lambda; beside it, the same
//     invocation answered again by the warm process;
//   - size of the bootstrap `make build` deploys;
//   - directory: DynamoDB items written, DynamoDB calls and registry requests of syncs of an
//     AgentVault v1 and an AgentVault v2 registry as none, 1 % or all of their cards change,
//     and items read per result by discovery over both;
//   - routing: latency of a message routed through the local stack (the HTTP API, the
//     route function as a Lambda process) and through the in-process Router, beside the
//     same message sent straight to the agent with a2a-go; DynamoDB calls per routed
//     message and its round trips before and after the delivery; routed messages per
//     second with the rate limits raised, through the local stack with 1, 2, 4 and 8
//     senders; the cost of 1 million routed messages at AWS list prices from the items'
//     real sizes; the global limit with one shard and several;
//   - startup: the time to ready of `make run`, cold (an empty Go build cache) and warm,
//     and how soon and how often it says what it is doing;
//   - bridge: state transitions per transfer and its cost at AWS list prices, from the
//     transitions, Lambda invocations and DynamoDB request units the local endpoint
//     counted; transfers per second through the local stack; and thousands of transfers
//     with faults at every step, held to the token services' books;
//   - events: latency from a table write to every subscriber's WebSocket frame, with 1 and
//     with 500 subscribers, @connections posts and DynamoDB calls per event, and the cost
//     per million events at AWS list prices (-only runs one section).
//
// It reports each figure against its goal and exits 0 whether or not the goals are met;
// it fails only when it cannot measure. Run it from the module root.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/federation-gateway/gateway/infra/devstack"
	"github.com/federation-gateway/gateway/localstack"
	"github.com/federation-gateway/gateway/shared/config"
)

// The goals the report measures against.
const (
	maxStartRatio = 1.25     // a function's median over the baseline's
	maxSize       = 10 << 20 // bytes of a deployed bootstrap
)

// Sections of the report, for -only.
const (
	sectionColdStart = "coldstart"
	sectionSustained = "sustained"
	sectionDirectory = "directory"
	sectionRouting   = "routing"
	sectionStartup   = "startup"
	sectionBridge    = "bridge"
	sectionEvents    = "events"
)

// options are the command line's.
type options struct {
	tmpl, config string
	runs         int
	timeout      time.Duration
	coldStart    bool
	directory    bool
	routing      bool
	startup      bool
	bridge       bool
	agents       int // per registry in the directory section
	requests     int // per path in the routing section's latency runs
	messages     int // per path in the routing section's throughput runs
	transfers    int // clean transfers of the bridge section's cost and throughput runs
	faulted      int // transfers of the bridge section's fault run
	events       bool
	subscribers  int // in the events section's large run
	eventCount   int // events of the events section's runs
	sustained    bool
	hold         time.Duration // the sustained section's hold of 1,000 messages a minute
	rampStep     time.Duration // and each step of its ramp
}

func main() {
	var o options
	flag.IntVar(&o.runs, "runs", 10, "runs per figure and binary")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Second, "time limit of one run")
	flag.StringVar(&o.tmpl, "template", "template.yaml", "the SAM template")
	flag.StringVar(&o.config, "config", "infra/config.local.json", "the gateway configuration document to provision")
	only := flag.String("only", "", "run one section only: "+sectionColdStart+" (cold start, binary size), "+sectionDirectory+
		" (sync, discovery), "+sectionRouting+" (latency, DynamoDB calls and throughput of routed messages), "+
		sectionStartup+" (make run's cold and warm time to ready), "+
		sectionBridge+" (transitions, cost, throughput and faults of bridge transfers), "+sectionEvents+
		" (event streams: latency to subscribers, cost per event) or "+sectionSustained+" (1,000 messages a minute held, then the highest rate sustained)")
	flag.IntVar(&o.subscribers, "subscribers", 500, "subscribers of the events section's large run")
	flag.IntVar(&o.eventCount, "events", 100, "events of the events section's runs (a quarter of them with many subscribers)")
	flag.IntVar(&o.agents, "agents", 5000, "agents in each of the directory section's two registries")
	flag.IntVar(&o.requests, "requests", 200, "sequential requests of each path in the routing section's latency runs")
	flag.IntVar(&o.messages, "messages", 500, "messages of each path in the routing section's throughput runs")
	flag.IntVar(&o.transfers, "transfers", 200, "clean transfers of the bridge section's cost and throughput runs")
	flag.IntVar(&o.faulted, "faulted", 2000, "transfers of the bridge section's run with faults at every step")
	flag.DurationVar(&o.hold, "hold", 5*time.Minute, "how long the sustained section holds 1,000 messages a minute")
	flag.DurationVar(&o.rampStep, "ramp-step", 20*time.Second, "how long the sustained section holds each rate of its ramp")
	flag.Parse()
	switch *only {
	case "":
		o.coldStart, o.directory, o.routing, o.startup, o.bridge, o.events, o.sustained = true, true, true, true, true, true, true
	case sectionColdStart:
		o.coldStart = true
	case sectionDirectory:
		o.directory = true
	case sectionRouting:
		o.routing = true
	case sectionStartup:
		o.startup = true
	case sectionBridge:
		o.bridge = true
	case sectionEvents:
		o.events = true
	case sectionSustained:
		o.sustained = true
	default:
		fmt.Fprintf(os.Stderr, "bench: -only %q: want %s, %s, %s, %s, %s, %s or %s\n", *only, sectionColdStart, sectionDirectory, sectionRouting, sectionStartup, sectionBridge, sectionEvents, sectionSustained)
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	if o.runs < 1 {
		return fmt.Errorf("-runs %d: want at least 1", o.runs)
	}
	if o.agents < 100 {
		return fmt.Errorf("-agents %d: want at least 100, so that 1 %% of them is a card", o.agents)
	}
	if o.requests < 1 || o.messages < 1 {
		return fmt.Errorf("-requests %d, -messages %d: want at least 1 each", o.requests, o.messages)
	}
	doc, err := os.ReadFile(o.config)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	if _, err := config.Parse(doc); err != nil {
		return fmt.Errorf("configuration %s: %w", o.config, err)
	}
	tmpl, err := devstack.LoadTemplate(o.tmpl, "federation-gateway", map[string]string{
		"Stage": "local", "GatewayConfig": string(doc), "DeletionProtection": "false",
	})
	if err != nil {
		return err
	}
	if o.directory && len(tmpl.Tables) != 1 {
		return fmt.Errorf("%s declares %d tables; the directory section expects one", o.tmpl, len(tmpl.Tables))
	}

	var subjects []subject
	if o.coldStart {
		out, err := os.MkdirTemp("", "bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(out)
		if subjects, err = buildAll(ctx, builder{dir: tmpl.Dir, out: out}, tmpl); err != nil {
			return err
		}
	}

	var ep *localstack.Endpoint
	if o.coldStart || o.directory {
		if ep, err = localstack.Start("127.0.0.1:0"); err != nil {
			return err
		}
		defer ep.Close()
		progress("local AWS endpoint on %s", ep.URL)
	}

	var cold results
	if o.coldStart {
		r := &runner{ep: ep, cloud: devstack.NewCloud(ep.URL), timeout: o.timeout}
		if err := r.cloud.Provision(ctx, tmpl); err != nil {
			return err
		}
		if cold, err = measureAll(ctx, r, subjects, o.runs); err != nil {
			return err
		}
	}
	var dir directoryResults
	if o.directory {
		if dir, err = benchDirectory(ctx, ep.URL, tmpl.Tables[0], o.agents); err != nil {
			return fmt.Errorf("directory: %w", err)
		}
	}
	var rt routingResults
	if o.routing {
		// The routing section runs a stack of its own: the demo federation needs its API's
		// address before it starts, and the stack its configuration.
		if rt, err = benchRouting(ctx, o.tmpl, o.requests, o.messages); err != nil {
			return fmt.Errorf("routing: %w", err)
		}
	}

	var sus sustainedResults
	if o.sustained {
		if o.hold < time.Second || o.rampStep < time.Second {
			return fmt.Errorf("-hold %s, -ramp-step %s: want at least a second each", o.hold, o.rampStep)
		}
		if sus, err = benchSustained(ctx, o.tmpl, o.hold, o.rampStep); err != nil {
			return fmt.Errorf("sustained: %w", err)
		}
	}

	var starts []startupRun
	if o.startup {
		if starts, err = benchStartup(ctx, tmpl.Dir); err != nil {
			return fmt.Errorf("startup: %w", err)
		}
	}

	var br bridgeResults
	if o.bridge {
		if o.transfers < 1 || o.faulted < 1 {
			return fmt.Errorf("-transfers %d, -faulted %d: want at least 1 each", o.transfers, o.faulted)
		}
		if br, err = benchBridge(ctx, o.tmpl, o.transfers, o.faulted); err != nil {
			return fmt.Errorf("bridge: %w", err)
		}
	}

	var ev eventsResults
	if o.events {
		if ev, err = benchEvents(ctx, o.tmpl, o.subscribers, o.eventCount); err != nil {
			return fmt.Errorf("events: %w", err)
		}
	}

	header(os.Stdout)
	if o.coldStart {
		report(os.Stdout, subjects, cold, o.runs)
	}
	if o.directory {
		reportDirectory(os.Stdout, dir)
	}
	if o.routing {
		reportRouting(os.Stdout, rt)
	}
	if o.sustained {
		reportSustained(os.Stdout, sus)
	}
	if o.startup {
		reportStartup(os.Stdout, starts)
	}
	if o.bridge {
		reportBridge(os.Stdout, br)
	}
	if o.events {
		reportEvents(os.Stdout, ev)
	}
	fmt.Fprintln(os.Stdout, "\nA goal missed is reported (OVER), never a failure of the benchmark.")
	return nil
}

// buildAll builds the baseline and every function of the template, for this machine and
// for deployment. The baseline is subjects[0].
func buildAll(ctx context.Context, b builder, tmpl *devstack.Template) ([]subject, error) {
	hello := subject{Name: "hello", Fn: devstack.Function{LogicalID: "hello", MemoryMB: 128}, Event: []byte("{}"), EventOf: "{}"}
	if err := buildBoth(&hello, func(t target) (string, error) { return b.hello(ctx, t) }); err != nil {
		return nil, err
	}
	subjects := []subject{hello}
	for _, fn := range tmpl.Functions {
		s := subject{Name: fn.LogicalID, Fn: fn}
		var err error
		if s.Event, s.EventOf, err = sampleEvent(tmpl.Dir, fn); err != nil {
			return nil, err
		}
		if err := buildBoth(&s, func(t target) (string, error) { return b.function(ctx, fn.LogicalID, t) }); err != nil {
			return nil, err
		}
		subjects = append(subjects, s)
	}
	return subjects, nil
}

// buildBoth builds s for this machine and for deployment and records the deployment size.
func buildBoth(s *subject, build func(target) (string, error)) error {
	progress("build %s for %s (cold start) and for deployment (size)", s.Name, host)
	var err error
	if s.Host, err = build(host); err != nil {
		return err
	}
	if s.Deploy, err = build(deploy); err != nil {
		return err
	}
	fi, err := os.Stat(s.Deploy)
	if err != nil {
		return fmt.Errorf("size of %s: %w", s.Name, err)
	}
	s.Size = fi.Size()
	return nil
}

// sampleEvent is what the first-response figure invokes a function with: its sample event
// events/<name>.json (StatusFunction: events/status.json) when there is one, else a
// minimal HTTP API event for its first route, else an empty object.
func sampleEvent(dir string, fn devstack.Function) (event []byte, from string, err error) {
	file := filepath.Join("events", strings.ToLower(strings.TrimSuffix(fn.LogicalID, "Function"))+".json")
	event, err = os.ReadFile(filepath.Join(dir, file))
	switch {
	case err == nil:
		return event, file, nil
	case !os.IsNotExist(err):
		return nil, "", fmt.Errorf("sample event of %s: %w", fn.LogicalID, err)
	case len(fn.Routes) > 0:
		rt := fn.Routes[0]
		method := rt.Method
		if method == "ANY" {
			method = "GET"
		}
		event = fmt.Appendf(nil, `{"version":"2.0","rawPath":%q,"requestContext":{"http":{"method":%q,"path":%q}}}`, rt.Path, method, rt.Path)
		return event, method + " " + rt.Path, nil
	default:
		return []byte("{}"), "{}", nil
	}
}

// results holds each subject's runs of each figure, by subject name.
type results map[string]map[figure]summary

// measureAll takes runs samples of each figure of each subject, interleaving the subjects
// so that a slow moment of the machine does not fall on one of them only. One unrecorded
// warm-up run per subject first checks that each starts and answers.
func measureAll(ctx context.Context, r *runner, subjects []subject, runs int) (results, error) {
	progress("warm-up: one run of each")
	for _, s := range subjects {
		if _, _, err := r.measure(ctx, s, firstResponse); err != nil {
			return nil, err
		}
	}
	samples := map[string]map[figure][]time.Duration{}
	for _, s := range subjects {
		samples[s.Name] = map[figure][]time.Duration{}
	}
	for i := range runs {
		progress("run %d/%d", i+1, runs)
		for _, f := range []figure{firstPoll, firstResponse} {
			for _, s := range subjects {
				d, warm, err := r.measure(ctx, s, f)
				if err != nil {
					return nil, err
				}
				samples[s.Name][f] = append(samples[s.Name][f], d)
				if f == firstResponse {
					samples[s.Name][warmResponse] = append(samples[s.Name][warmResponse], warm)
				}
			}
		}
	}
	res := results{}
	for name, byFigure := range samples {
		res[name] = map[figure]summary{}
		for f, d := range byFigure {
			res[name][f] = summarize(d)
		}
	}
	return res, nil
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}
