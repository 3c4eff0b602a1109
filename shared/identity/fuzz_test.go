package identity_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/federation-gateway/gateway/infra/localtest"
	"github.com/federation-gateway/gateway/shared/dynamo"
	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/identity"
)

// FuzzVerify: no credential crashes the verifier, and every failure is the caller's
// (unauthorized or invalid), never an internal error.
func FuzzVerify(f *testing.F) {
	w := newWorld(f, identity.Options{})
	key := edKey(f)
	did := didKey(key.Public().(ed25519.PublicKey))
	leaf, _ := w.a.svid(f, "/agent/x", time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
	webDID := serveDID(f, func(d string) map[string]any {
		return didDoc(d, map[string]any{"id": d + "#k", "type": "JsonWebKey2020", "publicKeyJwk": jwkOf(f, key.Public())})
	})
	seeds := []struct{ typ, token string }{
		{"", sign(f, jose.EdDSA, key, did, claims(did, did), nil)},
		{"did:web", sign(f, jose.EdDSA, key, "#k", claims(webDID, webDID), nil)},
		{"jwt", sign(f, jose.ES256, w.a.jwtKey, w.a.kid, claims("", "spiffe://registry-a.example/a"), nil)},
		{"jwt", unsigned(f, did, claims(did, did))},
		{"jwt", hmacWith(f, key.Public(), did, claims(did, did))},
		{"x509-svid", pemOf(leaf)},
		{"x509-svid", base64.StdEncoding.EncodeToString(leaf.Raw) + "," + base64.StdEncoding.EncodeToString(w.a.ca.Raw)},
		{"x509-svid", "eyJhbGciOiJFUzI1NiIsIng1YyI6WyIhIl19.e30.AA"},
		{"", "eyJhbGciOiJFZERTQSJ9.eyJpc3MiOiJkaWQ6d2ViOmV4YW1wbGUuY29tIn0.AA"},
		{"", "a.b.c"},
		{"", strings.Repeat(".", 3)},
		{"saml", "x"},
	}
	for _, s := range seeds {
		f.Add(s.typ, s.token)
	}
	v, err := identity.NewVerifier(identity.Options{Audience: audience, Bundles: mustInline(f, w),
		Replay: dynamo.NewStore(localtest.DynamoDB(f), localtest.Table(f)).ReplayGuard(), DIDs: didResolver()})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, typ, token string) {
		id, err := v.Verify(context.Background(), federation.Credential{Type: typ, Token: token})
		switch federation.ErrorCode(err) {
		case "":
			if id.Subject == "" || id.Method == "" {
				t.Fatalf("verified without a subject: %+v", id)
			}
		case federation.EUNAUTHORIZED, federation.EINVALID:
		default:
			t.Fatalf("%q %q: %v", typ, token, err)
		}
	})
}

func mustInline(t testing.TB, w *world) identity.StaticBundles {
	t.Helper()
	b, err := identity.InlineBundles([]federation.TrustDomain{{Name: "registry-a.example", Bundle: w.a.bundle(t, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}
