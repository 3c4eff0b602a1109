// Package outbound builds the HTTP clients the gateway uses to reach registries and agents:
// URLs that come from configuration and from registries' answers, which must not become a
// way into the gateway's own network (loopback, VPC addresses, the instance metadata
// service). The address check runs when a connection is dialled, on the addresses the name
// resolved to, so a name that resolves differently later (DNS rebinding) and every redirect
// are covered, not only the URL as written.
package outbound

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"time"

	"github.com/federation-gateway/gateway/shared/federation"
)

// Defaults for the zero values of Options.
const (
	DefaultTimeout      = 30 * time.Second
	DefaultMaxRedirects = 5
)

// Options configures NewClient.
type Options struct {
	// AllowPrivate permits http URLs and loopback, private and link-local addresses: the
	// configuration's allow_private_networks, for local development only.
	AllowPrivate bool
	// Timeout bounds a whole request, redirects and body included. Zero means
	// DefaultTimeout; a client without one can hang a Lambda until its own timeout.
	Timeout time.Duration
	// MaxRedirects is how many redirects a request may follow. Zero means
	// DefaultMaxRedirects; a negative value follows none.
	MaxRedirects int
}

// ErrRefused is the cause of every error the guard returns for a target it will not
// connect to. Test for it with IsRefused.
var ErrRefused = errors.New("refused by the outbound guard (allow_private_networks permits it, for local development only)")

// IsRefused reports whether err, or an error it wraps (such as the *url.Error an
// http.Client returns), is a refusal of the guard.
func IsRefused(err error) bool {
	return errors.Is(err, ErrRefused)
}

// NewClient returns an HTTP client that enforces opts. Without AllowPrivate it only sends
// https requests, and dials only public unicast addresses (see CheckAddr). It never uses a
// proxy from the environment: the proxy would resolve the name, out of the guard's sight.
func NewClient(opts Options) *http.Client {
	return newClient(opts, hooks{})
}

// hooks replace the resolver and the dialer, so that tests can make a "public" name lead
// to a loopback test server without any traffic leaving the machine. Production code
// leaves them nil.
type hooks struct {
	lookup    func(ctx context.Context, host string) ([]netip.Addr, error)
	dial      func(ctx context.Context, network, addr string) (net.Conn, error)
	tlsConfig *tls.Config
}

func newClient(opts Options, h hooks) *http.Client {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	maxRedirects := opts.MaxRedirects
	switch {
	case maxRedirects == 0:
		maxRedirects = DefaultMaxRedirects
	case maxRedirects < 0:
		maxRedirects = 0
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	g := &guard{allowPrivate: opts.AllowPrivate, lookup: h.lookup, dial: h.dial}
	if g.lookup == nil {
		g.lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	if g.dial == nil {
		g.dial = dialer.DialContext
	}
	transport := &http.Transport{
		Proxy:                 nil,
		DialContext:           g.dialContext,
		TLSClientConfig:       h.tlsConfig,
		ForceAttemptHTTP2:     true, // a custom DialContext turns HTTP/2 off unless asked
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConns:          100,
		// The registry adapters fetch cards a few at a time from one host; the default of 2
		// idle connections per host would close and reopen the others on every batch.
		MaxIdleConnsPerHost: 16,
	}
	return &http.Client{
		Transport: &guardTransport{guard: g, base: transport},
		Timeout:   opts.Timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > maxRedirects {
				return federation.Errorf(federation.EUNAVAILABLE, "%s: stopped after %d redirects", via[0].URL.Redacted(), maxRedirects)
			}
			return g.checkURL(req.URL)
		},
	}
}

// guard holds the policy and the means to resolve and dial.
type guard struct {
	allowPrivate bool
	lookup       func(ctx context.Context, host string) ([]netip.Addr, error)
	dial         func(ctx context.Context, network, addr string) (net.Conn, error)
}

// checkURL refuses what can be refused from the URL alone: a scheme other than https, and
// a host written as a non-public IP literal. Names are checked when they are dialled.
func (g *guard) checkURL(u *url.URL) error {
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && g.allowPrivate:
	case u.Scheme == "http":
		return refusedf("%s: only https URLs are allowed", u.Redacted())
	default:
		return federation.Errorf(federation.EINVALID, "%s: scheme %q is not supported", u.Redacted(), u.Scheme)
	}
	if g.allowPrivate {
		return nil
	}
	if addr, err := netip.ParseAddr(u.Hostname()); err == nil {
		if reason := classify(addr); reason != "" {
			return refusedf("%s is %s", u.Hostname(), reason)
		}
	}
	return nil
}

// dialContext resolves the host itself and checks every address before dialling any, so
// the address connected to is one that was checked. A name with any refused address is
// refused as a whole: a mix of public and private answers is the shape of a rebinding
// attack, and trying the public ones first would only make the attack intermittent.
func (g *guard) dialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if g.allowPrivate {
		return g.dial(ctx, network, address)
	}
	host, portText, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("dial %s: bad port: %w", address, err)
	}

	var addrs []netip.Addr
	if literal, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{literal}
	} else {
		addrs, err = g.lookup(ctx, host)
		if err != nil {
			return nil, err
		}
		if len(addrs) == 0 {
			return nil, &net.DNSError{Err: "no addresses", Name: host, IsNotFound: true}
		}
	}
	for i, a := range addrs {
		addrs[i] = a.Unmap()
		if reason := classify(a); reason != "" {
			if a.WithZone("").String() == host {
				return nil, refusedf("%s is %s", host, reason)
			}
			return nil, refusedf("%q resolves to %s, %s", host, a.WithZone(""), reason)
		}
	}

	var firstErr error
	for _, a := range addrs {
		if (network == "tcp4" && !a.Is4()) || (network == "tcp6" && !a.Is6()) {
			continue
		}
		conn, err := g.dial(ctx, network, netip.AddrPortFrom(a, uint16(port)).String())
		if err == nil {
			return conn, nil
		}
		if firstErr == nil {
			firstErr = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	if firstErr == nil {
		firstErr = &net.AddrError{Err: "no address of network " + network, Addr: host}
	}
	return nil, firstErr
}

// guardTransport checks each request's URL before it is sent: redirects pass here too,
// and so does the first request, which CheckRedirect never sees.
type guardTransport struct {
	guard *guard
	base  http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t *guardTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := t.guard.checkURL(req.URL); err != nil {
		if req.Body != nil {
			req.Body.Close() // a RoundTripper must close the body, even on error
		}
		return nil, err
	}
	return t.base.RoundTrip(req)
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the pooled connections.
func (t *guardTransport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
