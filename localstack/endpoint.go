// Package localstack is the local AWS endpoint: the Go AWS emulator kumo, run in-process
// and served on one address (127.0.0.1:4566 by default, the port LocalStack uses), so the
// same binaries and configuration work against it, against LocalStack and against AWS.
//
// kumo's own server listens on a random port; a reverse proxy in front of it keeps the
// Host header (kumo's Step Functions call Lambda at localhost:4566, and virtual-host
// addressing needs the original host), serves a LocalStack-style health check, and watches
// the Lambda Runtime and Invoke APIs (runtime.go) so a supervisor can run several
// processes per function and tell which one serves which invocation.
//
// kumo keeps its services' state in package variables: every Endpoint in one process shares
// it. Tests give their resources unique names.
package localstack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"syscall"
	"time"

	"github.com/sivchari/kumo"
)

// DefaultAddr is where the endpoint listens unless told otherwise.
const DefaultAddr = "127.0.0.1:4566"

// DataDirEnv is the environment variable kumo reads, once at process start, to persist its
// state in a directory.
const DataDirEnv = "KUMO_DATA_DIR"

// Endpoint is a running local AWS endpoint.
type Endpoint struct {
	// URL is the endpoint's base URL, e.g. http://127.0.0.1:4566.
	URL string
	// Addr is the host:port it listens on.
	Addr string

	emulator *kumo.Server
	server   *http.Server
	runtime  *runtimeWatch
	tasks    *sfnTasks // Step Functions' Lambda Tasks as on AWS (sfntasks.go)
	meter    *Meter
	done     chan error
}

// Start starts the emulator and serves it on addr ("127.0.0.1:0" picks a free port).
func Start(addr string) (*Endpoint, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("local AWS endpoint: listen on %s: %w", addr, err)
	}
	emu := kumo.NewServer()
	target, err := url.Parse(emu.URL)
	if err != nil {
		emu.Close()
		ln.Close()
		return nil, fmt.Errorf("local AWS endpoint: emulator URL %q: %w", emu.URL, err)
	}
	e := &Endpoint{
		URL:      "http://" + ln.Addr().String(),
		Addr:     ln.Addr().String(),
		emulator: emu,
		runtime:  newRuntimeWatch(),
		meter:    newMeter(),
		done:     make(chan error, 1),
	}
	// The Tasks' own invocations go through the endpoint, so that the watcher sees every
	// invocation of a task function (a supervisor starts instances on that demand) and the
	// meter counts them; the engine's calls that only hand a Task over are seen by neither.
	e.tasks = newSFNTasks(e.URL, emu.URL)
	proxy := newProxy(target, (&net.Dialer{}).DialContext)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_localstack/health", e.health)
	mux.Handle("/", e.tasks.wrap(e.runtime.handler(e.meter.watch((&secretReads{}).wrap(newStreamWrites(emu.URL).wrap(proxy))))))
	routeEmulatorCalls(e)
	e.server = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { e.done <- e.server.Serve(ln) }()
	return e, nil
}

// maxRequestBody bounds what the endpoint reads of one request: above every limit of the
// APIs the gateway uses (a DynamoDB request is at most 16 MB, a Lambda payload 6 MB).
const maxRequestBody = 32 << 20

// newProxy returns the reverse proxy to the emulator at target.
//
// It reads each request body whole before forwarding it. Streaming it instead loses
// response bodies under load: the HTTP/1 server drains and closes a request body as soon
// as the handler starts its response, while the proxy's transport, having forwarded the
// declared length, reads the body once more to check it is not longer. When that read comes
// after the emulator has answered (a descheduled goroutine on a busy machine), it fails
// with "invalid Read on closed Body", the transport closes its connection to the emulator,
// and the response being copied is cut ("ReverseProxy read error during body copy: use of
// closed network connection"; the client gets "unexpected EOF"). A body held in memory is
// never read from the client's connection after the response starts. See
// TestProxyKeepsResponseWhenRequestWriteLags and golang/go#40747.
func newProxy(target *url.URL, dial func(ctx context.Context, network, addr string) (net.Conn, error)) http.Handler {
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host
		},
		// ReverseProxy flushes streamed responses (no Content-Length, as a Runtime API
		// long poll) at once; sized ones need no forced flushing.
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         dial,
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, context.Canceled) {
				return // the client went away, e.g. a function process that exited mid-poll
			}
			http.Error(w, "local AWS endpoint: "+err.Error(), http.StatusBadGateway)
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
			if err != nil {
				var tooLarge *http.MaxBytesError
				if errors.As(err, &tooLarge) {
					http.Error(w, fmt.Sprintf("local AWS endpoint: request body over %d bytes", maxRequestBody), http.StatusRequestEntityTooLarge)
					return
				}
				http.Error(w, "local AWS endpoint: read the request body: "+err.Error(), http.StatusBadRequest)
				return
			}
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
			r.Header.Del("Transfer-Encoding")
			r.TransferEncoding = nil
		}
		proxy.ServeHTTP(w, r)
	})
}

// readBody reads a request's body, which the endpoint holds in memory (newProxy), and
// puts it back for the handlers after the caller; on a failure it answers 400 and
// returns false.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "local AWS endpoint: read the request: "+err.Error(), http.StatusBadRequest)
		return nil, false
	}
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	return body, true
}

// Close stops serving, saves the emulator's state when it persists it (UseDataDir), and
// shuts the emulator down. Every orderly stop goes through it.
func (e *Endpoint) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	unrouteEmulatorCalls(e)
	err := e.server.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = e.server.Close() // Runtime API long polls never end by themselves
	}
	e.tasks.close()
	e.emulator.Close() // no request reaches it any more: the snapshot is the final state
	flushSnapshots()   // nothing to write unless the state persists
	return err
}

// Meter returns what the endpoint has counted (metering.go).
func (e *Endpoint) Meter() *Meter { return e.meter }

// Done is closed with the serving error when the endpoint stops serving.
func (e *Endpoint) Done() <-chan error { return e.done }

// Services kumo serves that the gateway uses, reported by the health check.
var healthServices = []string{"dynamodb", "dynamodbstreams", "lambda", "ssm", "secretsmanager", "stepfunctions", "events", "sts", "kms"}

func (e *Endpoint) health(w http.ResponseWriter, _ *http.Request) {
	services := map[string]string{}
	for _, s := range healthServices {
		services[s] = "running"
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"edition": "kumo", "services": services})
}

// UseDataDir makes kumo persist its state in dir. kumo reads the setting once, when the
// process starts, so when it is not already in force this re-executes the running program
// with it set; it returns only if it was in force or on error.
func UseDataDir(dir string) error {
	if dir == "" || os.Getenv(DataDirEnv) == dir {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("data directory: find own executable: %w", err)
	}
	env := append(os.Environ(), DataDirEnv+"="+dir)
	return fmt.Errorf("data directory: re-exec: %w", syscall.Exec(exe, os.Args, env))
}
