package identity_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/identity"
)

// verifyCase is one credential and what verifying it must give: reason "" for a valid one,
// which must then be refused when presented again unless once is false.
type verifyCase struct {
	name   string
	cred   func(t *testing.T) federation.Credential
	reason string
}

func runCases(t *testing.T, w *world, wantMethod string, cases []verifyCase, check func(t *testing.T, id federation.Identity)) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			cred := tc.cred(t)
			id, err := w.v.Verify(ctx, cred)
			if tc.reason != "" {
				if federation.ErrorCode(err) != federation.EUNAUTHORIZED || federation.ErrorMessage(err) != tc.reason {
					t.Fatalf("Verify = %+v, %v (code %q); want unauthorized %q", id, err, federation.ErrorCode(err), tc.reason)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if id.Method != wantMethod || id.ExpiresAt.IsZero() {
				t.Errorf("identity = %+v, want method %s", id, wantMethod)
			}
			if check != nil {
				check(t, id)
			}
		})
	}
}

func TestJWTSVID(t *testing.T) {
	w := newWorld(t, identity.Options{})
	sub := "spiffe://registry-a.example/agent/one"
	svid := func(mod func(*jwt.Claims)) jwt.Claims {
		c := claims("", sub)
		if mod != nil {
			mod(&c)
		}
		return c
	}
	signed := func(mod func(*jwt.Claims)) func(t *testing.T) federation.Credential {
		return func(t *testing.T) federation.Credential {
			return federation.Credential{Token: sign(t, jose.ES256, w.a.jwtKey, w.a.kid, svid(mod), nil)}
		}
	}
	now := time.Now()
	cases := []verifyCase{
		{"valid", signed(nil), ""},
		{"valid without iat or jti", signed(func(c *jwt.Claims) { c.IssuedAt, c.ID = nil, "" }), ""},
		{"declared type", func(t *testing.T) federation.Credential {
			c := signed(nil)(t)
			c.Type = identity.MethodJWTSVID
			return c
		}, ""},
		{"declared as another type", func(t *testing.T) federation.Credential {
			c := signed(nil)(t)
			c.Type = identity.MethodDIDKey
			return c
		}, "credential type mismatch"},
		{"expired", signed(func(c *jwt.Claims) {
			c.IssuedAt, c.Expiry = jwt.NewNumericDate(now.Add(-20*time.Minute)), jwt.NewNumericDate(now.Add(-10*time.Minute))
		}), "expired"},
		{"within the skew", signed(func(c *jwt.Claims) {
			c.IssuedAt, c.Expiry = jwt.NewNumericDate(now.Add(-20*time.Minute)), jwt.NewNumericDate(now.Add(-20*time.Second))
		}), ""}, // both the gateway and go-spiffe tolerate a minute
		{"not yet valid", signed(func(c *jwt.Claims) {
			c.NotBefore, c.Expiry = jwt.NewNumericDate(now.Add(10*time.Minute)), jwt.NewNumericDate(now.Add(20*time.Minute))
		}), "not yet valid"},
		{"issued in the future", signed(func(c *jwt.Claims) {
			c.IssuedAt, c.Expiry = jwt.NewNumericDate(now.Add(10*time.Minute)), jwt.NewNumericDate(now.Add(20*time.Minute))
		}), "issued in the future"},
		{"lifetime too long", signed(func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(now.Add(2 * time.Hour)) }), "lifetime too long"},
		{"lifetime too long without iat", signed(func(c *jwt.Claims) {
			c.IssuedAt, c.Expiry = nil, jwt.NewNumericDate(now.Add(2*time.Hour))
		}), "lifetime too long"},
		{"missing exp", signed(func(c *jwt.Claims) { c.Expiry = nil }), "missing exp"},
		{"wrong audience", signed(func(c *jwt.Claims) { c.Audience = jwt.Audience{"another-gateway"} }), "wrong audience"},
		{"no audience", signed(func(c *jwt.Claims) { c.Audience = nil }), "wrong audience"},
		{"wrong trust domain", func(t *testing.T) federation.Credential {
			c := claims("", "spiffe://other.example/agent/one")
			return federation.Credential{Token: sign(t, jose.ES256, w.b.jwtKey, w.b.kid, c, nil)}
		}, "unknown trust domain"},
		{"another domain's subject, this domain's key", func(t *testing.T) federation.Credential {
			c := claims("", "spiffe://other.example/agent/one")
			return federation.Credential{Token: sign(t, jose.ES256, w.a.jwtKey, w.a.kid, c, nil)}
		}, "unknown trust domain"},
		{"unknown key", func(t *testing.T) federation.Credential {
			return federation.Credential{Token: sign(t, jose.ES256, w.a.jwtKey, "no-such-kid", svid(nil), nil)}
		}, "unknown key"},
		{"no kid", func(t *testing.T) federation.Credential {
			return federation.Credential{Token: sign(t, jose.ES256, w.a.jwtKey, "", svid(nil), nil)}
		}, "unknown key"},
		{"signed by another key under the kid", func(t *testing.T) federation.Credential {
			return federation.Credential{Token: sign(t, jose.ES256, ecKey(t), w.a.kid, svid(nil), nil)}
		}, "invalid signature"},
		{"EdDSA", func(t *testing.T) federation.Credential {
			return federation.Credential{Token: sign(t, jose.EdDSA, edKey(t), w.a.kid, svid(nil), nil)}
		}, "algorithm not allowed"},
		{"alg none", func(t *testing.T) federation.Credential {
			return federation.Credential{Token: unsigned(t, w.a.kid, svid(nil))}
		}, "algorithm not allowed"},
		{"HS256 with the public key", func(t *testing.T) federation.Credential {
			return federation.Credential{Token: hmacWith(t, &w.a.jwtKey.PublicKey, w.a.kid, svid(nil))}
		}, "algorithm not allowed"},
		{"tampered payload", func(t *testing.T) federation.Credential {
			tok := sign(t, jose.ES256, w.a.jwtKey, w.a.kid, svid(nil), nil)
			return federation.Credential{Token: tamper(t, tok, svid(func(c *jwt.Claims) { c.Subject = "spiffe://registry-a.example/admin" }))}
		}, "invalid signature"},
		{"typ other than JWT", func(t *testing.T) federation.Credential {
			return federation.Credential{Token: sign(t, jose.ES256, w.a.jwtKey, w.a.kid, svid(nil), map[jose.HeaderKey]any{"typ": "at+jwt"})}
		}, "invalid JWT-SVID"},
	}
	runCases(t, w, identity.MethodJWTSVID, cases, func(t *testing.T, id federation.Identity) {
		if id.Subject != sub || id.TrustDomain != "registry-a.example" {
			t.Errorf("identity = %+v", id)
		}
	})

	t.Run("replayed", func(t *testing.T) {
		for _, mod := range []func(*jwt.Claims){nil, func(c *jwt.Claims) { c.ID = "" }} {
			cred := signed(mod)(t)
			if _, err := w.v.Verify(context.Background(), cred); err != nil {
				t.Fatalf("first: %v", err)
			}
			if _, err := w.v.Verify(context.Background(), cred); federation.ErrorMessage(err) != "replayed jti" {
				t.Fatalf("second: %v", err)
			}
		}
	})
}

