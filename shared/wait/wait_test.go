package wait_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/federation-gateway/gateway/shared/wait"
)

func TestSleep(t *testing.T) {
	if err := wait.Sleep(context.Background(), time.Millisecond); err != nil {
		t.Errorf("a pause that ran out: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if err := wait.Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) || time.Since(start) > time.Minute {
		t.Errorf("a pause whose context ended: %v after %s", err, time.Since(start))
	}
}
