// Package wait holds the one way the gateway pauses: for a duration, or until the work's
// context ends, whichever comes first (retries with backoff, polling).
package wait

import (
	"context"
	"time"
)

// Sleep waits d, or until ctx ends: then it returns ctx's error.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