func TestDIDKey(t *testing.T) {
	w := newWorld(t, identity.Options{})
	key := edKey(t)
	did := didKey(key.Public().(ed25519.PublicKey))
	now := time.Now()
	signed := func(kid string, mod func(*jwt.Claims)) func(t *testing.T) federation.Credential {
		return func(t *testing.T) federation.Credential {
			c := claims(did, did)
			if mod != nil {
				mod(&c)
			}
			return federation.Credential{Token: sign(t, jose.EdDSA, key, kid, c, nil)}
		}
	}
	other := edKey(t)
	otherDID := didKey(other.Public().(ed25519.PublicKey))
	cases := []verifyCase{
		{"valid", signed(did+"#"+strings.TrimPrefix(did, "did:key:"), nil), ""},
		{"valid, kid the DID", signed(did, nil), ""},
		{"valid, no kid, no sub", signed("", func(c *jwt.Claims) { c.Subject = "" }), ""},
		{"expired", signed(did, func(c *jwt.Claims) {
			c.IssuedAt, c.Expiry = jwt.NewNumericDate(now.Add(-20*time.Minute)), jwt.NewNumericDate(now.Add(-2*time.Minute))
		}), "expired"},
		{"expired within the skew", signed(did, func(c *jwt.Claims) {
			c.IssuedAt, c.Expiry = jwt.NewNumericDate(now.Add(-20*time.Minute)), jwt.NewNumericDate(now.Add(-30*time.Second))
		}), ""},
		{"not yet valid", signed(did, func(c *jwt.Claims) { c.NotBefore = jwt.NewNumericDate(now.Add(3 * time.Minute)) }), "not yet valid"},
		{"lifetime too long", signed(did, func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(now.Add(61 * time.Minute)) }), "lifetime too long"},
		{"missing iat", signed(did, func(c *jwt.Claims) { c.IssuedAt = nil }), "missing iat"},
		{"missing jti", signed(did, func(c *jwt.Claims) { c.ID = "" }), "missing jti"},
		{"wrong audience", signed(did, func(c *jwt.Claims) { c.Audience = jwt.Audience{"gateway-b"} }), "wrong audience"},
		{"several audiences, one ours", signed(did, func(c *jwt.Claims) { c.Audience = jwt.Audience{"gateway-b", audience} }), ""},
		{"DID not matching the key", func(t *testing.T) federation.Credential {
			c := claims(otherDID, otherDID)
			return federation.Credential{Token: sign(t, jose.EdDSA, key, otherDID, c, nil)}
		}, "invalid signature"},
		{"subject another DID", signed(did, func(c *jwt.Claims) { c.Subject = otherDID }), "subject does not match issuer"},
		{"unknown key", signed(otherDID, nil), "unknown key"},
		{"invalid did:key", func(t *testing.T) federation.Credential {
			c := claims("did:key:zNotBase58!", "")
			return federation.Credential{Token: sign(t, jose.EdDSA, key, "", c, nil)}
		}, "invalid DID"},
		{"ES256 under an Ed25519 DID", func(t *testing.T) federation.Credential {
			return federation.Credential{Token: sign(t, jose.ES256, ecKey(t), did, claims(did, did), nil)}
		}, "algorithm not allowed"},
		{"alg none", func(t *testing.T) federation.Credential {
			return federation.Credential{Token: unsigned(t, did, claims(did, did))}
		}, "algorithm not allowed"},
		{"HS256 with the public key", func(t *testing.T) federation.Credential {
			return federation.Credential{Token: hmacWith(t, key.Public(), did, claims(did, did))}
		}, "algorithm not allowed"},
		{"tampered payload", func(t *testing.T) federation.Credential {
			c := claims(did, did)
			tok := sign(t, jose.EdDSA, key, did, c, nil)
			c.Expiry = jwt.NewNumericDate(now.Add(50 * time.Minute))
			return federation.Credential{Token: tamper(t, tok, c)}
		}, "invalid signature"},
		{"unknown issuer", func(t *testing.T) federation.Credential {
			return federation.Credential{Token: sign(t, jose.EdDSA, key, "", claims("https://issuer.example", ""), nil)}
		}, "unknown issuer"},
	}
	runCases(t, w, identity.MethodDIDKey, cases, func(t *testing.T, id federation.Identity) {
		if id.Subject != did || id.TrustDomain != "did:key" {
			t.Errorf("identity = %+v", id)
		}
	})

	t.Run("replayed", func(t *testing.T) {
		cred := signed(did, nil)(t)
		if _, err := w.v.Verify(context.Background(), cred); err != nil {
			t.Fatalf("first: %v", err)
		}
		_, err := w.v.Verify(context.Background(), cred)
		if federation.ErrorCode(err) != federation.EUNAUTHORIZED || federation.ErrorMessage(err) != "replayed jti" {
			t.Fatalf("second: %v", err)
		}
		// The same jti from another issuer is another token.
		c := claims(otherDID, otherDID)
		c.ID = "shared-jti"
		mine := claims(did, did)
		mine.ID = "shared-jti"
		for _, tok := range []string{sign(t, jose.EdDSA, other, "", c, nil), sign(t, jose.EdDSA, key, "", mine, nil)} {
			if _, err := w.v.Verify(context.Background(), federation.Credential{Token: tok}); err != nil {
				t.Errorf("jti scoped by issuer: %v", err)
			}
		}
	})
}

