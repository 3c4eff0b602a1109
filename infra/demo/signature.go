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
// gateway forwards: it checks the gateway's signature against the gateway's published keys.
//
// It fetches the keys ahead, in the background, as soon as the gateway answers: the local
// stack runs one process per function, so a fetch from inside a delivery, which the
// gateway's route function is busy with, would wait for that same function.
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
	// The keys come from the background refresh only: fetching them here would wait for
	// the gateway's route function, which is busy delivering this very message.
	c.mu.Lock()
	jwks := c.jwks
	c.mu.Unlock()
	if jwks == nil {
		return "invalid: the gateway's keys are not fetched yet"
	}
	if err := delivery.VerifyForwarded(jwks, token, m); err != nil {
		return "invalid: " + err.Error()
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

// ready reports whether the keys have been fetched.
func (c *signatureChecker) ready() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.jwks != nil
}

// prefetch fetches the keys until done is closed: quickly until it has them, then once a
// minute, so a key the gateway rotates in is picked up.
func (c *signatureChecker) prefetch(done <-chan struct{}) {
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := c.keys(ctx, true)
		cancel()
		wait := time.Minute
		if err != nil && !c.ready() {
			wait = 200 * time.Millisecond
		}
		select {
		case <-done:
			return
		case <-time.After(wait):
		}
	}
}
