package identity

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/federation-gateway/gateway/shared/federation"
)

// BundleFetcher fetches SPIFFE trust bundles from bundle endpoints.
type BundleFetcher interface {
	// FetchBundle returns the bundle document (a JWKS) served at endpoint, at most
	// MaxBundleSize bytes. Errors: EUNAVAILABLE when it cannot be fetched; EINVALID when
	// the endpoint is not a URL or the outbound guard refuses its address.
	FetchBundle(ctx context.Context, endpoint string) ([]byte, error)
}

// BundleSource gives the SPIFFE trust bundle of a trust domain.
type BundleSource interface {
	// Bundle returns td's bundle. Errors: ENOTFOUND when the source has none for td (it
	// is not configured, or was never fetched); EUNAVAILABLE, EINTERNAL.
	Bundle(ctx context.Context, td spiffeid.TrustDomain) (*spiffebundle.Bundle, error)
}

// ParseBundle parses a SPIFFE bundle (a JWKS document, SPIFFE Trust Domain and Bundle
// §4) of the trust domain named. A bundle without any X.509 or JWT authority is an error.
func ParseBundle(trustDomain string, jwks []byte) (*spiffebundle.Bundle, error) {
	td, err := spiffeid.TrustDomainFromString(trustDomain)
	if err != nil {
		return nil, fmt.Errorf("trust domain %q: %w", trustDomain, err)
	}
	b, err := spiffebundle.Parse(td, jwks)
	if err != nil {
		return nil, fmt.Errorf("bundle of %s: %w", trustDomain, err)
	}
	if len(b.X509Authorities()) == 0 && len(b.JWTAuthorities()) == 0 {
		return nil, fmt.Errorf("bundle of %s has no x509-svid or jwt-svid authority", trustDomain)
	}
	return b, nil
}

// StaticBundles is a BundleSource of fixed bundles: the configuration's inline ones.
type StaticBundles map[spiffeid.TrustDomain]*spiffebundle.Bundle

// InlineBundles returns the inline bundles of the trust domains that have one. Every
// problem (an invalid name or bundle, a name used twice) is reported at once.
func InlineBundles(domains []federation.TrustDomain) (StaticBundles, error) {
	s := StaticBundles{}
	var problems []error
	seen := map[string]bool{}
	for i, d := range domains {
		if seen[d.Name] {
			problems = append(problems, fmt.Errorf("trust_domains[%d]: %q is configured twice", i, d.Name))
		}
		seen[d.Name] = true
		td, err := spiffeid.TrustDomainFromString(d.Name)
		if err != nil {
			problems = append(problems, fmt.Errorf("trust_domains[%d].name %q: %w", i, d.Name, err))
			continue
		}
		if len(d.Bundle) == 0 {
			if d.BundleEndpoint == "" {
				problems = append(problems, fmt.Errorf("trust_domains[%d] (%s) has neither a bundle nor a bundle_endpoint", i, d.Name))
			}
			continue
		}
		b, err := ParseBundle(d.Name, d.Bundle)
		if err != nil {
			problems = append(problems, fmt.Errorf("trust_domains[%d].bundle: %w", i, err))
			continue
		}
		s[td] = b
	}
	if err := errors.Join(problems...); err != nil {
		return nil, err
	}
	return s, nil
}

// Bundle implements BundleSource.
func (s StaticBundles) Bundle(_ context.Context, td spiffeid.TrustDomain) (*spiffebundle.Bundle, error) {
	if b, ok := s[td]; ok {
		return b, nil
	}
	return nil, federation.Errorf(federation.ENOTFOUND, "no bundle for trust domain %s", td)
}

// FirstBundle is a BundleSource that asks its sources in order and returns the first
// bundle found. Put the refreshed (stored) bundles before the inline ones: a bundle
// endpoint follows key rotation, the configuration only bootstraps it.
type FirstBundle []BundleSource

// Bundle implements BundleSource.
func (f FirstBundle) Bundle(ctx context.Context, td spiffeid.TrustDomain) (*spiffebundle.Bundle, error) {
	for _, s := range f {
		b, err := s.Bundle(ctx, td)
		if federation.ErrorCode(err) == federation.ENOTFOUND {
			continue
		}
		return b, err
	}
	return nil, federation.Errorf(federation.ENOTFOUND, "no bundle for trust domain %s", td)
}

// StoredBundle is a trust domain's bundle as the refresher stored it.
type StoredBundle struct {
	TrustDomain string
	JWKS        []byte
	Sequence    int64
	RefreshHint time.Duration // zero when the bundle gives none
	UpdatedAt   time.Time
}

// BundleStore keeps the bundles fetched from bundle endpoints.
type BundleStore interface {
	// Bundles returns the stored bundles of the trust domains that have one.
	// Errors: EUNAVAILABLE, EINTERNAL.
	Bundles(ctx context.Context, domains []string) (map[string]StoredBundle, error)
	// PutBundle stores a trust domain's bundle unless a bundle with a higher sequence is
	// stored: the sequence never goes backwards. Errors: ECONFLICT when a newer bundle is
	// stored; EUNAVAILABLE, EINTERNAL.
	PutBundle(ctx context.Context, trustDomain string, jwks []byte, sequence int64, refreshHint time.Duration) error
}

// DefaultStoredBundleTTL is how long StoredBundles reuses what it read, unless a bundle's
// refresh hint is shorter.
const DefaultStoredBundleTTL = time.Minute