func TestDIDWeb(t *testing.T) {
	w := newWorld(t, identity.Options{})
	key := edKey(t)
	ecPriv := ecKey(t)
	now := time.Now()
	edDoc := func(did string) map[string]any {
		return didDoc(did, map[string]any{"id": did + "#key-1", "type": "JsonWebKey2020", "publicKeyJwk": jwkOf(t, key.Public())})
	}
	token := func(did, kid string, mod func(*jwt.Claims)) string {
		c := claims(did, did)
		if mod != nil {
			mod(&c)
		}
		return sign(t, jose.EdDSA, key, kid, c, nil)
	}
	signed := func(doc func(string) map[string]any, kid string, mod func(*jwt.Claims)) func(t *testing.T) federation.Credential {
		return func(t *testing.T) federation.Credential {
			did := serveDID(t, doc)
			return federation.Credential{Token: token(did, strings.ReplaceAll(kid, "$did", did), mod)}
		}
	}
	cases := []verifyCase{
		{"valid, relative kid", signed(edDoc, "#key-1", nil), ""},
		{"valid, absolute kid", signed(edDoc, "$did#key-1", nil), ""},
		{"valid, multibase key listed for assertion", signed(func(did string) map[string]any {
			m := map[string]any{"id": "#key-1", "type": "Multikey", "controller": did,
				"publicKeyMultibase": strings.TrimPrefix(didKey(key.Public().(ed25519.PublicKey)), "did:key:")}
			return map[string]any{"id": did, "verificationMethod": []any{m}, "assertionMethod": []any{"#key-1"}}
		}, "#key-1", nil), ""},
		{"valid, embedded ES256 key", func(t *testing.T) federation.Credential {
			did := serveDID(t, func(did string) map[string]any {
				return map[string]any{"id": did, "authentication": []any{map[string]any{
					"id": did + "#ec", "type": "JsonWebKey2020", "controller": did, "publicKeyJwk": jwkOf(t, &ecPriv.PublicKey)}}}
			})
			return federation.Credential{Token: sign(t, jose.ES256, ecPriv, did+"#ec", claims(did, did), nil)}
		}, ""},
		{"expired", signed(edDoc, "#key-1", func(c *jwt.Claims) {
			c.IssuedAt, c.Expiry = jwt.NewNumericDate(now.Add(-time.Hour)), jwt.NewNumericDate(now.Add(-5*time.Minute))
		}), "expired"},
		{"not yet valid", signed(edDoc, "#key-1", func(c *jwt.Claims) { c.NotBefore = jwt.NewNumericDate(now.Add(4 * time.Minute)) }), "not yet valid"},
		{"wrong audience", signed(edDoc, "#key-1", func(c *jwt.Claims) { c.Audience = jwt.Audience{"x"} }), "wrong audience"},
		{"DID not matching the key", signed(func(did string) map[string]any {
			return didDoc(did, map[string]any{"id": did + "#key-1", "type": "JsonWebKey2020", "publicKeyJwk": jwkOf(t, edKey(t).Public())})
		}, "#key-1", nil), "invalid signature"},
		{"document of another DID", signed(func(did string) map[string]any {
			return edDoc("did:web:elsewhere.example")
		}, "#key-1", nil), "DID document does not match the DID"},
		{"unknown key", signed(edDoc, "#key-9", nil), "unknown key"},
		{"no kid", signed(edDoc, "", nil), "unknown key"},
		{"kid of another DID", signed(edDoc, "did:web:elsewhere.example#key-1", nil), "unknown key"},
		{"key not authorized for authentication", signed(func(did string) map[string]any {
			d := edDoc(did)
			d["keyAgreement"] = d["authentication"]
			delete(d, "authentication")
			return d
		}, "#key-1", nil), "unknown key"},
		{"private key in the document", signed(func(did string) map[string]any {
			return didDoc(did, map[string]any{"id": did + "#key-1", "type": "JsonWebKey2020", "publicKeyJwk": jwkOf(t, key)})
		}, "#key-1", nil), "unusable key"},
		{"alg none", func(t *testing.T) federation.Credential {
			did := serveDID(t, edDoc)
			return federation.Credential{Token: unsigned(t, did+"#key-1", claims(did, did))}
		}, "algorithm not allowed"},
		{"HS256 with the public key", func(t *testing.T) federation.Credential {
			did := serveDID(t, edDoc)
			return federation.Credential{Token: hmacWith(t, key.Public(), did+"#key-1", claims(did, did))}
		}, "algorithm not allowed"},
		{"tampered payload", func(t *testing.T) federation.Credential {
			did := serveDID(t, edDoc)
			tok := token(did, "#key-1", nil)
			c := claims(did, did)
			c.Audience = jwt.Audience{audience, "more"}
			return federation.Credential{Token: tamper(t, tok, c)}
		}, "invalid signature"},
		{"no document", func(t *testing.T) federation.Credential {
			did := "did:web:" + didHost + ":nobody"
			return federation.Credential{Token: token(did, "#key-1", nil)}
		}, "DID document unavailable"},
		{"path traversal", func(t *testing.T) federation.Credential {
			did := "did:web:" + didHost + ":..:etc"
			return federation.Credential{Token: token(did, "#key-1", nil)}
		}, "invalid DID"},
		{"userinfo in the host", func(t *testing.T) federation.Credential {
			did := "did:web:user%40" + didHost
			return federation.Credential{Token: token(did, "#key-1", nil)}
		}, "invalid DID"},
	}
	runCases(t, w, identity.MethodDIDWeb, cases, func(t *testing.T, id federation.Identity) {
		if !strings.HasPrefix(id.Subject, "did:web:"+didHost+":") || id.TrustDomain != didHost {
			t.Errorf("identity = %+v, want trust domain %s", id, didHost)
		}
	})

	t.Run("replayed", func(t *testing.T) {
		cred := signed(edDoc, "#key-1", nil)(t)
		if _, err := w.v.Verify(context.Background(), cred); err != nil {
			t.Fatalf("first: %v", err)
		}
		if _, err := w.v.Verify(context.Background(), cred); federation.ErrorMessage(err) != "replayed jti" {
			t.Fatalf("second: %v", err)
		}
	})
}

