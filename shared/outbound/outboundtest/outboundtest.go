// Package outboundtest gives tests of outbound clients a network of their own: names
// resolve through a table, and only the addresses the table maps to a local test server
// (and loopback ones) can be dialled, so a test can give a "public" name to a loopback server and no test
// traffic ever leaves the machine.
package outboundtest

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
)

// Net is an outbound.Network for tests.
type Net struct {
	mu      sync.Mutex
	names   map[string][]netip.Addr // host name -> addresses
	servers map[string]string       // "ip:port" -> the local test server's address
	dialed  []string
}

// NewNet returns an empty Net.
func NewNet() *Net {
	return &Net{names: map[string][]netip.Addr{}, servers: map[string]string{}}
}

// Name makes host resolve to addrs.
func (n *Net) Name(host string, addrs ...string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]netip.Addr, len(addrs))
	for i, a := range addrs {
		out[i] = netip.MustParseAddr(a)
	}
	n.names[host] = out
}

// Serve makes a dial of addrPort ("93.184.216.34:443") reach the local server at local.
func (n *Net) Serve(addrPort, local string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.servers[addrPort] = local
}

// Dialed returns the addresses dialled so far, and forgets them.
func (n *Net) Dialed() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	d := n.dialed
	n.dialed = nil
	return d
}

// LookupNetIP implements outbound.Network.
func (n *Net) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	addrs, ok := n.names[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return append([]netip.Addr(nil), addrs...), nil
}

// DialContext implements outbound.Network. A loopback address is dialled as it is; any
// other that maps to no test server fails: nothing leaves the machine.
func (n *Net) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	n.mu.Lock()
	n.dialed = append(n.dialed, addr)
	target, ok := n.servers[addr]
	n.mu.Unlock()
	if ap, err := netip.ParseAddrPort(addr); !ok && err == nil && ap.Addr().IsLoopback() {
		target, ok = addr, true
	}
	if !ok {
		return nil, fmt.Errorf("outboundtest: %s is not a test server", addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, target)
}
