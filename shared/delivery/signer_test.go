package delivery_test

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/federation-gateway/gateway/shared/delivery"
	"github.com/federation-gateway/gateway/shared/federation"
)

func newSigner(t *testing.T) *delivery.Signer {
	t.Helper()
	jwk, err := delivery.GenerateKeyJWK()
	if err != nil {
		t.Fatal(err)
	}
	s, err := delivery.NewSigner(jwk)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func sampleMessage() delivery.Message {
	return delivery.Message{
		ID: "msg-1", From: "did:key:z6MkSender", To: "did:web:example.com:agents:target",
		SourceRegistry: "alpha", TargetRegistry: "beta",
		Payload:    json.RawMessage(`{"b": [1, 2.50, "x<y"], "a": {"z": true, "y": null}}`),
		VerifiedBy: "did:key", Subject: "did:key:z6MkSender",
	}
}

func TestSignerKeys(t *testing.T) {
	jwk, err := delivery.GenerateKeyJWK()
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(jwk), &raw); err != nil {
		t.Fatal(err)
	}
	if raw["kty"] != "OKP" || raw["crv"] != "Ed25519" || raw["d"] == nil || raw["kid"] == nil {
		t.Fatalf("generated JWK = %v", raw)
	}

	s1, err := delivery.NewSigner(jwk)
	if err != nil {
		t.Fatal(err)
	}
	// A kid the secret states is ignored: the kid is the key's thumbprint, stable.
	raw["kid"] = "something-else"
	relabelled, _ := json.Marshal(raw)
	s2, err := delivery.NewSigner(string(relabelled))
	if err != nil {
		t.Fatal(err)
	}
	if s1.KeyID() != s2.KeyID() || s1.KeyID() == "something-else" {
		t.Errorf("kid %q then %q: not the thumbprint", s1.KeyID(), s2.KeyID())
	}

	var set jose.JSONWebKeySet
	if err := json.Unmarshal(s1.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 1 || set.Keys[0].KeyID != s1.KeyID() || !set.Keys[0].IsPublic() || set.Keys[0].Algorithm != "EdDSA" {
		t.Fatalf("JWKS = %s", s1.JWKS())
	}
	if strings.Contains(string(s1.JWKS()), `"d"`) {
		t.Errorf("the JWKS holds the private key: %s", s1.JWKS())
	}
	if _, ok := set.Keys[0].Key.(ed25519.PublicKey); !ok {
		t.Errorf("JWKS key is %T", set.Keys[0].Key)
	}
}

func TestNewSignerRefuses(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(nil)
	public, _ := json.Marshal(jose.JSONWebKey{Key: pub})
	tests := map[string]string{
		"empty":          "",
		"not JSON":       "secret",
		"empty object":   "{}",
		"public key":     string(public),
		"empty set":      `{"keys": []}`,
		"symmetric key":  `{"kty":"oct","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"}`,
		"another curve":  `{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","d":"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"}`,
		"set with a bad": `{"keys": [{"kty":"oct","k":"c2VjcmV0"}]}`,
	}
	for name, jwk := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := delivery.NewSigner(jwk); err == nil {
				t.Error("accepted")
			} else if strings.Contains(err.Error(), "jpsQnnGQ") {
				t.Errorf("the error quotes the key: %v", err)
			}
		})
	}
}

