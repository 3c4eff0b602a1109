// Package outbound builds the HTTP clients the gateway uses to reach anything outside it:
// registries, agents, and the documents a caller's identifier names. None of them may
// become a way into the gateway's own network (loopback, VPC addresses, the instance
// metadata service, the local AWS endpoint). Each purpose has its own policy (Purpose);
// the address check runs when a connection is dialled, on the addresses the name resolved
// to, so a name that resolves differently later (DNS rebinding) and every redirect are
// covered, not only the URL as written.
package outbound

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/federation-gateway/gateway/shared/federation"
)

// Defaults for the zero values of Options.
const (
	DefaultTimeout      = 30 * time.Second
	DefaultMaxRedirects = 5
)

// Purpose is what a client reaches, and so which policy guards it.
//
//	purpose      URLs from                          http, loopback and private networks
//	Registries   the operator's configuration       only with AllowPrivate (development)
//	Agents       the A2A endpoints of registry cards only with AllowPrivate (demo agents run on loopback)
//	Identifiers  callers and cards: did:web          never, whatever AllowPrivate says
//	             documents, SPIFFE bundle/key URLs
//
// Under every policy, link-local addresses (169.254.0.0/16, fe80::/10: the cloud
// metadata services), the other metadata addresses (fd00:ec2::/32, 100.100.100.200),
// multicast, reserved and documentation ranges, and the Options.Deny addresses (the local
// AWS endpoint) are never dialled, directly or by redirect.
type Purpose int

// The purposes. The zero value is Registries.
const (
	Registries Purpose = iota
	Agents
	Identifiers
)

// String names the purpose as the configuration and the documentation do.
func (p Purpose) String() string {
	switch p {
	case Registries:
		return "registries"
	case Agents:
		return "agent endpoints"
	case Identifiers:
		return "caller-supplied identifiers"
	}
	return "purpose " + strconv.Itoa(int(p))
}

// Options configures NewClient.
type Options struct {
	// Purpose picks the policy (see Purpose).
	Purpose Purpose
	// AllowPrivate permits http URLs and loopback, private and shared (CGNAT) addresses
	// to Registries and Agents: the configuration's allow_private_networks, for local
	// development only. Identifiers ignore it.
	AllowPrivate bool
	// Deny lists host:port addresses no request may reach, under any policy: the local
	// AWS endpoint (AWS_ENDPOINT_URL) when there is one. A loopback or unspecified host
	// denies its port on every loopback address, since a server bound to one of them
	// answers there.
	Deny []string
	// Timeout bounds a whole request, redirects and body included. Zero means
	// DefaultTimeout; a client without one can hang a Lambda until its own timeout.
	Timeout time.Duration
	// MaxRedirects is how many redirects a request may follow. Zero means
	// DefaultMaxRedirects; a negative value follows none.
	MaxRedirects int
	// RootCAs are the certificate authorities trusted for https; nil means the system's.
	RootCAs *x509.CertPool
	// ClientCertificates are presented to a server that asks for one: a registry that
	// requires mutual TLS. The policy applies as to any other connection.
	ClientCertificates []tls.Certificate
	// Network resolves names and dials for the client; nil means the system's. Tests use
	// one to give a public name to a loopback test server: the guard checks every address
	// it resolves to before dialling, so it cannot open what the policy closes.
	Network Network
}

// Network is how a client resolves names and connects.
type Network interface {
	// LookupNetIP resolves host, as net.Resolver.LookupNetIP does.
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
	// DialContext connects to address (an IP:port the guard has checked).
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// ErrRefused is the cause of every error the guard returns for a target it will not
// connect to. Test for it with IsRefused.
var ErrRefused = errors.New("refused by the outbound guard")

// IsRefused reports whether err, or an error it wraps (such as the *url.Error an
// http.Client returns), is a refusal of the guard.
func IsRefused(err error) bool {
	return errors.Is(err, ErrRefused)
}

// NewClient returns an HTTP client that enforces opts' policy on every connection and
// redirect. It never uses a proxy from the environment: the proxy would resolve the name,
// out of the guard's sight.
func NewClient(opts Options) *http.Client {
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
	g := &guard{
		purpose:      opts.Purpose,
		allowPrivate: opts.AllowPrivate && opts.Purpose != Identifiers,
		network:      opts.Network,
		deny:         parseDeny(opts.Deny),
	}
	if g.network == nil {
		g.network = systemNetwork{&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}}
	}
	var tlsConfig *tls.Config
	if opts.RootCAs != nil || len(opts.ClientCertificates) > 0 {
		tlsConfig = &tls.Config{RootCAs: opts.RootCAs, Certificates: opts.ClientCertificates}
	}
	transport := &http.Transport{
		Proxy:                 nil,
		DialContext:           g.dialContext,
		TLSClientConfig:       tlsConfig,
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

type systemNetwork struct{ dialer *net.Dialer }

func (s systemNetwork) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, network, host)
}

