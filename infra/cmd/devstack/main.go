// Command devstack runs the Federation Gateway locally, without Docker or an AWS account:
//
//	devstack run     the whole gateway: local AWS endpoint, functions, HTTP API and, unless
//	                 -config names a configuration, a demo federation to federate (make run)
//	devstack invoke  invoke one function with an event file, like `sam local invoke` (make invoke)
//
// Everything it runs is derived from template.yaml.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/federation-gateway/gateway/infra/demo"
	"github.com/federation-gateway/gateway/infra/devstack"
	"github.com/federation-gateway/gateway/localstack"
)

const usage = `usage:
  devstack run    [-template template.yaml] [-config file (default: the demo federation)] [-endpoint 127.0.0.1:4566]
                  [-api 127.0.0.1:3000] [-ws 127.0.0.1:3001] [-ws-idle 10m] [-ws-max-age 2h]
                  [-schedule-every 0] [-data-dir DIR] [-build-dir DIR]
  devstack invoke -function LogicalId [-event events/file.json] [-template ...] [-config ...]
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = run(os.Args[2:])
	case "invoke":
		err = invoke(os.Args[2:])
	default:
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	tmpl := fs.String("template", "template.yaml", "the SAM template")
	cfg := fs.String("config", "", "the gateway configuration document (default: start the demo federation and federate it)")
	endpoint := fs.String("endpoint", localstack.DefaultAddr, "listen address of the local AWS endpoint")
	api := fs.String("api", "127.0.0.1:3000", "listen address of the HTTP API")
	every := fs.Duration("schedule-every", 0, "fire scheduled functions at this interval instead of the template's rate")
	ws := fs.String("ws", "127.0.0.1:3001", "listen address of the WebSocket API")
	wsIdle := fs.Duration("ws-idle", devstack.DefaultWebSocketIdle, "close WebSocket connections idle this long (API Gateway: 10m)")
	wsMaxAge := fs.Duration("ws-max-age", devstack.DefaultWebSocketMaxAge, "close WebSocket connections this old (API Gateway: 2h)")
	dataDir := fs.String("data-dir", "", "persist the local AWS state in this directory (default: in memory)")
	buildDir := fs.String("build-dir", "", "where the functions are built (default: .build/host beside the template)")
	_ = fs.Parse(args)

	if err := localstack.UseDataDir(*dataDir); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	start := startedAt(time.Now())
	progress := step(start)
	var fed *demo.Federation
	if *cfg == "" {
		progress("starting the demo federation (2 registries, 15 agents)")
		var err error
		if fed, *cfg, err = startDemo(ctx, filepath.Join(filepath.Dir(*tmpl), ".build", "demo-config.json"), "http://"+*api); err != nil {
			return err
		}
		defer fed.Close()
	}
	var secrets map[string]string
	if fed != nil {
		secrets = fed.Secrets("local")
	}
	var prepare func(context.Context, *devstack.Stack) error
	if fed != nil {
		// The demo token services start with the gateway's initial liquidity in its
		// accounts: an operator records it in the books, as on AWS, here before the
		// first reconciliation reads them.
		prepare = func(ctx context.Context, s *devstack.Stack) error {
			progress("recording the bridge's liquidity on the demo token services")
			for _, r := range fed.Registries() {
				seed := fmt.Sprintf(`{"action":"seed","registry":%q,"request_id":"make-run-seed-%s","operator":"make run","reason":"the demo's initial liquidity"}`, r.ID, r.ID)
				if _, err := s.Invoke(ctx, "OperatorFunction", []byte(seed)); err != nil {
					fmt.Fprintln(os.Stderr, "devstack: seed the bridge's liquidity:", err)
				}
			}
			return nil
		}
	}
	s, err := devstack.Start(ctx, devstack.Options{
		Template: *tmpl, Config: *cfg, EndpointAddr: *endpoint, APIAddr: *api, BuildDir: *buildDir,
		ScheduleEvery: *every, ScheduleAtStart: true, Progress: progress, Prepare: prepare,
		Secrets:       secrets,
		WebSocketAddr: *ws, WebSocketIdle: *wsIdle, WebSocketMaxAge: *wsMaxAge,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "\nFederation Gateway is running (ready in %s)\n", time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(os.Stderr, "  HTTP API            %s\n", s.APIURL)
	if s.WebSocketURL != "" {
		fmt.Fprintf(os.Stderr, "  event streams       %s (WebSocket; go run ./infra/cmd/subscribe)\n", s.WebSocketURL)
	}
	fmt.Fprintf(os.Stderr, "  local AWS endpoint  %s\n", s.EndpointURL)
	fmt.Fprintf(os.Stderr, "  metrics             %s%s (what CloudWatch would show)\n", s.APIURL, devstack.MetricsPath)
	if fed != nil {
		for _, r := range fed.Registries() {
			fmt.Fprintf(os.Stderr, "  demo registry       %-5s %s (%s)\n", r.ID, r.URL(), r.Kind)
		}
		fmt.Fprintf(os.Stderr, "  demo agents         %s, listed at %s/agents\n", agentCount(fed.Agents()), fed.AgentsURL)
		fmt.Fprintf(os.Stderr, "  an agent's card     %s/.well-known/agent-card.json\n", fed.Agents()[0].URL)
		for _, r := range fed.Registries() {
			fmt.Fprintf(os.Stderr, "  token service       %-5s %s\n", r.ID, fed.TEGURL(r.ID))
		}
	} else {
		fmt.Fprintf(os.Stderr, "  configuration       %s\n", *cfg)
	}
	fmt.Fprintf(os.Stderr, "  try                 curl %s/api/v1/status\n", s.APIURL)
	fmt.Fprintf(os.Stderr, "  Ctrl-C stops it.\n\n")
	<-ctx.Done()
	fmt.Fprintln(os.Stderr, "devstack: stopping...")
	s.Close()
	fmt.Fprintln(os.Stderr, "devstack: stopped")
	return nil
}

// agentCount says how many demo agents run and why the directory counts fewer: an agent
// listed by two registries is one directory record, and a retired one is listed inactive.
func agentCount(agents []*demo.Agent) string {
	shared, retired := 0, 0
	for _, a := range agents {
		if len(a.Registries) > 1 {
			shared++
		}
		if !a.Active() {
			retired++
		}
	}
	return fmt.Sprintf("%d (%d listed by both registries, %d retired: the directory counts %d active)",
		len(agents), shared, retired, len(agents)-retired)
}

// startedAt is when `make run` started (DEVSTACK_STARTED, Unix nanoseconds, set before it
// compiled the dev stack), else now: the time to ready a developer sees.
func startedAt(now time.Time) time.Time {
	ns, err := strconv.ParseInt(os.Getenv("DEVSTACK_STARTED"), 10, 64)
	if err != nil || ns <= 0 || ns > now.UnixNano() {
		return now
	}
	return time.Unix(0, ns)
}

// step prints a step of the start with the time since the start.
func step(start time.Time) func(string) {
	var mu sync.Mutex
	return func(s string) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(os.Stderr, "devstack: [%4.0fs] %s\n", time.Since(start).Seconds(), s)
	}
}

// The demo federation's fixed addresses, so that the URLs printed, and those in the
// configuration the stack was given, are the same on every run.
const (
	demoAlphaAddr  = "127.0.0.1:8101"
	demoBetaAddr   = "127.0.0.1:8102"
	demoAgentsAddr = "127.0.0.1:8200"
)

// startDemo starts the demo federation and writes the configuration that federates it to
// path, which the stack then loads like any other configuration file.
func startDemo(ctx context.Context, path, gatewayURL string) (*demo.Federation, string, error) {
	fed, err := demo.Start(ctx, demo.Options{AlphaAddr: demoAlphaAddr, BetaAddr: demoBetaAddr, AgentsAddr: demoAgentsAddr, GatewayURL: gatewayURL})
	if err != nil {
		return nil, "", fmt.Errorf("%w (is another `make run` running? CONFIG=<file> make run starts no demo)", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		fed.Close()
		return nil, "", fmt.Errorf("demo configuration: %w", err)
	}
	if err := os.WriteFile(path, fed.Config(), 0o644); err != nil {
		fed.Close()
		return nil, "", fmt.Errorf("demo configuration: %w", err)
	}
	return fed, path, nil
}

func invoke(args []string) error {
	fs := flag.NewFlagSet("invoke", flag.ExitOnError)
	fn := fs.String("function", "", "the function's logical ID, e.g. StatusFunction")
	event := fs.String("event", "", "the event file (default: an empty object)")
	tmpl := fs.String("template", "template.yaml", "the SAM template")
	cfg := fs.String("config", "infra/config.local.json", "the gateway configuration document")
	_ = fs.Parse(args)
	if *fn == "" {
		return fmt.Errorf("-function is required\n%s", usage)
	}
	payload := []byte("{}")
	if *event != "" {
		var err error
		if payload, err = os.ReadFile(*event); err != nil {
			return fmt.Errorf("event: %w", err)
		}
		if !json.Valid(payload) {
			return fmt.Errorf("event %s is not JSON", *event)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := devstack.Start(ctx, devstack.Options{
		Template: *tmpl, Config: *cfg, EndpointAddr: "127.0.0.1:0", APIAddr: "-", WebSocketAddr: "-", Functions: []string{*fn},
	})
	if err != nil {
		return err
	}
	defer s.Close()
	out, err := s.Invoke(ctx, *fn, payload)
	if err != nil {
		return err
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, out, "", "  ") != nil {
		pretty.Reset()
		pretty.Write(out)
	}
	fmt.Println(pretty.String())
	return nil
}