// The hash is the documented one: SHA-256 over the RFC 8785 form of the six fields.
func TestMessageHashIsTheDocumentedOne(t *testing.T) {
	m := sampleMessage()
	canonical := `{"from":"did:key:z6MkSender","message_id":"msg-1","payload":{"a":{"y":null,"z":true},"b":[1,2.5,"x<y"]},` +
		`"source_registry":"alpha","target_registry":"beta","to":"did:web:example.com:agents:target"}`
	sum := sha256.Sum256([]byte(canonical))
	want := base64.RawURLEncoding.EncodeToString(sum[:])
	got, err := delivery.MessageHash(m)
	if err != nil || got != want {
		t.Fatalf("MessageHash = %q, %v; want %q", got, err, want)
	}
	// Re-encoding the payload (key order, spacing, number spelling) keeps the hash.
	m.Payload = json.RawMessage(`{"a":{"z":true,"y":null},"b":[1.0,25e-1,"x\u003cy"]}`)
	if again, _ := delivery.MessageHash(m); again != want {
		t.Errorf("re-encoded payload hashes to %q", again)
	}
	for _, bad := range []string{`{"a":`, `{"n": 1e400}`, `{"a":1,"a":2}`} {
		m.Payload = json.RawMessage(bad)
		if _, err := delivery.MessageHash(m); federation.ErrorCode(err) != federation.EINVALID {
			t.Errorf("payload %s: err %v, want EINVALID", bad, err)
		}
	}
}

func TestVerifyForwarded(t *testing.T) {
	signer, other := newSigner(t), newSigner(t)
	now := time.Now()
	m := sampleMessage()
	sign := func(t *testing.T, s *delivery.Signer, m delivery.Message, at time.Time) string {
		t.Helper()
		c, err := delivery.ClaimsFor("gw-test", m, at)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := s.Sign(c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	good := sign(t, signer, m, now)

	untypedJWKS, untypedToken := typJWT(t, m, now)

	altered := func(f func(*delivery.Message)) delivery.Message {
		c := m
		f(&c)
		return c
	}
	tests := []struct {
		name    string
		jwks    []byte
		token   string
		m       delivery.Message
		at      time.Time
		wantErr string
	}{
		{"valid", signer.JWKS(), good, m, now, ""},
		{"payload re-encoded", signer.JWKS(), good, altered(func(c *delivery.Message) {
			c.Payload = json.RawMessage(`{"a":{"y":null,"z":true},"b":[1,2.5,"x<y"]}`)
		}), now, ""},
		{"within leeway after exp", signer.JWKS(), good, m, now.Add(delivery.TokenLifetime + 30*time.Second), ""},
		{"payload altered", signer.JWKS(), good, altered(func(c *delivery.Message) { c.Payload = json.RawMessage(`{"b":[1,2.5,"x<y"],"a":{"z":false,"y":null}}`) }), now, "altered"},
		{"target altered", signer.JWKS(), good, altered(func(c *delivery.Message) { c.To = "did:web:evil.example" }), now, "altered"},
		{"sender altered", signer.JWKS(), good, altered(func(c *delivery.Message) { c.From = "did:key:z6MkOther" }), now, "altered"},
		{"registry altered", signer.JWKS(), good, altered(func(c *delivery.Message) { c.SourceRegistry = "gamma" }), now, "altered"},
		{"message ID altered", signer.JWKS(), good, altered(func(c *delivery.Message) { c.ID = "msg-2" }), now, "not \"msg-2\""},
		{"verified_by altered", signer.JWKS(), good, altered(func(c *delivery.Message) { c.VerifiedBy = "jwt-svid" }), now, "verified_by"},
		{"expired", signer.JWKS(), good, m, now.Add(delivery.TokenLifetime + 2*time.Minute), "expired"},
		{"issued in the future", signer.JWKS(), good, m, now.Add(-5 * time.Minute), "future"},
		{"another gateway's keys", other.JWKS(), good, m, now, "no Ed25519 key"},
		{"signature tampered", signer.JWKS(), good[:len(good)-4] + "AAAA", m, now, "does not verify"},
		{"typ JWT", untypedJWKS, untypedToken, m, now, "typ"},
		{"unsigned", signer.JWKS(), "eyJhbGciOiJub25lIn0.eyJqdGkiOiJtc2ctMSJ9.", m, now, "not a compact EdDSA JWS"},
		{"garbage token", signer.JWKS(), "not-a-token", m, now, "not a compact EdDSA JWS"},
		{"garbage JWKS", []byte("nope"), good, m, now, "not a JWK set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := delivery.VerifyForwardedAt(tt.jwks, tt.token, tt.m, tt.at)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.wantErr == "":
			case err == nil:
				t.Fatal("accepted")
			case federation.ErrorCode(err) != federation.EUNAUTHORIZED || !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("err = %v (%s), want EUNAUTHORIZED containing %q", err, federation.ErrorCode(err), tt.wantErr)
			}
		})
	}
	if err := delivery.VerifyForwarded(signer.JWKS(), good, m); err != nil {
		t.Errorf("VerifyForwarded now: %v", err)
	}
}