func (s systemNetwork) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return s.dialer.DialContext(ctx, network, address)
}

// denied is one Options.Deny entry.
type denied struct {
	host string // as written: an IP literal or a name, resolved when a dial is checked
	port uint16
}

func parseDeny(list []string) []denied {
	var out []denied
	for _, hp := range list {
		host, portText, err := net.SplitHostPort(hp)
		if err != nil {
			continue
		}
		port, err := strconv.ParseUint(portText, 10, 16)
		if err != nil {
			continue
		}
		out = append(out, denied{host: strings.ToLower(host), port: uint16(port)})
	}
	return out
}

// guard holds the policy and the means to resolve and dial.
type guard struct {
	purpose      Purpose
	allowPrivate bool
	network      Network
	deny         []denied
}

// checkURL refuses what can be refused from the URL alone: a scheme other than https
// (http only where the policy allows private networks), and a host written as an IP
// literal the policy refuses. Names are checked when they are dialled.
func (g *guard) checkURL(u *url.URL) error {
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && g.allowPrivate:
	case u.Scheme == "http":
		return refusedf("%s: only https URLs are allowed for %s", u.Redacted(), g.purpose)
	default:
		return federation.Errorf(federation.EINVALID, "%s: scheme %q is not supported", u.Redacted(), u.Scheme)
	}
	if addr, err := netip.ParseAddr(u.Hostname()); err == nil {
		if err := g.checkAddr(addr, u.Hostname()); err != nil {
			return err
		}
	}
	return nil
}

// checkAddr applies the policy to one address; host is the name it was reached by.
func (g *guard) checkAddr(addr netip.Addr, host string) error {
	k, reason := classify(addr)
	if k == public || (k == private && g.allowPrivate) {
		return nil
	}
	if g.purpose == Identifiers && k == private {
		reason += "; " + g.purpose.String() + " reach public addresses only, in every mode"
	}
	if addr.WithZone("").String() == host {
		return refusedf("%s is %s", host, reason)
	}
	return refusedf("%q resolves to %s, %s", host, addr.WithZone(""), reason)
}

// checkDenied refuses a dial of addr:port that would reach a Deny address.
func (g *guard) checkDenied(ctx context.Context, addr netip.Addr, port uint16) error {
	addr = addr.Unmap().WithZone("")
	for _, d := range g.deny {
		if d.port != port {
			continue
		}
		var targets []netip.Addr
		switch a, err := netip.ParseAddr(d.host); {
		case err == nil:
			targets = []netip.Addr{a}
		case d.host == "localhost":
			targets = []netip.Addr{netip.IPv6Loopback(), netip.AddrFrom4([4]byte{127, 0, 0, 1})}
		default:
			// A name that does not resolve now cannot be what this dial reaches.
			targets, _ = g.network.LookupNetIP(ctx, "ip", d.host)
		}
		for _, t := range targets {
			t = t.Unmap().WithZone("")
			k, _ := classify(addr)
			switch {
			case t == addr:
			case (t.IsLoopback() || t.IsUnspecified()) && (addr.IsLoopback() || addr.IsUnspecified()):
			case t.IsUnspecified() && k != public: // bound to every interface of the host
			default:
				continue
			}
			return refusedf("%s is the local AWS endpoint, which no outbound request may reach", netip.AddrPortFrom(addr, port))
		}
	}
	return nil
}

// dialContext resolves the host itself and checks every address before dialling any, so
// the address connected to is one that was checked. A name with any refused address is
// refused as a whole: a mix of public and private answers is the shape of a rebinding
// attack, and trying the public ones first would only make the attack intermittent.
func (g *guard) dialContext(ctx context.Context, network, address string) (net.Conn, error) {
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
		addrs, err = g.network.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, err
		}
		if len(addrs) == 0 {
			return nil, &net.DNSError{Err: "no addresses", Name: host, IsNotFound: true}
		}
	}
	for i, a := range addrs {
		addrs[i] = a.Unmap()
		if err := g.checkAddr(a, host); err != nil {
			return nil, err
		}
		if err := g.checkDenied(ctx, a, uint16(port)); err != nil {
			return nil, err
		}
	}

	var firstErr error
	for _, a := range addrs {
		if (network == "tcp4" && !a.Is4()) || (network == "tcp6" && !a.Is6()) {
			continue
		}
		conn, err := g.network.DialContext(ctx, network, netip.AddrPortFrom(a, uint16(port)).String())
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
