package identity

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/federation-gateway/gateway/shared/directory"
	"github.com/federation-gateway/gateway/shared/federation"
)

// MaxDIDDocument bounds a did:web document: far above a real one, far below what would
// make parsing one costly.
const MaxDIDDocument = 64 << 10

// maxCachedDIDDocs bounds the documents a Verifier keeps: identifiers are the caller's
// choice, so the memory they take must be bounded.
const maxCachedDIDDocs = 1024

// DIDResolver resolves did:web identifiers to their DID documents.
type DIDResolver interface {
	// ResolveDID returns the DID document of did, a did:web. Errors: EUNAVAILABLE when
	// the document cannot be fetched or read; EINVALID when the DID is not a valid
	// did:web or the outbound guard refuses its address.
	ResolveDID(ctx context.Context, did string) (*DIDDocument, error)
}

// verifyDIDKey verifies a JWT whose issuer is a did:key: the key is the identifier itself.
func (v *Verifier) verifyDIDKey(ctx context.Context, p *parsedJWT) (federation.Identity, error) {
	did := p.claims.Issuer
	if strings.ContainsAny(did, "#?/") {
		return federation.Identity{}, deny("invalid DID", nil)
	}
	key, ok := directory.DIDKeyEd25519(did)
	if !ok {
		return federation.Identity{}, deny("invalid DID", nil)
	}
	// kid, when present, must name the issuer's own key: the did:key, or a fragment of it.
	if kid := p.header.Kid; kid != "" && kid != did && !strings.HasPrefix(kid, did+"#") {
		return federation.Identity{}, deny("unknown key", nil)
	}
	return v.finishDID(ctx, p, MethodDIDKey, did, "did:key", key)
}

// verifyDIDWeb verifies a JWT whose issuer is a did:web: the key is the verification
// method of its DID document that kid names.
func (v *Verifier) verifyDIDWeb(ctx context.Context, p *parsedJWT) (federation.Identity, error) {
	did := p.claims.Issuer
	_, host, err := DIDWebURL(did)
	if err != nil {
		return federation.Identity{}, err
	}
	if v.dids == nil {
		return federation.Identity{}, deny("did:web is not accepted", nil)
	}
	kid := p.header.Kid
	switch {
	case strings.HasPrefix(kid, "#"):
		kid = did + kid
	case !strings.HasPrefix(kid, did+"#") || len(kid) == len(did)+1:
		return federation.Identity{}, deny("unknown key", nil)
	}
	doc, err := v.dids.resolve(ctx, did)
	if err != nil {
		return federation.Identity{}, err
	}
	key, err := doc.key(kid)
	if err != nil {
		return federation.Identity{}, err
	}
	return v.finishDID(ctx, p, MethodDIDWeb, did, host, key)
}

// finishDID completes the verification of a DID-signed JWT once its key is known.
func (v *Verifier) finishDID(ctx context.Context, p *parsedJWT, method, did, trustDomain string, key crypto.PublicKey) (federation.Identity, error) {
	if err := p.checkSignature(key); err != nil {
		return federation.Identity{}, err
	}
	if p.claims.Subject != "" && p.claims.Subject != did {
		return federation.Identity{}, deny("subject does not match issuer", nil)
	}
	if err := v.checkClaims(p.claims, true, true); err != nil {
		return federation.Identity{}, err
	}
	if err := v.claim(ctx, replayKey(method, did, p.claims.ID, p.raw), expiry(p.claims)); err != nil {
		return federation.Identity{}, err
	}
	return federation.Identity{Method: method, Subject: did, TrustDomain: trustDomain, ExpiresAt: expiry(p.claims)}, nil
}

// DIDWebURL returns the URL of a did:web's document and its host (did:web method
// specification: ':' separates path segments, the host's port is percent-encoded, no path
// means /.well-known). The URL is always https. Errors: EUNAUTHORIZED ("invalid DID").
func DIDWebURL(did string) (docURL, host string, err error) {
	id := strings.TrimPrefix(did, "did:web:")
	if id == "" || strings.ContainsAny(id, "/?#@[] \\") {
		return "", "", deny("invalid DID", nil)
	}
	parts := strings.Split(id, ":")
	host, err = url.PathUnescape(parts[0])
	if err != nil || !validHost(host) {
		return "", "", deny("invalid DID", err)
	}
	host = strings.ToLower(host)
	path := "/.well-known"
	if len(parts) > 1 {
		path = ""
		for _, seg := range parts[1:] {
			s, err := url.PathUnescape(seg)
			if err != nil || s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/?#") {
				return "", "", deny("invalid DID", err)
			}
			path += "/" + url.PathEscape(s)
		}
	}
	return "https://" + host + path + "/did.json", host, nil
}

// validHost reports whether h is a DNS name or IPv4 address, with an optional port.
func validHost(h string) bool {
	name := h
	if strings.Contains(h, ":") {
		n, port, err := net.SplitHostPort(h)
		if err != nil || port == "" || len(port) > 5 || strings.Trim(port, "0123456789") != "" {
			return false
		}
		name = n
	}
	if name == "" || len(name) > 253 {
		return false
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '-' {
				return false
			}
		}
	}
	return true
}