func TestTokenFormat(t *testing.T) {
	signer := newSigner(t)
	m := sampleMessage()
	c, _ := delivery.ClaimsFor("gw-test", m, time.Unix(1_800_000_000, 0))
	tok, err := signer.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not compact: %s", tok)
	}
	var header, claims map[string]any
	for i, v := range []*map[string]any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil || json.Unmarshal(b, v) != nil {
			t.Fatalf("part %d: %v", i, err)
		}
	}
	if header["alg"] != "EdDSA" || header["typ"] != delivery.TokenType || header["kid"] != signer.KeyID() {
		t.Errorf("header = %v", header)
	}
	hash, _ := delivery.MessageHash(m)
	want := map[string]any{
		"iss": "gw-test", "iat": 1.8e9, "exp": 1.8e9 + 300, "jti": "msg-1", "msg_hash": hash,
		"verified_by": map[string]any{"method": "did:key", "subject": "did:key:z6MkSender"},
	}
	got, _ := json.Marshal(claims)
	wantJSON, _ := json.Marshal(want)
	if string(got) != string(wantJSON) {
		t.Errorf("claims = %s\nwant     %s", got, wantJSON)
	}
}

// After a rotation the secret is a set: the new key signs, and the old one still
// verifies what it signed.
func TestKeyRotation(t *testing.T) {
	oldJWK, _ := delivery.GenerateKeyJWK()
	newJWK, _ := delivery.GenerateKeyJWK()
	oldSigner, err := delivery.NewSigner(oldJWK)
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := delivery.NewSigner(`{"keys": [` + newJWK + `, ` + oldJWK + `]}`)
	if err != nil {
		t.Fatal(err)
	}
	newSigner, _ := delivery.NewSigner(newJWK)
	if rotated.KeyID() != newSigner.KeyID() {
		t.Errorf("the set signs with %s, want the first key %s", rotated.KeyID(), newSigner.KeyID())
	}
	m := sampleMessage()
	c, _ := delivery.ClaimsFor("gw-test", m, time.Now())
	for name, s := range map[string]*delivery.Signer{"old": oldSigner, "new": rotated} {
		tok, err := s.Sign(c)
		if err != nil {
			t.Fatal(err)
		}
		if err := delivery.VerifyForwarded(rotated.JWKS(), tok, m); err != nil {
			t.Errorf("%s key's signature: %v", name, err)
		}
	}
}

// typJWT signs m's claims as a plain JWT (typ JWT) with a new key, and returns the key's
// JWKS with it: the gateway never makes one, and it must not pass for a forwarding
// signature.
func typJWT(t *testing.T, m delivery.Message, now time.Time) ([]byte, string) {
	t.Helper()
	jwk, _ := delivery.GenerateKeyJWK()
	s, err := delivery.NewSigner(jwk)
	if err != nil {
		t.Fatal(err)
	}
	var priv jose.JSONWebKey
	if err := priv.UnmarshalJSON([]byte(jwk)); err != nil {
		t.Fatal(err)
	}
	js, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: jose.JSONWebKey{Key: priv.Key, KeyID: s.KeyID()}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := delivery.ClaimsFor("gw-test", m, now)
	tok, err := jwt.Signed(js).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return s.JWKS(), tok
}
