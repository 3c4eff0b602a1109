package localstack

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// laggingConn stands for a busy machine: the goroutine that writes a request to the
// emulator is descheduled for a while right after each write.
type laggingConn struct{ net.Conn }

func (c laggingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	time.Sleep(30 * time.Millisecond)
	return n, err
}

// A response the emulator streams while the proxy's request writer lags behind arrives
// whole. Streaming the request body through made the writer read it again after the
// server had closed it (the server closes a request body when the response starts), which
// tore down the connection mid-response: the client got "unexpected EOF" and the proxy
// logged "use of closed network connection", as the dev stack did under load.
func TestProxyKeepsResponseWhenRequestWriteLags(t *testing.T) {
	const chunks, size = 64, 8 << 10
	emulator := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			t.Errorf("emulator: read request: %v", err)
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		chunk := []byte(strings.Repeat("x", size))
		for range chunks { // kumo encodes large answers straight to the connection: chunked
			_, _ = w.Write(chunk)
			w.(http.Flusher).Flush()
			time.Sleep(time.Millisecond)
		}
	}))
	defer emulator.Close()
	target, _ := url.Parse(emulator.URL)
	dialer := &net.Dialer{}
	front := httptest.NewServer(newProxy(target, func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return laggingConn{c}, nil
	}))
	defer front.Close()

	for i := range 3 {
		resp, err := http.Post(front.URL, "application/x-amz-json-1.0", bytes.NewReader([]byte(`{"TableName":"t"}`)))
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || len(body) != chunks*size {
			t.Fatalf("request %d: got %d of %d bytes: %v", i, len(body), chunks*size, err)
		}
	}
}

// A request body over the limit is refused with 413 before anything reaches the emulator.
func TestProxyRefusesHugeBodies(t *testing.T) {
	var reached atomic.Bool
	emulator := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached.Store(true) }))
	defer emulator.Close()
	target, _ := url.Parse(emulator.URL)
	front := httptest.NewServer(newProxy(target, (&net.Dialer{}).DialContext))
	defer front.Close()
	resp, err := http.Post(front.URL, "application/json", io.LimitReader(zeros{}, maxRequestBody+1))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || reached.Load() {
		t.Errorf("status %d, reached the emulator: %v", resp.StatusCode, reached.Load())
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }
