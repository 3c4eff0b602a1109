// Command devstack runs the Federation Gateway locally, without Docker or an AWS account:
//
//	devstack run     the whole gateway: local AWS endpoint, functions, HTTP API (make run)
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
	"syscall"
	"time"

	"github.com/federation-gateway/gateway/infra/devstack"
	"github.com/federation-gateway/gateway/localstack"
)

const usage = `usage:
  devstack run    [-template template.yaml] [-config infra/config.local.json] [-endpoint 127.0.0.1:4566]
                  [-api 127.0.0.1:3000] [-schedule-every 0] [-data-dir DIR]
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
	cfg := fs.String("config", "infra/config.local.json", "the gateway configuration document")
	endpoint := fs.String("endpoint", localstack.DefaultAddr, "listen address of the local AWS endpoint")
	api := fs.String("api", "127.0.0.1:3000", "listen address of the HTTP API")
	every := fs.Duration("schedule-every", 0, "fire scheduled functions at this interval instead of the template's rate")
	dataDir := fs.String("data-dir", "", "persist the local AWS state in this directory (default: in memory)")
	_ = fs.Parse(args)

	if err := localstack.UseDataDir(*dataDir); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	fmt.Fprintln(os.Stderr, "devstack: building functions and starting the local cloud...")
	start := time.Now()
	s, err := devstack.Start(ctx, devstack.Options{
		Template: *tmpl, Config: *cfg, EndpointAddr: *endpoint, APIAddr: *api, ScheduleEvery: *every,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "\nFederation Gateway is running (ready in %s)\n", time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(os.Stderr, "  HTTP API            %s\n", s.APIURL)
	fmt.Fprintf(os.Stderr, "  local AWS endpoint  %s\n", s.EndpointURL)
	fmt.Fprintf(os.Stderr, "  try                 curl %s/api/v1/status\n", s.APIURL)
	fmt.Fprintf(os.Stderr, "  Ctrl-C stops it.\n\n")
	<-ctx.Done()
	fmt.Fprintln(os.Stderr, "devstack: stopping...")
	s.Close()
	fmt.Fprintln(os.Stderr, "devstack: stopped")
	return nil
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
		Template: *tmpl, Config: *cfg, EndpointAddr: "127.0.0.1:0", APIAddr: "-", Functions: []string{*fn},
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
