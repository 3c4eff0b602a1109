package localtest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The DynamoDB engine the tests run against. The local emulator kumo is lenient where
// DynamoDB is strict (duplicate keys in one BatchGetItem, float64 numbers, placeholders
// substituted as text), so the store, directory and routing tests also run against a
// second, independent engine: moto's server (`make gotest-moto`). Lambda, Step Functions,
// SSM and Secrets Manager stay on kumo whatever the engine.
const (
	// EngineEnv names the environment variable that picks the engine: "kumo" (or unset),
	// or "moto".
	EngineEnv = "LOCALTEST_DYNAMODB"
	// MotoPythonEnv names the environment variable with the Python that runs moto's
	// server (one with moto[server] installed); python3 on the PATH when unset. The
	// Makefile sets it to the one it installs into .tools/.
	MotoPythonEnv = "LOCALTEST_MOTO_PYTHON"

	// EngineKumo is the in-process emulator of the local endpoint.
	EngineKumo = "kumo"
	// EngineMoto is moto's server, started once per test process on a free port.
	EngineMoto = "moto"
)

// Engine returns the DynamoDB engine the tests of this process run against. An unknown
// value fails the test: a misspelt engine must not quietly test kumo again.
func Engine(t testing.TB) string {
	t.Helper()
	switch e := os.Getenv(EngineEnv); e {
	case "", EngineKumo:
		return EngineKumo
	case EngineMoto:
		return EngineMoto
	default:
		t.Fatalf("%s=%q: want %q or %q", EngineEnv, e, EngineKumo, EngineMoto)
		return ""
	}
}

// DynamoDBURL returns the base URL of the DynamoDB engine of the tests: the local endpoint
// (kumo), or moto's server when EngineEnv says moto. A moto that cannot start fails the
// test with the reason; it is never skipped.
func DynamoDBURL(t testing.TB) string {
	t.Helper()
	if Engine(t) == EngineKumo {
		return Endpoint(t).URL
	}
	motoOnce.Do(func() { motoServer, motoErr = startMoto(true) })
	if motoErr != nil {
		t.Fatalf("%s=%s: %v", EngineEnv, EngineMoto, motoErr)
	}
	return motoServer.url
}

// logMotoErrors makes a failed test show what moto's server logged (its errors, with their
// tracebacks), if anything.
func logMotoErrors(t testing.TB) {
	t.Helper()
	DynamoDBURL(t)
	m := motoServer
	t.Cleanup(func() {
		if msg := m.stderr.String(); t.Failed() && msg != "" {
			t.Logf("moto's server logged:\n%s", msg)
		}
	})
}

var (
	motoOnce   sync.Once
	motoServer *moto
	motoErr    error
)

// moto is a moto server process. It lives as long as the test process: it exits when its
// standard input closes, which the kernel does when the test process ends, however it
// ends (a panic, a timeout, a kill), so no test run leaves one behind.
type moto struct {
	url    string
	cmd    *exec.Cmd
	stderr *capped
	// stdin is held, never written: closing it (at exit) stops the server. Dropping the
	// reference would let the garbage collector close it early.
	stdin io.WriteCloser
}

// motoScript runs moto's server on a free port of 127.0.0.1 (as moto.server's
// ThreadedMotoServer does), prints the port, and exits when its standard input closes.
//
// With the argument "serialize" it serves one request at a time. moto's server runs each
// request on its own thread and its DynamoDB has no lock: it undoes a canceled transaction
// by putting back a copy of the whole table taken when the transaction started, so writes
// that other requests made meanwhile are lost, and a copy taken while another request
// writes fails the transaction with a 500 (TestMotoCanceledTransactionLosesWrites shows
// both). The gateway's claims are such transactions, raced on purpose (a message ID is
// delivered once), so the tests serialize moto's requests: this is the one place that
// works around it.
const motoScript = `
import logging, os, sys, threading
logging.getLogger("werkzeug").setLevel(logging.ERROR)
from werkzeug.serving import make_server
from moto.moto_server import werkzeug_app
app = werkzeug_app.DomainDispatcherApplication(werkzeug_app.create_backend_app)
lock = threading.Lock()
def serialized(environ, start_response):
    with lock:
        return list(app(environ, start_response))
server = make_server("127.0.0.1", 0, serialized if "serialize" in sys.argv[1:] else app, threaded=True,
                     request_handler=getattr(werkzeug_app, "MotoRequestHandler", None))
threading.Thread(target=server.serve_forever, daemon=True).start()
print(server.server_port, flush=True)
sys.stdin.read()
os._exit(0)
`

// motoHint says how to get a moto that works.
const motoHint = "`make gotest-moto` installs the pinned moto[server] into .tools/ and runs these tests on it; or set " + MotoPythonEnv + " to a Python with moto[server]"

// startMoto starts a moto server; serialize makes it serve one request at a time.
func startMoto(serialize bool) (*moto, error) {
	python := os.Getenv(MotoPythonEnv)
	if python == "" {
		python = "python3"
	}
	args := []string{"-c", motoScript}
	if serialize {
		args = append(args, "serialize")
	}
	cmd := exec.Command(python, args...)
	stderr := &capped{max: 64 << 10}
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start moto's server with %s: %w; %s", python, err, motoHint)
	}
	port := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		port <- strings.TrimSpace(line)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	fail := func(why string) error {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		msg := strings.TrimSpace(stderr.String())
		if _, missing, ok := strings.Cut(msg, "ModuleNotFoundError: "); ok {
			return fmt.Errorf("%s has no moto[server] (%s): %s", python, missing, motoHint)
		}
		return fmt.Errorf("moto's server (%s) %s: %s\n%s", python, why, msg, motoHint)
	}
	select {
	case p := <-port:
		if _, err := strconv.Atoi(p); err != nil {
			return nil, fail("did not say its port")
		}
		return &moto{url: "http://127.0.0.1:" + p, cmd: cmd, stdin: stdin, stderr: stderr}, nil
	case <-time.After(60 * time.Second):
		return nil, fail("did not start within 60s")
	}
}

// capped keeps the first max bytes written to it: what a server says when it fails to
// start, without growing with every request it logs later.
type capped struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := c.max - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (c *capped) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// close stops the server and waits for it to exit.
func (m *moto) close() error {
	_ = m.stdin.Close()
	return m.cmd.Wait()
}
