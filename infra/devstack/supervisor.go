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
)

// Poller tells when a function's process polls the Runtime API; *localstack.Endpoint is one.
type Poller interface {
	WaitPolling(ctx context.Context, function string) error
	Polling(function string) bool
}

// process is one run of a function's bootstrap.
type process struct {
	cmd     *exec.Cmd
	started time.Time
	exited  chan struct{} // closed when the process has exited
	err     error         // why it exited; set before exited is closed
}

// supervisor runs one function's bootstrap as a local process serving the emulator's
// Runtime API, the way Lambda runs it in a sandbox, and restarts it when it exits.
type supervisor struct {
	fn     Function
	binary string
	env    []string
	poller Poller
	logs   *logSink

	mu      sync.Mutex
	current *process
	tail    []string      // the last lines the function printed, for error messages
	wake    chan struct{} // closed and replaced whenever current changes
}

func newSupervisor(fn Function, binary string, env []string, poller Poller, logs *logSink) *supervisor {
	return &supervisor{fn: fn, binary: binary, env: env, poller: poller, logs: logs, wake: make(chan struct{})}
}

// run keeps the function's process running until ctx ends. A process that dies within a
// second of its start is restarted after a growing delay, so a function that cannot start
// (bad configuration, say) does not spin.
func (s *supervisor) run(ctx context.Context) {
	delay := time.Duration(0)
	for {
		p, err := s.start()
		if err != nil {
			s.logs.system(s.fn.LogicalID, "cannot start: "+err.Error())
		} else {
			select {
			case <-p.exited:
				s.logs.system(s.fn.LogicalID, fmt.Sprintf("process exited (%v); restarting", p.err))
			case <-ctx.Done():
				s.stop(p)
				return
			}
		}
		if err == nil && time.Since(p.started) > time.Second {
			delay = 0
		} else {
			delay = min(max(2*delay, 100*time.Millisecond), 5*time.Second)
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return
		}
	}
}

func (s *supervisor) start() (*process, error) {
	cmd := exec.Command(s.binary)
	cmd.Env = s.env
	cmd.Dir = os.TempDir()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	setProcessGroup(cmd)
	p := &process{cmd: cmd, exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p.started = time.Now()
	copied := make(chan struct{})
	go func() {
		s.copyLogs(stdout)
		close(copied)
	}()
	go func() {
		<-copied // the pipe is drained before Wait closes it
		p.err = cmd.Wait()
		close(p.exited)
		s.mu.Lock()
		if s.current == p {
			s.current = nil
			s.broadcast()
		}
		s.mu.Unlock()
	}()
	s.mu.Lock()
	s.current = p
	s.broadcast()
	s.mu.Unlock()
	return p, nil
}

func (s *supervisor) broadcast() {
	close(s.wake)
	s.wake = make(chan struct{})
}

func (s *supervisor) copyLogs(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		s.mu.Lock()
		s.tail = append(s.tail, line)
		if len(s.tail) > 20 {
			s.tail = s.tail[len(s.tail)-20:]
		}
		s.mu.Unlock()
		s.logs.function(s.fn.LogicalID, line)
	}
}

// stop ends a process: SIGTERM, as Lambda sends at shutdown, then SIGKILL.
func (s *supervisor) stop(p *process) {
	terminate(p.cmd)
	select {
	case <-p.exited:
	case <-time.After(2 * time.Second):
		kill(p.cmd)
		<-p.exited
	}
}

// kill ends the current process at once; run starts a new one. Lambda does the same with a
// sandbox whose invocation timed out.
func (s *supervisor) kill() {
	s.mu.Lock()
	p := s.current
	s.mu.Unlock()
	if p != nil {
		kill(p.cmd)
	}
}

// ready waits until a process polls for the next invocation and returns it. It gives up
// after wait, with the function's last output in the error: an invocation would otherwise
// wait out the emulator's 30 s pick-up timeout.
func (s *supervisor) ready(ctx context.Context, wait time.Duration) (*process, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		s.mu.Lock()
		p, wake := s.current, s.wake
		s.mu.Unlock()
		if p != nil {
			pollCtx, stopPoll := context.WithCancel(ctx)
			go func() {
				select {
				case <-p.exited:
				case <-wake:
				case <-pollCtx.Done():
				}
				stopPoll()
			}()
			err := s.poller.WaitPolling(pollCtx, s.fn.LogicalID)
			stopPoll()
			if err == nil {
				return p, nil
			}
		} else {
			select {
			case <-wake:
				continue
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("function %s is not running%s", s.fn.LogicalID, s.lastWords())
		}
	}
}

// lastWords is the function's last output, for an error message.
func (s *supervisor) lastWords() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.tail) == 0 {
		return ""
	}
	return "; its last output: " + strings.Join(s.tail[max(0, len(s.tail)-5):], " | ")
}

// errCrashed says the process serving an invocation exited before answering.
var errCrashed = errors.New("the function's process exited before answering")

// logSink writes the dev stack's and the functions' log lines, one writer for all.
type logSink struct {
	mu    sync.Mutex
	w     io.Writer
	quiet bool // drop the functions' own lines (tests)
}

func (l *logSink) function(fn, line string) {
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
