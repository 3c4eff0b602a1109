package identity_test

import (
	"context"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/federation-gateway/gateway/infra/localtest"
	"github.com/federation-gateway/gateway/shared/dynamo"
	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/identity"
	"github.com/federation-gateway/gateway/shared/identity/identityhttp"
	"github.com/federation-gateway/gateway/shared/outbound"
	"github.com/federation-gateway/gateway/shared/outbound/outboundtest"
)

// bundleEndpoint is a SPIFFE bundle endpoint whose answer the test sets.
type bundleEndpoint struct {
	mu     sync.Mutex
	status int
	body   []byte
	hits   int
}

func (e *bundleEndpoint) set(status int, body []byte) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.status, e.body = status, body
}

func (e *bundleEndpoint) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.hits++
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	_, _ = w.Write(e.body)
}

func TestRefreshBundles(t *testing.T) {
	ctx := context.Background()
	store := dynamo.NewStore(localtest.DynamoDB(t), localtest.Table(t))
	a, b := newAuthority(t, "registry-a.example"), newAuthority(t, "registry-b.example")
	epA, epB := &bundleEndpoint{}, &bundleEndpoint{}
	srvA, srvB := httptest.NewTLSServer(epA), httptest.NewTLSServer(epB)
	defer srvA.Close()
	defer srvB.Close()
	// The endpoints get public names on a test network: bundle endpoints are fetched
	// under the Identifiers policy, which reaches public https addresses only.
	n := outboundtest.NewNet()
	n.Name("bundle-a.example.com", "93.184.216.40")
	n.Name("bundle-b.example.com", "93.184.216.41")
	n.Serve("93.184.216.40:443", srvA.Listener.Addr().String())
	n.Serve("93.184.216.41:443", srvB.Listener.Addr().String())
	roots := x509.NewCertPool()
	roots.AddCert(srvA.Certificate())
	client := identityhttp.NewBundleFetcher(outbound.NewClient(outbound.Options{Purpose: outbound.Identifiers, Network: n, RootCAs: roots}))
	domains := []federation.TrustDomain{
		{Name: "registry-a.example", BundleEndpoint: "https://bundle-a.example.com/bundle"},
		{Name: "registry-b.example", BundleEndpoint: "https://bundle-b.example.com/bundle"},
		{Name: "inline.example", Bundle: a.bundle(t, 1)}, // no endpoint: not fetched
	}
	sequenceOf := func(name string) int64 {
		t.Helper()
		got, err := store.Bundles(ctx, []string{name})
		if err != nil {
			t.Fatal(err)
		}
		return got[name].Sequence
	}

	steps := []struct {
		name       string
		a, b       func()
		wantA      int64 // stored sequence of a afterwards
		updatedA   bool
		failedA    bool
		failedB    bool
		wantStoreB int64
	}{
		{"first fetch", func() { epA.set(200, a.bundle(t, 3)) }, func() { epB.set(200, b.bundle(t, 1)) }, 3, true, false, false, 1},
		{"unchanged", nil, nil, 3, false, false, false, 1},
		{"newer", func() { epA.set(200, a.bundle(t, 4)) }, nil, 4, true, false, false, 1},
		{"rolled back", func() { epA.set(200, a.bundle(t, 2)) }, nil, 4, false, true, false, 1},
		{"endpoint down, the other refreshed", func() { epA.set(503, []byte("down")) }, func() { epB.set(200, b.bundle(t, 2)) }, 4, false, true, false, 2},
		{"not a bundle", func() { epA.set(200, []byte(`{"keys":[]}`)) }, nil, 4, false, true, false, 2},
		{"not JSON", func() { epA.set(200, []byte(`<html>`)) }, nil, 4, false, true, false, 2},
	}
	for _, s := range steps {
		if s.a != nil {
			s.a()
		}
		if s.b != nil {
			s.b()
		}
		res, err := identity.RefreshBundles(ctx, domains, client, store)
		if len(res) != 2 {
			t.Fatalf("%s: %d results, want one per endpoint: %+v", s.name, len(res), res)
		}
		if (err != nil) != (s.failedA || s.failedB) {
			t.Errorf("%s: err = %v", s.name, err)
		}
		ra, rb := res[0], res[1]
		if ra.Updated != s.updatedA || (ra.Err != nil) != s.failedA || (rb.Err != nil) != s.failedB {
			t.Errorf("%s: results %+v %+v", s.name, ra, rb)
		}
		if got := sequenceOf("registry-a.example"); got != s.wantA {
			t.Errorf("%s: stored sequence of a = %d, want %d", s.name, got, s.wantA)
		}
		if got := sequenceOf("registry-b.example"); got != s.wantStoreB {
			t.Errorf("%s: stored sequence of b = %d, want %d", s.name, got, s.wantStoreB)
		}
	}
	if res, _ := identity.RefreshBundles(ctx, domains, client, store); federation.ErrorCode(res[0].Err) != federation.EUNAVAILABLE {
		t.Errorf("an invalid bundle is the endpoint's failure: %v", res[0].Err)
	}

	// The guard applies: a loopback endpoint is refused, allow_private_networks or not.
	loopback := []federation.TrustDomain{{Name: "registry-a.example", BundleEndpoint: srvA.URL}}
	private := identityhttp.NewBundleFetcher(outbound.NewClient(outbound.Options{Purpose: outbound.Identifiers, AllowPrivate: true, RootCAs: roots}))
	res, err := identity.RefreshBundles(ctx, loopback, private, store)
	if err == nil || !outbound.IsRefused(res[0].Err) {
		t.Errorf("a loopback bundle endpoint: %v", err)
	}
}

