// Package startup starts a Lambda function so that its first invocation waits only for
// what it needs: the runtime polls for the invocation at once, while the function's wiring
// (its configuration document from SSM, its secrets, its clients) is built beside it.
//
// Before, each function built everything and only then polled the Runtime API: the SSM and
// Secrets Manager round trips came first, one after the other with the rest, and the
// invocation waited behind them. Now they run while the runtime starts and the invocation
// travels; a start that fails still fails as clearly as it did (Start).
package startup

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
)

// Start starts the Lambda runtime at once and runs build beside it; every invocation waits
// for build to finish, then runs the handler it made.
//
// A build that fails is a start that fails, as when a function read its configuration
// before polling: Start prints why to stderr and exits 1 at once, whether an invocation is
// waiting or not. Lambda reports the start (or the invocation) as failed with
// Runtime.ExitError and the function's log says why; the next invocation starts afresh.
//
// build makes the function's handler: it reads the configuration and secrets and wires the
// clients; an error means the function cannot serve.
func Start[E, R any, H ~func(context.Context, E) (R, error)](build func(context.Context) (H, error)) {
	lambda.Start(Defer(context.Background(), build, func(err error) { Exit(os.Stderr, err) }))
}

// Defer starts build in a goroutine and returns a handler that waits for it. When build
// fails, fail is called with its error as soon as it returns (Start's fail exits); a
// handler still waiting then returns the error too.
func Defer[E, R any, H ~func(context.Context, E) (R, error)](ctx context.Context, build func(context.Context) (H, error), fail func(error)) func(context.Context, E) (R, error) {
	done := make(chan struct{})
	var h H
	var err error
	go func() {
		defer close(done)
		if h, err = build(ctx); err != nil {
			fail(err)
		}
	}()
	return func(ctx context.Context, ev E) (R, error) {
		select {
		case <-done:
		case <-ctx.Done():
			var zero R
			return zero, fmt.Errorf("the function was still starting: %w", ctx.Err())
		}
		if err != nil {
			var zero R
			return zero, err
		}
		return h(ctx, ev)
	}
}

// Exit prints why a function could not start and exits 1.
func Exit(w io.Writer, err error) {
	fmt.Fprintln(w, err)
	os.Exit(1)
}
