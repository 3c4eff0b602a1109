package outbound

import (
	"net/netip"

	"github.com/federation-gateway/gateway/shared/federation"
)

// CheckAddr returns nil when addr is a public unicast address the gateway may connect to,
// and otherwise an EINVALID error, matched by IsRefused, that says what kind of address it
// is. It is the test every policy applies to the addresses it dials; only Registries and
// Agents with AllowPrivate relax it, for loopback and private ranges.
func CheckAddr(addr netip.Addr) error {
	if kind, reason := classify(addr); kind != public {
		return refusedf("%s is %s", addr.WithZone(""), reason)
	}
	return nil
}

// kind is what an address is to the guard.
type kind int

const (
	// public: any policy may dial it.
	public kind = iota
	// private: loopback, RFC 1918, unique-local and shared (CGNAT) addresses, which
	// AllowPrivate opens to Registries and Agents for local development.
	private
	// forbidden: never dialled by any policy: link-local (the cloud metadata services
	// live there), multicast, unspecified, reserved and documentation ranges.
	forbidden
)

// metadata lists the cloud instance metadata endpoints that sit outside the link-local
// ranges: inside a range AllowPrivate opens, so they are named one by one.
var metadata = []struct {
	prefix netip.Prefix
	reason string
}{
	{netip.MustParsePrefix("fd00:ec2::/32"), "an AWS instance service address (fd00:ec2::/32: metadata, DNS, time)"},
	{netip.MustParsePrefix("100.100.100.200/32"), "a cloud instance metadata address (100.100.100.200)"},
}

// reserved lists non-public ranges the netip predicates do not cover. Some are not routable
// on the Internet at all (documentation, benchmarking): a URL resolving there is a
// misconfiguration or an attack, and refusing it costs nothing.
var reserved = []struct {
	prefix netip.Prefix
	reason string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), `in 0.0.0.0/8 ("this network")`},
	{netip.MustParsePrefix("192.0.0.0/24"), "an IETF protocol assignment (192.0.0.0/24)"},
	{netip.MustParsePrefix("192.0.2.0/24"), "a documentation address (192.0.2.0/24)"},
	{netip.MustParsePrefix("198.18.0.0/15"), "a benchmarking address (198.18.0.0/15)"},
	{netip.MustParsePrefix("198.51.100.0/24"), "a documentation address (198.51.100.0/24)"},
	{netip.MustParsePrefix("203.0.113.0/24"), "a documentation address (203.0.113.0/24)"},
	{netip.MustParsePrefix("240.0.0.0/4"), "a reserved address (240.0.0.0/4)"},
	{netip.MustParsePrefix("::/96"), "a deprecated IPv4-compatible IPv6 address (::/96)"},
	{netip.MustParsePrefix("100::/64"), "a discard-only address (100::/64)"},
	{netip.MustParsePrefix("2001:db8::/32"), "a documentation address (2001:db8::/32)"},
	{netip.MustParsePrefix("fec0::/10"), "a site-local address (fec0::/10)"},
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// Prefixes whose IPv6 addresses carry an IPv4 address in their bits: a gateway or relay
// turns them into IPv4 traffic, so the embedded address is what gets reached.
var (
	nat64Prefix      = netip.MustParsePrefix("64:ff9b::/96")
	nat64LocalPrefix = netip.MustParsePrefix("64:ff9b:1::/48")
	sixToFourPrefix  = netip.MustParsePrefix("2002::/16")
)

// classify returns what addr is to the guard and, unless it is public, why.
func classify(addr netip.Addr) (kind, string) {
	addr = addr.WithZone("")
	if !addr.IsValid() {
		return forbidden, "not a valid IP address"
	}
	if addr.Is4In6() {
		if k, r := classify(addr.Unmap()); k != public {
			return k, "an IPv4-mapped form of " + addr.Unmap().String() + ", " + r
		}
		return public, ""
	}
	for _, m := range metadata {
		if m.prefix.Contains(addr) {
			return forbidden, m.reason
		}
	}
	switch {
	case addr.IsUnspecified():
		return forbidden, "the unspecified address"
	case addr.IsLoopback():
		return private, "a loopback address"
	case addr == netip.AddrFrom4([4]byte{169, 254, 169, 254}):
		return forbidden, "a link-local address (the cloud instance metadata service)"
	case addr.IsLinkLocalUnicast():
		return forbidden, "a link-local address"
	case addr.IsMulticast():
		return forbidden, "a multicast address"
	case addr.Is4() && addr.IsPrivate():
		return private, "a private address (RFC 1918)"
	case addr.IsPrivate():
		return private, "a unique-local address (fc00::/7)"
	case addr == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return forbidden, "the broadcast address"
	case cgnat.Contains(addr):
		return private, "a shared address (carrier-grade NAT, 100.64.0.0/10)"
	}
	if embedded, ok := embeddedIPv4(addr); ok {
		// Translated traffic to a non-public address is never a development setup.
		if k, r := classify(embedded); k != public {
			return forbidden, "an IPv6 address embedding " + embedded.String() + ", " + r
		}
	}
	for _, p := range reserved {
		if p.prefix.Contains(addr) {
			return forbidden, p.reason
		}
	}
	return public, ""
}

// embeddedIPv4 returns the IPv4 address a NAT64 or 6to4 address translates to.
func embeddedIPv4(addr netip.Addr) (netip.Addr, bool) {
	b := addr.As16()
	switch {
	case nat64Prefix.Contains(addr), nat64LocalPrefix.Contains(addr):
		return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}), true
	case sixToFourPrefix.Contains(addr):
		return netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}), true
	}
	return netip.Addr{}, false
}

// refusedf returns the error of a refused target: EINVALID, because the target is a
// configuration or input the gateway will not act on, not a failure of the remote side.
func refusedf(format string, args ...any) error {
	e := federation.Errorf(federation.EINVALID, format, args...)
	e.Err = ErrRefused
	return e
}