// StoredBundles is a BundleSource of the bundles in a BundleStore, for the configured
// trust domains only, each kept in memory for a short while.
type StoredBundles struct {
	store   BundleStore
	domains map[spiffeid.TrustDomain]bool
	ttl     time.Duration
	now     func() time.Time

	mu    sync.Mutex
	cache map[spiffeid.TrustDomain]storedEntry
}

type storedEntry struct {
	bundle  *spiffebundle.Bundle // nil: none stored
	expires time.Time
}

// NewStoredBundles returns the StoredBundles of the store for the trust domains that have
// a bundle endpoint. ttl is how long a read is reused (zero means
// DefaultStoredBundleTTL); now is the clock (nil means time.Now).
func NewStoredBundles(store BundleStore, domains []federation.TrustDomain, ttl time.Duration, now func() time.Time) *StoredBundles {
	if ttl <= 0 {
		ttl = DefaultStoredBundleTTL
	}
	if now == nil {
		now = time.Now
	}
	s := &StoredBundles{store: store, domains: map[spiffeid.TrustDomain]bool{}, ttl: ttl, now: now, cache: map[spiffeid.TrustDomain]storedEntry{}}
	for _, d := range domains {
		if td, err := spiffeid.TrustDomainFromString(d.Name); err == nil && d.BundleEndpoint != "" {
			s.domains[td] = true
		}
	}
	return s
}

// Bundle implements BundleSource. A stored bundle that no longer parses is treated as
// absent (and logged by no one: the refresher never stores one).
func (s *StoredBundles) Bundle(ctx context.Context, td spiffeid.TrustDomain) (*spiffebundle.Bundle, error) {
	if !s.domains[td] {
		return nil, federation.Errorf(federation.ENOTFOUND, "trust domain %s has no bundle endpoint", td)
	}
	now := s.now()
	s.mu.Lock()
	e, ok := s.cache[td]
	s.mu.Unlock()
	if !ok || !now.Before(e.expires) {
		stored, err := s.store.Bundles(ctx, []string{td.Name()})
		if err != nil {
			return nil, fmt.Errorf("stored bundle of %s: %w", td, err)
		}
		e = storedEntry{expires: now.Add(s.ttl)}
		if sb, ok := stored[td.Name()]; ok {
			if b, err := ParseBundle(td.Name(), sb.JWKS); err == nil {
				e.bundle = b
				if sb.RefreshHint > 0 && sb.RefreshHint < s.ttl {
					e.expires = now.Add(sb.RefreshHint)
				}
			}
		}
		s.mu.Lock()
		s.cache[td] = e
		s.mu.Unlock()
	}
	if e.bundle == nil {
		return nil, federation.Errorf(federation.ENOTFOUND, "no stored bundle for trust domain %s", td)
	}
	return e.bundle, nil
}

// MaxBundleSize bounds a fetched bundle: well under DynamoDB's 400 KB item.
const MaxBundleSize = 256 << 10

// BundleRefresh is what RefreshBundles did for one trust domain.
type BundleRefresh struct {
	TrustDomain string
	Sequence    int64 // of the fetched bundle
	Updated     bool  // the fetched bundle was stored
	Err         error // why it was not fetched or stored, or nil
}

// RefreshBundles fetches the bundle of every trust domain with a bundle endpoint (a JWKS
// document with spiffe_sequence and spiffe_refresh_hint, SPIFFE Federation §5) with
// fetcher, and stores those that changed. A bundle whose
// sequence is lower than the stored one's is refused: an endpoint cannot roll keys back.
// One failing endpoint does not stop the others; the error joins every failure.
func RefreshBundles(ctx context.Context, domains []federation.TrustDomain, fetcher BundleFetcher, store BundleStore) ([]BundleRefresh, error) {
	var names []string
	for _, d := range domains {
		if d.BundleEndpoint != "" {
			names = append(names, d.Name)
		}
	}
	if len(names) == 0 {
		return nil, nil
	}
	stored, err := store.Bundles(ctx, names)
	if err != nil {
		return nil, fmt.Errorf("read stored bundles: %w", err)
	}
	var results []BundleRefresh
	var errs []error
	for _, d := range domains {
		if d.BundleEndpoint == "" {
			continue
		}
		r := refreshOne(ctx, d, fetcher, store, stored)
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("refresh bundle of %s: %w", d.Name, r.Err))
		}
		results = append(results, r)
	}
	return results, errors.Join(errs...)
}

func refreshOne(ctx context.Context, d federation.TrustDomain, fetcher BundleFetcher, store BundleStore, stored map[string]StoredBundle) BundleRefresh {
	r := BundleRefresh{TrustDomain: d.Name}
	raw, err := fetcher.FetchBundle(ctx, d.BundleEndpoint)
	if err != nil {
		r.Err = err
		return r
	}
	b, err := ParseBundle(d.Name, raw)
	if err != nil {
		r.Err = federation.Wrap(federation.EUNAVAILABLE, err, "the bundle endpoint served an invalid bundle")
		return r
	}
	seq, _ := b.SequenceNumber()
	hint, _ := b.RefreshHint()
	r.Sequence = int64(min(seq, 1<<63-1))
	if old, ok := stored[d.Name]; ok {
		switch {
		case r.Sequence < old.Sequence:
			r.Err = federation.Errorf(federation.ECONFLICT, "the endpoint serves sequence %d, older than the stored %d", r.Sequence, old.Sequence)
			return r
		case r.Sequence == old.Sequence && bytes.Equal(raw, old.JWKS):
			return r // unchanged: nothing to write
		}
	}
	if err := store.PutBundle(ctx, d.Name, raw, r.Sequence, hint); err != nil {
		r.Err = err
		return r
	}
	r.Updated = true
	return r
}