// The verifier reads refreshed bundles from the table: a key rotated at the endpoint is
// accepted once stored, and the stored bundle wins over the configured one.
func TestStoredBundlesServeTheVerifier(t *testing.T) {
	ctx := context.Background()
	store := dynamo.NewStore(localtest.DynamoDB(t), localtest.Table(t))
	old, rotated := newAuthority(t, "registry-a.example"), newAuthority(t, "registry-a.example")
	rotated.kid = "rotated"
	domains := []federation.TrustDomain{{Name: "registry-a.example", Bundle: old.bundle(t, 1), BundleEndpoint: "https://bundle.registry-a.example"}}
	inline, err := identity.InlineBundles(domains)
	if err != nil {
		t.Fatal(err)
	}
	offset := time.Duration(0)
	clock := func() time.Time { return time.Now().Add(offset) }
	stored := identity.NewStoredBundles(store, domains, time.Minute, clock)
	v, err := identity.NewVerifier(identity.Options{Audience: audience, Bundles: identity.FirstBundle{stored, inline}, Replay: store.ReplayGuard()})
	if err != nil {
		t.Fatal(err)
	}
	verify := func(a *authority) error {
		tok := sign(t, jose.ES256, a.jwtKey, a.kid, claims("", "spiffe://registry-a.example/x"), nil)
		_, err := v.Verify(ctx, federation.Credential{Token: tok})
		return err
	}
	if err := verify(old); err != nil {
		t.Fatalf("inline bundle before any refresh: %v", err)
	}
	if err := store.PutBundle(ctx, "registry-a.example", rotated.bundle(t, 2), 2, 0); err != nil {
		t.Fatal(err)
	}
	if err := verify(rotated); federation.ErrorMessage(err) != "unknown key" {
		t.Fatalf("the stored bundle is cached for a minute: %v", err)
	}
	offset = 2 * time.Minute
	if err := verify(rotated); err != nil {
		t.Fatalf("rotated key after the cache TTL: %v", err)
	}
	if err := verify(old); federation.ErrorMessage(err) != "unknown key" {
		t.Fatalf("the stored bundle replaces the inline one: %v", err)
	}

	// A domain without a bundle endpoint is never looked up in the table.
	_, err = stored.Bundle(ctx, spiffeid.RequireTrustDomainFromString("other.example"))
	if federation.ErrorCode(err) != federation.ENOTFOUND {
		t.Errorf("unconfigured domain: %v", err)
	}
}

func TestInlineBundlesReportsEveryProblem(t *testing.T) {
	a := newAuthority(t, "registry-a.example")
	_, err := identity.InlineBundles([]federation.TrustDomain{
		{Name: "registry-a.example", Bundle: a.bundle(t, 1)},
		{Name: "Not A Domain", Bundle: a.bundle(t, 1)},
		{Name: "empty.example", Bundle: []byte(`{"keys":[]}`)},
		{Name: "nothing.example"},
		{Name: "registry-a.example", BundleEndpoint: "https://x.example"},
	})
	if err == nil {
		t.Fatal("invalid trust domains accepted")
	}
	for _, want := range []string{"trust_domains[1].name", "trust_domains[2].bundle", "trust_domains[3] (nothing.example)", "configured twice"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}