// A resolved document is reused until its TTL, then fetched again: a rotated key is
// picked up, a removed one stops working.
func TestDIDWebCache(t *testing.T) {
	offset := time.Duration(0)
	clock := func() time.Time { return time.Now().Add(offset) }
	w := newWorld(t, identity.Options{Clock: clock, DIDCacheTTL: 10 * time.Minute})
	oldKey, newKey := edKey(t), edKey(t)
	var path string
	did := serveDID(t, func(did string) map[string]any {
		path = "/" + strings.Join(strings.Split(did, ":")[3:], "/") + "/did.json"
		return didDoc(did, map[string]any{"id": did + "#k", "type": "JsonWebKey2020", "publicKeyJwk": jwkOf(t, oldKey.Public())})
	})
	verify := func(k ed25519.PrivateKey) error {
		c := claims(did, did)
		c.IssuedAt, c.Expiry = jwt.NewNumericDate(clock()), jwt.NewNumericDate(clock().Add(time.Minute))
		_, err := w.v.Verify(context.Background(), federation.Credential{Token: sign(t, jose.EdDSA, k, "#k", c, nil)})
		return err
	}
	if err := verify(oldKey); err != nil {
		t.Fatal(err)
	}
	setDID(t, path, didDoc(did, map[string]any{"id": did + "#k", "type": "JsonWebKey2020", "publicKeyJwk": jwkOf(t, newKey.Public())}))
	if err := verify(oldKey); err != nil {
		t.Fatalf("within the TTL the cached document must serve: %v", err)
	}
	offset = 11 * time.Minute
	if err := verify(oldKey); federation.ErrorMessage(err) != "invalid signature" {
		t.Fatalf("old key after the TTL: %v", err)
	}
	if err := verify(newKey); err != nil {
		t.Fatalf("new key after the TTL: %v", err)
	}
}