// DIDDocument is the part of a DID document the verifier reads.
type DIDDocument struct {
	ID                 string               `json:"id"`
	VerificationMethod []verificationMethod `json:"verificationMethod"`
	// The verification relationships: references (absolute or relative DID URLs) or
	// embedded methods.
	Authentication  []json.RawMessage `json:"authentication"`
	AssertionMethod []json.RawMessage `json:"assertionMethod"`
}

// ParseDIDDocument decodes a DID document of at most MaxDIDDocument bytes. Errors:
// EUNAVAILABLE when it is not one: the DID's host serves something else.
func ParseDIDDocument(raw []byte) (*DIDDocument, error) {
	if len(raw) > MaxDIDDocument {
		return nil, federation.Errorf(federation.EUNAVAILABLE, "the DID document is larger than %d bytes", MaxDIDDocument)
	}
	var doc DIDDocument
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, federation.Wrap(federation.EUNAVAILABLE, err, "the DID document is not a JSON DID document")
	}
	return &doc, nil
}

type verificationMethod struct {
	ID                 string          `json:"id"`
	Type               string          `json:"type"`
	Controller         string          `json:"controller"`
	PublicKeyJwk       json.RawMessage `json:"publicKeyJwk"`
	PublicKeyMultibase string          `json:"publicKeyMultibase"`
}

// key returns the public key of the verification method kid (an absolute DID URL). Only a
// method the document authorizes for authentication or assertion is accepted: a key
// listed for, say, key agreement is not one its controller signs with.
func (d *DIDDocument) key(kid string) (crypto.PublicKey, error) {
	abs := func(id string) string {
		if strings.HasPrefix(id, "#") {
			return d.ID + id
		}
		return id
	}
	var method *verificationMethod
	authorized := false
	for _, rel := range append(append([]json.RawMessage{}, d.Authentication...), d.AssertionMethod...) {
		var ref string
		if json.Unmarshal(rel, &ref) == nil {
			if abs(ref) == kid {
				authorized = true
			}
			continue
		}
		var embedded verificationMethod
		if json.Unmarshal(rel, &embedded) == nil && abs(embedded.ID) == kid {
			authorized, method = true, &embedded
		}
	}
	if !authorized {
		return nil, deny("unknown key", nil)
	}
	for i := range d.VerificationMethod {
		if method == nil && abs(d.VerificationMethod[i].ID) == kid {
			method = &d.VerificationMethod[i]
		}
	}
	if method == nil {
		return nil, deny("unknown key", nil)
	}
	return method.publicKey()
}

func (m *verificationMethod) publicKey() (crypto.PublicKey, error) {
	switch {
	case len(m.PublicKeyJwk) > 0:
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(m.PublicKeyJwk); err != nil {
			return nil, deny("unusable key", err)
		}
		if !jwk.Valid() || !jwk.IsPublic() {
			return nil, deny("unusable key", nil)
		}
		switch jwk.Key.(type) {
		case ed25519.PublicKey, *ecdsa.PublicKey, *rsa.PublicKey:
			return jwk.Key, nil
		}
		return nil, deny("unusable key", nil)
	case m.PublicKeyMultibase != "":
		// A multibase Ed25519 key is spelt exactly as the identifier of a did:key.
		if k, ok := directory.DIDKeyEd25519("did:key:" + m.PublicKeyMultibase); ok {
			return k, nil
		}
	}
	return nil, deny("unusable key", nil)
}

// didCache keeps resolved did:web documents for a while: a busy agent's every request
// must not cost a fetch from its host.
type didCache struct {
	resolver DIDResolver
	ttl      time.Duration
	now      func() time.Time

	mu    sync.Mutex
	cache map[string]cachedDoc
}

type cachedDoc struct {
	doc     *DIDDocument
	expires time.Time
}

func newDIDCache(r DIDResolver, ttl time.Duration, now func() time.Time) *didCache {
	return &didCache{resolver: r, ttl: ttl, now: now, cache: map[string]cachedDoc{}}
}

func (c *didCache) resolve(ctx context.Context, did string) (*DIDDocument, error) {
	now := c.now()
	c.mu.Lock()
	e, ok := c.cache[did]
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.doc, nil
	}
	doc, err := c.resolver.ResolveDID(ctx, did)
	if err != nil {
		return nil, deny("DID document unavailable", err)
	}
	if doc.ID != did {
		return nil, deny("DID document does not match the DID", fmt.Errorf("the document of %s names %q", did, doc.ID))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.cache) >= maxCachedDIDDocs {
		for k, e := range c.cache {
			if !now.Before(e.expires) || len(c.cache) >= maxCachedDIDDocs {
				delete(c.cache, k)
			}
		}
	}
	c.cache[did] = cachedDoc{doc: doc, expires: now.Add(c.ttl)}
	return doc, nil
}
