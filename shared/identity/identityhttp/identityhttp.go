// Package identityhttp is the identity domain's HTTP adapter: it resolves did:web
// identifiers and fetches SPIFFE trust bundles over HTTPS, through the client it is
// given. That client must be of the outbound Identifiers policy: the URLs come from
// callers and cards, and must never reach a private address, in any mode.
package identityhttp

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/identity"
	"github.com/federation-gateway/gateway/shared/outbound"
)

// Timeouts of one fetch: a credential's verification waits for a did:web document, so it
// must be short; a bundle refresh runs in the sync, which can wait longer.
const (
	DIDTimeout    = 5 * time.Second
	BundleTimeout = 10 * time.Second
)

// DIDResolver resolves did:web identifiers by fetching their documents over HTTPS.
type DIDResolver struct{ client *http.Client }

var _ identity.DIDResolver = (*DIDResolver)(nil)

// NewDIDResolver returns a DIDResolver that fetches through client (outbound.NewClient
// with outbound.Identifiers).
func NewDIDResolver(client *http.Client) *DIDResolver { return &DIDResolver{client: client} }

// ResolveDID implements identity.DIDResolver.
func (r *DIDResolver) ResolveDID(ctx context.Context, did string) (*identity.DIDDocument, error) {
	docURL, _, err := identity.DIDWebURL(did)
	if err != nil {
		return nil, federation.Wrap(federation.EINVALID, err, "not a valid did:web")
	}
	raw, err := get(ctx, r.client, docURL, "application/did+json, application/json", identity.MaxDIDDocument, DIDTimeout)
	if err != nil {
		return nil, err
	}
	return identity.ParseDIDDocument(raw)
}

// BundleFetcher fetches SPIFFE trust bundles from their bundle endpoints over HTTPS.
type BundleFetcher struct{ client *http.Client }

var _ identity.BundleFetcher = (*BundleFetcher)(nil)

// NewBundleFetcher returns a BundleFetcher that fetches through client (outbound.NewClient
// with outbound.Identifiers).
func NewBundleFetcher(client *http.Client) *BundleFetcher { return &BundleFetcher{client: client} }

// FetchBundle implements identity.BundleFetcher.
func (f *BundleFetcher) FetchBundle(ctx context.Context, endpoint string) ([]byte, error) {
	return get(ctx, f.client, endpoint, "application/json", identity.MaxBundleSize, BundleTimeout)
}

// get fetches a document of at most limit bytes. Errors: EINVALID for a bad URL or a
// refusal of the outbound guard, EUNAVAILABLE for anything the remote side did wrong.
func get(ctx context.Context, client *http.Client, u, accept string, limit int, timeout time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, federation.Wrap(federation.EINVALID, err, "not a valid URL")
	}
	req.Header.Set("Accept", accept)
	resp, err := client.Do(req)
	if outbound.IsRefused(err) {
		return nil, federation.Wrap(federation.EINVALID, err, "the address is not reachable: "+federation.ErrorMessage(err))
	}
	if err != nil {
		return nil, federation.Wrap(federation.EUNAVAILABLE, err, "the host is unreachable")
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, federation.Errorf(federation.EUNAVAILABLE, "the host answered %d", resp.StatusCode)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, int64(limit)+1))
	if err != nil {
		return nil, federation.Wrap(federation.EUNAVAILABLE, err, "reading the answer failed")
	}
	if len(raw) > limit {
		return nil, federation.Errorf(federation.EUNAVAILABLE, "the document is larger than %d bytes", limit)
	}
	return raw, nil
}

// NewGatewayVerifier returns the credential verifier of the gateway's functions: JWTs for
// audience (the gateway's ID); SPIFFE bundles of the trust domains as the sync stored them
// (reread after cache, 0 for identity.DefaultStoredBundleTTL), before the configuration's
// inline ones; JWT IDs claimed with replay; did:web documents fetched under the outbound
// Identifiers policy, which never reaches a private address, nor the hosts deny lists (the
// local AWS endpoint).
func NewGatewayVerifier(audience string, domains []federation.TrustDomain, bundles identity.BundleStore, cache time.Duration, replay identity.ReplayGuard, deny []string) (*identity.Verifier, error) {
	inline, err := identity.InlineBundles(domains)
	if err != nil {
		return nil, fmt.Errorf("trust bundles: %w", err)
	}
	return identity.NewVerifier(identity.Options{
		Audience: audience,
		// Bundles refreshed from the endpoints first: they follow key rotation.
		Bundles: identity.FirstBundle{identity.NewStoredBundles(bundles, domains, cache, time.Now), inline},
		Replay:  replay,
		DIDs:    NewDIDResolver(outbound.NewClient(outbound.Options{Purpose: outbound.Identifiers, Deny: deny})),
	})
}