func TestX509SVID(t *testing.T) {
	w := newWorld(t, identity.Options{})
	now := time.Now()
	leaf, leafKey := w.a.svid(t, "/agent/x", now.Add(-time.Minute), now.Add(time.Hour))
	der := func(c ...[]byte) string {
		var parts []string
		for _, b := range c {
			parts = append(parts, base64.StdEncoding.EncodeToString(b))
		}
		return strings.Join(parts, ",")
	}
	chain := func(c federation.Credential) func(t *testing.T) federation.Credential {
		c.Type = identity.TypeX509SVID
		return func(*testing.T) federation.Credential { return c }
	}
	// x5c is a JWT signed with the SVID's key, carrying the chain.
	x5c := func(key *ecdsa.PrivateKey, mod func(*jwt.Claims)) func(t *testing.T) federation.Credential {
		return func(t *testing.T) federation.Credential {
			c := claims("", "spiffe://registry-a.example/agent/x")
			if mod != nil {
				mod(&c)
			}
			tok := sign(t, jose.ES256, key, "", c, map[jose.HeaderKey]any{"x5c": []string{base64.StdEncoding.EncodeToString(leaf.Raw)}})
			return federation.Credential{Type: identity.TypeX509SVID, Token: tok}
		}
	}
	expired, _ := w.a.svid(t, "/agent/x", now.Add(-2*time.Hour), now.Add(-time.Hour))
	future, _ := w.a.svid(t, "/agent/x", now.Add(time.Hour), now.Add(2*time.Hour))
	otherDomain, _ := w.b.svid(t, "/agent/x", now.Add(-time.Minute), now.Add(time.Hour))
	rogue := newAuthority(t, "registry-a.example") // the right name, not the configured CA
	rogueLeaf, _ := rogue.svid(t, "/agent/x", now.Add(-time.Minute), now.Add(time.Hour))

	cases := []verifyCase{
		{"valid PEM", chain(federation.Credential{Token: pemOf(leaf)}), ""},
		{"valid PEM with the CA", chain(federation.Credential{Token: pemOf(leaf, w.a.ca)}), ""},
		{"valid DER list", chain(federation.Credential{Token: der(leaf.Raw)}), ""},
		{"expired", chain(federation.Credential{Token: pemOf(expired)}), "expired"},
		{"not yet valid", chain(federation.Credential{Token: pemOf(future)}), "not yet valid"},
		{"wrong trust domain", chain(federation.Credential{Token: pemOf(otherDomain)}), "unknown trust domain"},
		{"unknown CA", chain(federation.Credential{Token: pemOf(rogueLeaf)}), "untrusted certificate chain"},
		{"a CA as the leaf", chain(federation.Credential{Token: pemOf(w.a.ca)}), "untrusted certificate chain"},
		{"not a certificate", chain(federation.Credential{Token: der([]byte("garbage"))}), "malformed certificate chain"},
		{"PEM of a key", chain(federation.Credential{Token: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}), "malformed certificate chain"},
		{"x5c JWT", x5c(leafKey, nil), ""},
		{"x5c JWT signed by another key", x5c(ecKey(t), nil), "invalid signature"},
		{"x5c JWT expired", x5c(leafKey, func(c *jwt.Claims) {
			c.IssuedAt, c.Expiry = jwt.NewNumericDate(now.Add(-time.Hour)), jwt.NewNumericDate(now.Add(-10*time.Minute))
		}), "expired"},
		{"x5c JWT not yet valid", x5c(leafKey, func(c *jwt.Claims) { c.NotBefore = jwt.NewNumericDate(now.Add(10 * time.Minute)) }), "not yet valid"},
		{"x5c JWT wrong audience", x5c(leafKey, func(c *jwt.Claims) { c.Audience = jwt.Audience{"x"} }), "wrong audience"},
		{"x5c JWT another subject", x5c(leafKey, func(c *jwt.Claims) { c.Subject = "spiffe://registry-a.example/admin" }), "subject does not match the certificate"},
		{"x5c JWT missing jti", x5c(leafKey, func(c *jwt.Claims) { c.ID = "" }), "missing jti"},
		{"x5c JWT alg none", func(t *testing.T) federation.Credential {
			h := `{"alg":"none","x5c":["` + base64.StdEncoding.EncodeToString(leaf.Raw) + `"]}`
			p := `{"aud":"` + audience + `"}`
			return federation.Credential{Type: identity.TypeX509SVID, Token: b64([]byte(h)) + "." + b64([]byte(p)) + "."}
		}, "algorithm not allowed"},
		{"x5c JWT HS256 with the public key", func(t *testing.T) federation.Credential {
			return federation.Credential{Type: identity.TypeX509SVID, Token: hmacWith(t, leaf.PublicKey, "", claims("", ""))}
		}, "algorithm not allowed"},
		{"x5c JWT tampered", func(t *testing.T) federation.Credential {
			c := x5c(leafKey, nil)(t)
			c.Token = tamper(t, c.Token, claims("", "spiffe://registry-a.example/agent/x"))
			return c
		}, "invalid signature"},
	}
	runCases(t, w, identity.MethodX509SVID, cases, func(t *testing.T, id federation.Identity) {
		if id.Subject != "spiffe://registry-a.example/agent/x" || id.TrustDomain != "registry-a.example" {
			t.Errorf("identity = %+v", id)
		}
	})

	t.Run("replayed", func(t *testing.T) {
		cred := x5c(leafKey, nil)(t)
		if _, err := w.v.Verify(context.Background(), cred); err != nil {
			t.Fatalf("first: %v", err)
		}
		if _, err := w.v.Verify(context.Background(), cred); federation.ErrorMessage(err) != "replayed jti" {
			t.Fatalf("second: %v", err)
		}
	})

	t.Run("caveat", func(t *testing.T) {
		bare := federation.Credential{Type: identity.TypeX509SVID, Token: pemOf(leaf)}
		id, err := w.v.Verify(context.Background(), bare)
		if err != nil || identity.Caveat(bare, id) == "" {
			t.Errorf("a bare chain must carry a caveat: %v", err)
		}
		signed := x5c(leafKey, nil)(t)
		id, err = w.v.Verify(context.Background(), signed)
		if err != nil || identity.Caveat(signed, id) != "" {
			t.Errorf("an x5c JWT proves possession: %v %q", err, identity.Caveat(signed, id))
		}
	})
}

