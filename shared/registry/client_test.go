package registry_test

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/federation-gateway/gateway/infra/demo"
	"github.com/federation-gateway/gateway/shared/directory"
	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/outbound"
	"github.com/federation-gateway/gateway/shared/registry"
)

// failFirst makes the listing answer status to its first n requests.
func failFirst(f *fake, n int64, status int) *atomic.Int64 {
	var calls atomic.Int64
	f.SetFaults(demo.Faults{Intercept: func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/api/v1/agent-cards/" && calls.Add(1) <= n {
			w.WriteHeader(status)
			return true
		}
		return false
	}})
	return &calls
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name         string
		status       int
		failures     int64
		retries      int
		wantErr      bool
		wantRequests int
	}{
		{name: "503 then success", status: http.StatusServiceUnavailable, failures: 2, wantRequests: 3},
		{name: "500 then success", status: http.StatusInternalServerError, failures: 1, wantRequests: 2},
		{name: "429 then success", status: http.StatusTooManyRequests, failures: 3, wantRequests: 4},
		{name: "5xx beyond the retries", status: http.StatusBadGateway, failures: 10, retries: 2, wantErr: true, wantRequests: 3},
		{name: "no retries", status: http.StatusServiceUnavailable, failures: 1, retries: -1, wantErr: true, wantRequests: 1},
		{name: "400 is not retried", status: http.StatusBadRequest, failures: 1, wantErr: true, wantRequests: 1},
		{name: "401 is not retried", status: http.StatusUnauthorized, failures: 1, wantErr: true, wantRequests: 1},
		{name: "403 is not retried", status: http.StatusForbidden, failures: 1, wantErr: true, wantRequests: 1},
		{name: "404 of the listing is not retried", status: http.StatusNotFound, failures: 1, wantErr: true, wantRequests: 1},
		{name: "422 is not retried", status: http.StatusUnprocessableEntity, failures: 1, wantErr: true, wantRequests: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, 0, false)
			calls := failFirst(f, tt.failures, tt.status)
			opts := testOptions()
			opts.Retries = tt.retries
			l, err := newClient(t, avRegistry(f.srv.URL), opts).Fetch(context.Background(), directory.Request{})
			if tt.wantErr {
				wantCode(t, err, federation.EUNAVAILABLE, `"av-one"`, "GET /api/v1/agent-cards/", http.StatusText(tt.status))
			} else if err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			if got := calls.Load(); got != int64(tt.wantRequests) || l.Requests != tt.wantRequests {
				t.Errorf("%d requests (Requests %d); want %d", got, l.Requests, tt.wantRequests)
			}
		})
	}
}

func TestTimeout(t *testing.T) {
	f := newFake(t, 0, false)
	var calls atomic.Int64
	f.SetFaults(demo.Faults{Intercept: func(w http.ResponseWriter, r *http.Request) bool {
		calls.Add(1)
		<-r.Context().Done() // a registry that never answers
		return true
	}})
	opts := testOptions()
	opts.RequestTimeout, opts.Retries = 50*time.Millisecond, 1
	l, err := newClient(t, avRegistry(f.srv.URL), opts).Fetch(context.Background(), directory.Request{})
	wantCode(t, err, federation.EUNAVAILABLE, `"av-one"`, "timed out", "2 attempts")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v does not wrap context.DeadlineExceeded", err)
	}
	if calls.Load() != 2 || l.Requests != 2 {
		t.Errorf("%d requests (Requests %d); want 2: a timeout is retried", calls.Load(), l.Requests)
	}
}

