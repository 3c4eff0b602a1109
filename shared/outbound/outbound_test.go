package outbound

import (
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/outbound/outboundtest"
)

func TestCheckAddr(t *testing.T) {
	tests := []struct {
		addr   string
		reason string // "" when the address is allowed
	}{
		{"127.0.0.1", "loopback"},
		{"127.10.20.30", "loopback"},
		{"::1", "loopback"},
		{"::ffff:127.0.0.1", "IPv4-mapped form of 127.0.0.1, a loopback"},
		{"10.0.0.1", "private"},
		{"10.255.255.255", "private"},
		{"172.16.0.1", "private"},
		{"172.31.255.254", "private"},
		{"192.168.1.1", "private"},
		{"::ffff:192.168.1.1", "IPv4-mapped form of 192.168.1.1, a private"},
		{"fc00::1", "unique-local"},
		{"fd12:3456::1", "unique-local"},
		{"169.254.169.254", "metadata"},
		{"::ffff:169.254.169.254", "metadata"},
		{"169.254.1.1", "link-local"},
		{"fe80::1", "link-local"},
		{"fe80::1%eth0", "link-local"},
		{"0.0.0.0", "unspecified"},
		{"::", "unspecified"},
		{"0.1.2.3", "this network"},
		{"100.64.0.1", "carrier-grade NAT"},
		{"100.127.255.254", "carrier-grade NAT"},
		{"224.0.0.1", "multicast"},
		{"ff02::1", "multicast"},
		{"255.255.255.255", "broadcast"},
		{"240.0.0.1", "reserved"},
		{"198.18.0.1", "benchmarking"},
		{"192.0.2.10", "documentation"},
		{"64:ff9b::a9fe:a9fe", "embedding 169.254.169.254"}, // NAT64 of the metadata service
		{"2002:7f00:1::1", "embedding 127.0.0.1"},           // 6to4 of loopback
		{"::7f00:1", "IPv4-compatible"},
		{"fec0::1", "site-local"},
		{"fd00:ec2::254", "AWS instance service"},
		{"100.100.100.200", "metadata"},

		{"93.184.216.34", ""},
		{"8.8.8.8", ""},
		{"172.32.0.1", ""},  // just past 172.16.0.0/12
		{"100.128.0.1", ""}, // just past 100.64.0.0/10
		{"::ffff:93.184.216.34", ""},
		{"64:ff9b::5db8:d822", ""}, // NAT64 of 93.184.216.34
		{"2606:2800:220:1:248:1893:25c8:1946", ""},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			err := CheckAddr(netip.MustParseAddr(tt.addr))
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("CheckAddr(%s) = %v, want nil", tt.addr, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("CheckAddr(%s) = nil, want a refusal (%s)", tt.addr, tt.reason)
			}
			if !IsRefused(err) || federation.ErrorCode(err) != federation.EINVALID {
				t.Errorf("CheckAddr(%s) = %v: want an EINVALID refusal", tt.addr, err)
			}
			if msg := federation.ErrorMessage(err); !strings.Contains(msg, tt.reason) {
				t.Errorf("CheckAddr(%s) message %q does not say %q", tt.addr, msg, tt.reason)
			}
		})
	}
}

// counter is a handler that counts its requests and answers 200 "ok".
type counter struct{ n atomic.Int64 }

func (c *counter) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	c.n.Add(1)
	io.WriteString(w, "ok")
}

// refusal asserts that err is a refusal reachable through the *url.Error the client
// returns, whose caller-safe message contains every one of want.
func refusal(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("request succeeded; want it refused")
	}
	var uerr *url.Error
	if !errors.As(err, &uerr) {
		t.Errorf("error %T is not a *url.Error", err)
	}
	var ferr *federation.Error
	if !errors.As(err, &ferr) || ferr.Code != federation.EINVALID {
		t.Fatalf("error %v: want a *federation.Error with code %s", err, federation.EINVALID)
	}
	if !IsRefused(err) {
		t.Errorf("IsRefused(%v) = false", err)
	}
	for _, w := range want {
		if !strings.Contains(ferr.Message, w) {
			t.Errorf("message %q does not contain %q", ferr.Message, w)
		}
	}
}

