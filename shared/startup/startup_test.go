package startup_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/federation-gateway/gateway/shared/startup"
)

type handler = func(context.Context, string) (string, error)

func echo(_ context.Context, ev string) (string, error) { return "echo " + ev, nil }

// TestDeferWaitsForTheBuild: an invocation that arrives while the build runs waits for it
// and is answered by the handler it made.
func TestDeferWaitsForTheBuild(t *testing.T) {
	release := make(chan struct{})
	built := make(chan struct{})
	h := startup.Defer(context.Background(), func(context.Context) (handler, error) {
		<-release
		close(built)
		return echo, nil
	}, func(err error) { t.Errorf("fail called: %v", err) })

	answer := make(chan string, 1)
	go func() {
		out, err := h(context.Background(), "a")
		if err != nil {
			t.Error(err)
		}
		answer <- out
	}()
	select {
	case out := <-answer:
		t.Fatalf("answered %q before the build finished", out)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if out := <-answer; out != "echo a" {
		t.Errorf("answer %q, want %q", out, "echo a")
	}
	<-built
	if out, err := h(context.Background(), "b"); err != nil || out != "echo b" {
		t.Errorf("second answer %q, %v", out, err)
	}
}

// TestDeferFailsAtOnce: a build that fails calls fail with its error as soon as it returns,
// before any invocation, and an invocation gets the error too.
func TestDeferFailsAtOnce(t *testing.T) {
	failed := make(chan error, 1)
	h := startup.Defer(context.Background(), func(context.Context) (handler, error) {
		return nil, errors.New("invalid configuration: TABLE_NAME is not set")
	}, func(err error) { failed <- err })
	select {
	case err := <-failed:
		if !strings.Contains(err.Error(), "TABLE_NAME is not set") {
			t.Errorf("fail got %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("fail was not called")
	}
	if _, err := h(context.Background(), "a"); err == nil || !strings.Contains(err.Error(), "TABLE_NAME is not set") {
		t.Errorf("invocation error %v, want the build's", err)
	}
}

// TestDeferGivesUpWithTheInvocation: an invocation whose deadline passes while the build
// still runs ends with an error saying so, not with a zero answer.
func TestDeferGivesUpWithTheInvocation(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	h := startup.Defer(context.Background(), func(context.Context) (handler, error) {
		<-release
		return echo, nil
	}, func(err error) { t.Errorf("fail called: %v", err) })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := h(ctx, "a"); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "still starting") {
		t.Errorf("error %v, want the deadline's, saying the function was still starting", err)
	}
}