func TestCallerDeadlineIsNotRetried(t *testing.T) {
	f := newFake(t, 0, false)
	f.SetFaults(demo.Faults{Intercept: func(w http.ResponseWriter, r *http.Request) bool {
		<-r.Context().Done()
		return true
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	l, err := newClient(t, avRegistry(f.srv.URL), testOptions()).Fetch(ctx, directory.Request{})
	wantCode(t, err, federation.EUNAVAILABLE, "timed out")
	if l.Requests != 1 {
		t.Errorf("Requests = %d: the caller's own deadline is not retried", l.Requests)
	}
}

func TestRefusedByTheGuard(t *testing.T) {
	f := newFake(t, 1, false)
	// The production client: a loopback registry is refused, and not retried.
	c, err := registry.New(avRegistry(f.srv.URL), outbound.NewClient(outbound.Options{}), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	l, err := c.Fetch(context.Background(), directory.Request{})
	wantCode(t, err, federation.EINVALID, `"av-one"`, "only https")
	if msg := federation.ErrorMessage(err); !strings.Contains(msg, `registry "av-one"`) || !strings.Contains(msg, "only https") {
		t.Errorf("caller-safe message %q: want the registry and the reason", msg)
	}
	if !outbound.IsRefused(err) || l.Requests != 1 {
		t.Errorf("IsRefused %v, Requests %d", outbound.IsRefused(err), l.Requests)
	}
	if pages, _ := f.Counts(); pages != 0 {
		t.Errorf("the registry got %d requests", pages)
	}
}

func TestCredentials(t *testing.T) {
	f := newFake(t, 1, false)
	opts := testOptions()
	opts.Credential = "avreg_test"
	fetch(t, newClient(t, avRegistry(f.srv.URL), opts), directory.Request{})
	for _, r := range f.Requests() {
		if h := r.Header; h.Get("X-Api-Key") != "avreg_test" || h.Get("Authorization") != "" {
			t.Errorf("headers %v: want X-Api-Key only", h)
		}
	}

	f.ResetRequests()
	fetch(t, newClient(t, avRegistry(f.srv.URL), testOptions()), directory.Request{})
	for _, r := range f.Requests() {
		if h := r.Header; h.Get("X-Api-Key") != "" || h.Get("Authorization") != "" {
			t.Errorf("headers %v: want no credential", h)
		}
	}
}

func TestCredentialsStayOnTheirHost(t *testing.T) {
	var leaked atomic.Value
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked.Store(r.Header.Get("X-Api-Key") + r.Header.Get("Authorization"))
		writeJSON(w, http.StatusOK, map[string]any{"items": []any{}})
	}))
	defer other.Close()
	f := newFake(t, 0, false)
	f.SetFaults(demo.Faults{Intercept: func(w http.ResponseWriter, r *http.Request) bool {
		http.Redirect(w, r, other.URL+r.URL.RequestURI(), http.StatusFound)
		return true
	}})
	opts := testOptions()
	opts.Credential = "avreg_test"
	fetch(t, newClient(t, avRegistry(f.srv.URL), opts), directory.Request{})
	if got, _ := leaked.Load().(string); got != "" {
		t.Errorf("the credential followed a redirect to another host: %q", got)
	}
	if got := f.Requests()[0].Header.Get("X-Api-Key"); got != "avreg_test" {
		t.Errorf("the registry itself got X-Api-Key %q", got)
	}
}

func TestNew(t *testing.T) {
	hc := outbound.NewClient(outbound.Options{AllowPrivate: true})
	tests := []struct {
		name string
		reg  federation.Registry
		hc   *http.Client
		want string
	}{
		{"unknown kind", federation.Registry{ID: "x", URL: "https://r.example.com", Kind: "ldap"}, hc, "unknown kind"},
		{"relative URL", federation.Registry{ID: "x", URL: "/api", Kind: federation.KindAgentVault}, hc, "not an absolute"},
		{"query in an AgentVault URL", federation.Registry{ID: "x", URL: "https://r.example.com/?a=b", Kind: federation.KindAgentVault}, hc, "no query"},
		{"a2a without agents", federation.Registry{ID: "x", Kind: federation.KindA2A}, hc, "agents"},
		{"a2a agent not a URL", federation.Registry{ID: "x", Kind: federation.KindA2A, Agents: []string{"agent"}}, hc, "not an absolute"},
		{"no HTTP client", federation.Registry{ID: "x", URL: "https://r.example.com", Kind: federation.KindStatic}, nil, "no HTTP client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := registry.New(tt.reg, tt.hc, registry.Options{})
			wantCode(t, err, federation.EINVALID, `"x"`, tt.want)
		})
	}
	for _, kind := range federation.RegistryKinds {
		reg := federation.Registry{ID: "ok", URL: "https://r.example.com/base/", Kind: kind, Agents: []string{"https://a.example.com"}}
		if _, err := registry.New(reg, hc, registry.Options{}); err != nil {
			t.Errorf("New(%s): %v", kind, err)
		}
	}
}

func TestBasePath(t *testing.T) {
	// A registry behind a path prefix keeps it in every request.
	f := newFake(t, 2, false)
	mux := http.NewServeMux()
	mux.Handle("/registry/", http.StripPrefix("/registry", f.Handler()))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	l := fetch(t, newClient(t, avRegistry(srv.URL+"/registry/"), testOptions()), directory.Request{})
	if got := sourceIDs(l.Cards); !slices.Equal(got, f.ids) {
		t.Errorf("Cards = %v, want %v", got, f.ids)
	}
}

// A registry's last error names the cause in words that show no address beyond the
// registry's own URL: a refused connection, a timeout, an untrusted certificate, a status.
func TestErrorCauses(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	slow := newFake(t, 0, false)
	slow.SetFaults(demo.Faults{Intercept: func(w http.ResponseWriter, r *http.Request) bool {
		<-r.Context().Done()
		return true
	}})
	down := newFake(t, 0, false)
	down.SetFaults(demo.Faults{Intercept: func(w http.ResponseWriter, r *http.Request) bool {
		w.WriteHeader(http.StatusServiceUnavailable)
		return true
	}})
	untrusted := httptest.NewUnstartedServer(http.NotFoundHandler())
	untrusted.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshake errors are the point
	untrusted.StartTLS()
	defer untrusted.Close()

	tests := []struct {
		name, url, want string
		timeout         time.Duration
	}{
		{"connection refused", closed.URL, "GET /api/v1/agent-cards/ failed: connection refused", 0},
		{"timeout", slow.srv.URL, "GET /api/v1/agent-cards/ timed out after 50ms", 50 * time.Millisecond},
		{"status", down.srv.URL, "GET /api/v1/agent-cards/: 503 Service Unavailable", 0},
		{"untrusted certificate", untrusted.URL, "failed: its TLS certificate is not trusted", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := testOptions()
			opts.Retries, opts.Credential = -1, "avreg_secret"
			if tt.timeout > 0 {
				opts.RequestTimeout = tt.timeout
			}
			_, err := newClient(t, avRegistry(tt.url), opts).Fetch(context.Background(), directory.Request{})
			msg := federation.ErrorMessage(err)
			if !strings.Contains(msg, tt.want) {
				t.Errorf("message %q, want it to say %q", msg, tt.want)
			}
			if strings.Contains(msg, "127.0.0.1") || strings.Contains(msg, "avreg_secret") {
				t.Errorf("message %q shows an address or the credential", msg)
			}
		})
	}
}