func TestMalformedCredentials(t *testing.T) {
	w := newWorld(t, identity.Options{})
	tests := []struct {
		cred federation.Credential
		code string
	}{
		{federation.Credential{}, federation.EINVALID},
		{federation.Credential{Type: "saml", Token: "x"}, federation.EINVALID},
		{federation.Credential{Token: "not a jwt"}, federation.EUNAUTHORIZED},
		{federation.Credential{Token: "a.b.c"}, federation.EUNAUTHORIZED},
		{federation.Credential{Token: strings.Repeat("a", identity.MaxTokenSize+1)}, federation.EUNAUTHORIZED},
		{federation.Credential{Type: identity.TypeX509SVID, Token: "!!!"}, federation.EUNAUTHORIZED},
	}
	for _, tt := range tests {
		_, err := w.v.Verify(context.Background(), tt.cred)
		if federation.ErrorCode(err) != tt.code {
			t.Errorf("%q %.40q: %v, want %s", tt.cred.Type, tt.cred.Token, err, tt.code)
		}
	}
}

func TestNewVerifierRequiresAudienceAndReplayGuard(t *testing.T) {
	if _, err := identity.NewVerifier(identity.Options{}); err == nil {
		t.Error("no audience accepted")
	}
	if _, err := identity.NewVerifier(identity.Options{Audience: "gw"}); err == nil {
		t.Error("no replay guard accepted")
	}
}
