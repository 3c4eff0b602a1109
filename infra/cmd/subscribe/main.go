// Command subscribe watches the federation's event stream in a terminal: it connects to
// the gateway's WebSocket API with an agent's credential, prints each event as it
// arrives, and keeps the position of the last one in a file, so that when it is stopped
// and started again (or its connection ends) it resumes where it was, missing nothing and
// repeating nothing.
//
//	go run ./infra/cmd/subscribe -token-url 'http://127.0.0.1:8200/demo/token?agent=acme/weather-bot'
//	go run ./infra/cmd/subscribe -token-url ... -types 'registry.*,message.*' -registry alpha
//
// The gateway accepts a credential once, so it needs a fresh one for every connection:
// -token-url fetches one (the demo federation serves its agents' at /demo/token), or
// -token-cmd runs a command that prints one. -token gives one for a single connection.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/federation-gateway/gateway/infra/subscriber"
	"github.com/federation-gateway/gateway/shared/events"
)

func main() {
	url := flag.String("url", "ws://127.0.0.1:3001/local", "the WebSocket API (make run prints it)")
	tokenURL := flag.String("token-url", "", "fetch a fresh credential (JWT) from this URL for each connection")
	tokenCmd := flag.String("token-cmd", "", "run this command (sh -c) for a fresh credential for each connection")
	token := flag.String("token", "", "a credential for one connection")
	types := flag.String("types", "", "event types or families, comma-separated (agent.*, message.delivered, ...); default all")
	registry := flag.String("registry", "", "only events of this registry")
	agent := flag.String("agent", "", "only events of this agent (DID)")
	transfer := flag.String("transfer", "", "only the events of this bridge transfer")
	posFile := flag.String("position-file", filepath.Join(".build", "subscribe.position"), "where the last position is kept (empty: nowhere)")
	subprotocol := flag.Bool("subprotocol", false, "send the credential in Sec-WebSocket-Protocol, as a browser must")
	asJSON := flag.Bool("json", false, "print each event as one line of JSON")
	flag.Parse()

	get, err := tokenSource(*tokenURL, *tokenCmd, *token)
	if err != nil {
		fail(err)
	}
	filter := events.Filter{Registry: *registry, Agent: *agent, Transfer: *transfer}
	if *types != "" {
		filter.Types = strings.Split(*types, ",")
	}
	after := readPosition(*posFile)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for {
		err := run(ctx, *url, get, filter, after, *subprotocol, *asJSON, *posFile)
		if subscriber.IsExpired(err) && after != "" {
			fmt.Fprintf(os.Stderr, "subscribe: %v\nsubscribe: starting from now\n", err)
			after = ""
			continue
		}
		if err != nil {
			fail(err)
		}
		return
	}
}

func run(ctx context.Context, url string, token func(context.Context) (string, error), filter events.Filter, after string, subprotocol, asJSON bool, posFile string) error {
	if after != "" {
		fmt.Fprintf(os.Stderr, "subscribe: resuming after %s (%s)\n", after, posFile)
	}
	s, err := subscriber.New(subscriber.Options{
		URL: url, Token: token, Subprotocol: subprotocol, Filter: filter, After: after, Reconnect: true,
		OnEvent: func(e events.Event) error {
			show(e, asJSON)
			return writePosition(posFile, e.Position.String())
		},
		OnState: func(st string) { fmt.Fprintf(os.Stderr, "subscribe: %s\n", st) },
	})
	if err != nil {
		return err
	}
	return s.Run(ctx)
}

func show(e events.Event, asJSON bool) {
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(e)
		return
	}
	data := string(e.Data)
	if len(data) > 160 {
		data = data[:157] + "..."
	}
	fmt.Printf("%s  %s  %-20s %-36s %-8s %s\n", e.Time.Format(time.RFC3339), e.Position, e.Type, e.Subject, e.Registry, data)
}

// tokenSource returns how to get a credential for each connection.
func tokenSource(url, cmd, token string) (func(context.Context) (string, error), error) {
	switch {
	case url != "":
		if !strings.Contains(url, "://") {
			url = "http://" + url // as curl takes it
		}
		return func(ctx context.Context) (string, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return "", err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return "", err
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			if err != nil || resp.StatusCode != http.StatusOK {
				return "", fmt.Errorf("GET %s: %s %s", url, resp.Status, b)
			}
			return strings.TrimSpace(string(b)), nil
		}, nil
	case cmd != "":
		return func(ctx context.Context) (string, error) {
			out, err := exec.CommandContext(ctx, "sh", "-c", cmd).Output()
			return strings.TrimSpace(string(out)), err
		}, nil
	case token != "":
		used := false
		return func(context.Context) (string, error) {
			if used {
				return "", errors.New("-token is accepted once; use -token-url or -token-cmd to reconnect")
			}
			used = true
			return token, nil
		}, nil
	}
	return nil, errors.New("a credential is needed: -token-url, -token-cmd or -token")
}

func readPosition(file string) string {
	if file == "" {
		return ""
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return ""
	}
	p := strings.TrimSpace(string(b))
	if _, err := events.ParsePosition(p); err != nil {
		return ""
	}
	return p
}

// writePosition replaces the file at once (write and rename), so a stop never leaves a
// half-written position.
func writePosition(file, p string) error {
	if file == "" {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, []byte(p+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "subscribe:", err)
	os.Exit(1)
}