func TestClientRefusesLoopbackLiteral(t *testing.T) {
	var hits counter
	srv := httptest.NewTLSServer(&hits)
	defer srv.Close()

	_, err := NewClient(Options{}).Get(srv.URL + "/x")
	refusal(t, err, "127.0.0.1", "loopback")
	if hits.n.Load() != 0 {
		t.Errorf("the server got %d requests; want none", hits.n.Load())
	}
}

func TestClientRefusesHTTP(t *testing.T) {
	var hits counter
	srv := httptest.NewServer(&hits)
	defer srv.Close()

	_, err := NewClient(Options{}).Get(srv.URL)
	refusal(t, err, "only https")
	if hits.n.Load() != 0 {
		t.Errorf("the server got %d requests; want none", hits.n.Load())
	}

	resp, err := NewClient(Options{AllowPrivate: true}).Get(srv.URL)
	if err != nil {
		t.Fatalf("with AllowPrivate: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("with AllowPrivate: status %d", resp.StatusCode)
	}
}

func TestClientRefusesOtherSchemes(t *testing.T) {
	_, err := NewClient(Options{AllowPrivate: true}).Get("ftp://example.com/x")
	if federation.ErrorCode(err) != federation.EINVALID {
		t.Fatalf("ftp URL: %v; want EINVALID", err)
	}
}

// guardedClient returns a client of opts whose network is n, trusting srv's certificate
// (issued for *.example.com).
func guardedClient(n *outboundtest.Net, srv *httptest.Server, opts Options) *http.Client {
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	opts.Network, opts.RootCAs = n, roots
	return NewClient(opts)
}

func TestClientRedirects(t *testing.T) {
	var hits atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("/to", func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Redirect(w, r, r.URL.Query().Get("u"), http.StatusFound)
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Redirect(w, r, "/loop", http.StatusFound)
	})
	srv := httptest.NewTLSServer(mux)
	defer srv.Close()

	f := outboundtest.NewNet()
	for name, addrs := range map[string][]string{
		"registry.example.com": {"93.184.216.34"},
		"other.example.com":    {"93.184.216.35"},
		"evil.example.com":     {"127.0.0.1"},
		"meta.example.com":     {"169.254.169.254"},
		"mapped.example.com":   {"::ffff:10.0.0.7"},
		"rebind.example.com":   {"93.184.216.34", "10.0.0.1"},
		"cgnat.example.com":    {"100.64.0.1"},
	} {
		f.Name(name, addrs...)
	}
	f.Serve("93.184.216.34:443", srv.Listener.Addr().String())
	f.Serve("93.184.216.35:443", srv.Listener.Addr().String())
	redirect := func(target string) string {
		return "https://registry.example.com/to?u=" + url.QueryEscape(target)
	}

	tests := []struct {
		name     string
		url      string
		opts     Options
		wantHits int64
		refused  []string // the refusal message must contain these; nil for no refusal
		wantCode string   // for an error that is not a refusal
	}{
		{name: "public name", url: "https://registry.example.com/ok", wantHits: 1},
		{name: "name of a loopback address", url: "https://evil.example.com/ok", wantHits: 0,
			refused: []string{"evil.example.com", "127.0.0.1", "loopback"}},
		{name: "redirect to another public name", url: redirect("https://other.example.com/ok"), wantHits: 2},
		{name: "redirect to a name of a loopback address", url: redirect("https://evil.example.com/ok"), wantHits: 1,
			refused: []string{"evil.example.com", "127.0.0.1", "loopback"}},
		{name: "redirect to a name of the metadata service", url: redirect("https://meta.example.com/latest/meta-data/"), wantHits: 1,
			refused: []string{"169.254.169.254", "metadata"}},
		{name: "redirect to the metadata service literal", url: redirect("https://169.254.169.254/latest/meta-data/"), wantHits: 1,
			refused: []string{"169.254.169.254", "link-local"}},
		{name: "redirect to an IPv4-mapped literal", url: redirect("https://[::ffff:127.0.0.1]/"), wantHits: 1,
			refused: []string{"::ffff:127.0.0.1", "IPv4-mapped", "loopback"}},
		{name: "redirect to a name with a mapped private address", url: redirect("https://mapped.example.com/"), wantHits: 1,
			refused: []string{"10.0.0.7", "private"}},
		{name: "redirect to a name with public and private addresses", url: redirect("https://rebind.example.com/ok"), wantHits: 1,
			refused: []string{"rebind.example.com", "10.0.0.1"}},
		{name: "redirect to CGNAT", url: redirect("https://cgnat.example.com/"), wantHits: 1,
			refused: []string{"100.64.0.1", "carrier-grade NAT"}},
		{name: "redirect to http", url: redirect("http://registry.example.com/ok"), wantHits: 1,
			refused: []string{"only https"}},
		{name: "redirect loop", url: "https://registry.example.com/loop", opts: Options{MaxRedirects: 3}, wantHits: 4,
			wantCode: federation.EUNAVAILABLE},
		{name: "no redirects followed", url: redirect("https://other.example.com/ok"), opts: Options{MaxRedirects: -1}, wantHits: 1,
			wantCode: federation.EUNAVAILABLE},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hits.Store(0)
			f.Dialed()
			c := guardedClient(f, srv, tt.opts)
			defer c.CloseIdleConnections()
			resp, err := c.Get(tt.url)
			if err == nil {
				defer resp.Body.Close()
			}
			switch {
			case tt.refused != nil:
				refusal(t, err, tt.refused...)
			case tt.wantCode != "":
				if federation.ErrorCode(err) != tt.wantCode || IsRefused(err) {
					t.Fatalf("error %v: want code %s, not a refusal", err, tt.wantCode)
				}
			case err != nil:
				t.Fatalf("GET %s: %v", tt.url, err)
			case resp.StatusCode != http.StatusOK:
				t.Fatalf("GET %s: status %d", tt.url, resp.StatusCode)
			}
			if got := hits.Load(); got != tt.wantHits {
				t.Errorf("the server got %d requests; want %d", got, tt.wantHits)
			}
			for _, d := range f.Dialed() {
				if a, err := netip.ParseAddrPort(d); err != nil || CheckAddr(a.Addr()) != nil {
					t.Errorf("dialled %s, which the guard should have refused", d)
				}
			}
		})
	}
}

func TestClientRebinding(t *testing.T) {
	var hits counter
	srv := httptest.NewTLSServer(&hits)
	defer srv.Close()
	f := outboundtest.NewNet()
	f.Name("registry.example.com", "93.184.216.34")
	f.Serve("93.184.216.34:443", srv.Listener.Addr().String())
	c := guardedClient(f, srv, Options{})
	resp, err := c.Get("https://registry.example.com/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	// The name now resolves to the metadata service: the next connection is refused,
	// though the URL is the same.
	f.Name("registry.example.com", "169.254.169.254")
	c.CloseIdleConnections()
	_, err = c.Get("https://registry.example.com/")
	refusal(t, err, "registry.example.com", "169.254.169.254")
	if hits.n.Load() != 1 {
		t.Errorf("the server got %d requests; want 1", hits.n.Load())
	}
}

func TestClientTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)

	_, err := NewClient(Options{AllowPrivate: true, Timeout: 50 * time.Millisecond}).Get(srv.URL)
	var nerr net.Error
	if !errors.As(err, &nerr) || !nerr.Timeout() {
		t.Fatalf("error %v: want a timeout", err)
	}
	if IsRefused(err) {
		t.Errorf("a timeout is not a refusal")
	}
}
