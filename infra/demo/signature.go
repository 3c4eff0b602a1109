package demo

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/a2aproject/a2a-go/v2/a2a"

	"github.com/federation-gateway/gateway/shared/delivery"
)

// signatureChecker does what a careful target agent does with a message a federation
// gateway forwards: it checks the gateway's signature against the gateway's published keys,
// which it fetches when it first needs them (while the gateway's route function is waiting
// for this very delivery: another instance of the function serves the keys) and again when
// a signature names a key it does not know.
type signatureChecker struct {
	jwksURL string
	client  *http.Client

	mu      sync.Mutex
	jwks    []byte
	fetched time.Time
}

// check returns "" for a message that did not come through a gateway, "valid" for one
// whose signature verifies, and "invalid: <why>" otherwise.
func (c *signatureChecker) check(ctx context.Context, msg *a2a.Message) string {
	if msg == nil || msg.Metadata[delivery.MetaSignature] == nil {
		return ""
	}
	m, token, err := delivery.ReadForwarded(msg)
	if err != nil {
		return "invalid: " + err.Error()
	}
	jwks, err := c.keys(ctx, false)
	if err != nil {
		return "invalid: " + err.Error()
	}
	if err := delivery.VerifyForwarded(jwks, token, m); err != nil {
		// The gateway may have rotated its key since: fetch the keys again, once.
		if jwks, err = c.keys(ctx, true); err != nil {
			return "invalid: " + err.Error()
		}
		if err := delivery.VerifyForwarded(jwks, token, m); err != nil {
			return "invalid: " + err.Error()
		}
	}
	return "valid"
}

func (c *signatureChecker) keys(ctx context.Context, refresh bool) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.jwks != nil && !refresh && time.Since(c.fetched) < 5*time.Minute {
		return c.jwks, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.jwksURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch the gateway's keys: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch the gateway's keys: %s", resp.Status)
	}
	c.jwks, c.fetched = body, time.Now()
	return body, nil
}
