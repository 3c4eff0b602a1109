package outbound

import (
	"context"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/federation-gateway/gateway/shared/outbound/outboundtest"
)

// connCounter counts the connections a test server accepts: a refusal must happen
// before any connection, not at the TLS handshake or the HTTP answer.
type connCounter struct{ n atomic.Int64 }

func (c *connCounter) track(srv *httptest.Server) {
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			c.n.Add(1)
		}
	}
}

// startServer starts an http (or https) test server on loopback answering "ok" at / and
// redirecting /to?u=<url>, and counts its connections.
func startServer(t *testing.T, tlsOn bool) (*httptest.Server, *connCounter) {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("/to", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.URL.Query().Get("u"), http.StatusFound)
	})
	srv := httptest.NewUnstartedServer(mux)
	conns := &connCounter{}
	conns.track(srv)
	if tlsOn {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv, conns
}

// Each purpose's policy, under allow_private_networks on and off: what it may reach
// directly and by redirect. The local AWS endpoint and the metadata addresses are
// reachable by none.
func TestPolicies(t *testing.T) {
	// The local AWS endpoint: a loopback server whose address is denied.
	aws, awsConns := startServer(t, false)
	awsHostPort := strings.TrimPrefix(aws.URL, "http://")
	_, awsPort, _ := net.SplitHostPort(awsHostPort)
	// An operator's registry (or a demo agent) on loopback, over http.
	local, _ := startServer(t, false)
	// A public https host of the fake network, and a private one, both served by one TLS
	// test server.
	pub, _ := startServer(t, true)
	n := outboundtest.NewNet()
	n.Name("public.example.com", "93.184.216.34")
	n.Name("private.example.com", "10.0.0.7")
	n.Name("meta.example.com", "169.254.169.254")
	n.Name("imds6.example.com", "fd00:ec2::254")
	n.Name("aws.example.com", "127.0.0.1")
	n.Serve("93.184.216.34:443", pub.Listener.Addr().String())
	n.Serve("10.0.0.7:443", pub.Listener.Addr().String())
	n.Serve("169.254.169.254:443", pub.Listener.Addr().String())
	n.Serve("[fd00:ec2::254]:443", pub.Listener.Addr().String())
	n.Serve("127.0.0.1:"+awsPort, awsHostPort)

	via := func(base, target string) string { return base + "/to?u=" + url.QueryEscape(target) }
	type target struct {
		name, url string
		fake      bool // through the fake network (names of the test table)
	}
	targets := []target{
		{"public https", "https://public.example.com/", true},
		{"private https", "https://private.example.com/", true},
		{"loopback http", local.URL + "/", false},
		{"metadata service", "https://meta.example.com/latest/meta-data/", true},
		{"metadata service (IPv6)", "https://imds6.example.com/latest/meta-data/", true},
		{"local AWS endpoint", aws.URL + "/", false},
		{"local AWS endpoint as localhost", "http://localhost:" + awsPort + "/", false},
		{"local AWS endpoint by name", "http://aws.example.com:" + awsPort + "/", true},
		{"redirect to the metadata service", via("https://public.example.com", "https://169.254.169.254/latest/meta-data/"), true},
		{"redirect to the local AWS endpoint", via(local.URL, aws.URL+"/"), false},
		{"redirect to loopback", via("https://public.example.com", local.URL+"/"), true},
		{"redirect to private", via("https://public.example.com", "https://private.example.com/"), true},
	}
	// allowed[purpose][allowPrivate] lists the targets that answer; the others are refused.
	open := []string{"public https"}
	dev := []string{"public https", "private https", "loopback http", "redirect to private", "redirect to loopback"}
	allowed := map[Purpose]map[bool][]string{
		Registries:  {false: open, true: dev},
		Agents:      {false: open, true: dev},
		Identifiers: {false: open, true: open},
	}
	roots := pubRoots(pub)
	for _, purpose := range []Purpose{Registries, Agents, Identifiers} {
		for _, allowPrivate := range []bool{false, true} {
			for _, tt := range targets {
				name := purpose.String() + "/allow_private=" + map[bool]string{false: "off", true: "on"}[allowPrivate] + "/" + tt.name
				t.Run(name, func(t *testing.T) {
					opts := Options{Purpose: purpose, AllowPrivate: allowPrivate, Deny: []string{awsHostPort}, RootCAs: roots}
					if tt.fake {
						opts.Network = n
					}
					c := NewClient(opts)
					defer c.CloseIdleConnections()
					before := awsConns.n.Load()
					resp, err := c.Get(tt.url)
					if err == nil {
						resp.Body.Close()
					}
					want := false
					for _, a := range allowed[purpose][allowPrivate] {
						want = want || a == tt.name
					}
					switch {
					case want && (err != nil || resp.StatusCode != http.StatusOK):
						t.Fatalf("GET %s: %v; want 200", tt.url, err)
					case !want && err == nil:
						t.Fatalf("GET %s answered %d; want it refused", tt.url, resp.StatusCode)
					case !want && !IsRefused(err):
						t.Fatalf("GET %s: %v; want a refusal of the guard", tt.url, err)
					}
					if got := awsConns.n.Load() - before; got != 0 {
						t.Errorf("the local AWS endpoint accepted %d connections", got)
					}
				})
			}
		}
	}
}

func pubRoots(srv *httptest.Server) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(srv.Certificate())
	return p
}

// The Deny addresses: a loopback or unspecified endpoint is reachable on every loopback
// address, an unspecified one on every non-public address of the host too.
func TestDenied(t *testing.T) {
	tests := []struct {
		deny, dial string
		refused    bool
	}{
		{"127.0.0.1:4566", "127.0.0.1:4566", true},
		{"127.0.0.1:4566", "127.0.0.2:4566", true},
		{"127.0.0.1:4566", "[::1]:4566", true},
		{"127.0.0.1:4566", "127.0.0.1:4567", false},
		{"localhost:4566", "127.0.0.1:4566", true},
		{"localhost:4566", "[::1]:4566", true},
		{"0.0.0.0:4566", "10.0.0.7:4566", true},
		{"0.0.0.0:4566", "127.0.0.1:4566", true},
		{"0.0.0.0:4566", "93.184.216.34:4566", false},
		{"10.0.0.7:4566", "10.0.0.7:4566", true},
		{"10.0.0.7:4566", "10.0.0.8:4566", false},
		{"aws.example.com:4566", "10.0.0.9:4566", true},
		{"aws.example.com:4566", "10.0.0.8:4566", false},
	}
	n := outboundtest.NewNet()
	n.Name("aws.example.com", "10.0.0.9")
	for _, tt := range tests {
		g := &guard{allowPrivate: true, network: n, deny: parseDeny([]string{tt.deny})}
		ap := netip.MustParseAddrPort(tt.dial)
		err := g.checkDenied(context.Background(), ap.Addr(), ap.Port())
		if (err != nil) != tt.refused || (err != nil && !IsRefused(err)) {
			t.Errorf("deny %s, dial %s: %v; want refused %v", tt.deny, tt.dial, err, tt.refused)
		}
	}
}
