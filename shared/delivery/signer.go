package delivery

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/gowebpki/jcs"

	"github.com/federation-gateway/gateway/shared/federation"
)

// Signature format constants.
const (
	// TokenType is the JWS "typ" header of a forwarding signature (explicit typing, RFC
	// 8725 §3.11), so that no other JWT of the gateway's key can pass for one.
	TokenType = "federation+jwt"
	// TokenLifetime is how long a forwarding signature is valid: long enough for the
	// delivery, short enough that a captured message cannot be replayed for long.
	TokenLifetime = 5 * time.Minute
	// ClockLeeway is the clock skew VerifyForwarded tolerates on iat and exp.
	ClockLeeway = time.Minute
)

// Claims are the claims of a forwarding signature.
type Claims struct {
	Issuer   string `json:"iss"` // the gateway ID
	IssuedAt int64  `json:"iat"` // seconds since the epoch
	Expiry   int64  `json:"exp"`
	ID       string `json:"jti"` // the message ID
	// MsgHash is MessageHash of the message: what binds the signature to its content.
	MsgHash string `json:"msg_hash"`
	// VerifiedBy is how the gateway verified the sender, when it did.
	VerifiedBy *VerifiedBy `json:"verified_by,omitempty"`
}

// VerifiedBy says how the gateway verified the sender's identity: the method (jwt-svid,
// x509-svid, did:key, did:web) and the verified subject (SPIFFE ID or DID).
type VerifiedBy struct {
	Method  string `json:"method"`
	Subject string `json:"subject"`
}

// Signer holds the gateway's Ed25519 signing key.
type Signer struct {
	key    ed25519.PrivateKey
	signer jose.Signer
	kid    string
	jwks   []byte
}

// GenerateKeyJWK returns a new Ed25519 private key as a JWK (kty OKP, crv Ed25519) whose
// kid is its RFC 7638 thumbprint: the value of the gateway's signing-key secret.
func GenerateKeyJWK() (string, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", fmt.Errorf("generate signing key: %w", err)
	}
	jwk := jose.JSONWebKey{Key: key, Algorithm: string(jose.EdDSA), Use: "sig"}
	kid, err := thumbprint(jwk)
	if err != nil {
		return "", err
	}
	jwk.KeyID = kid
	b, err := jwk.MarshalJSON()
	if err != nil {
		return "", fmt.Errorf("encode signing key: %w", err)
	}
	return string(b), nil
}

// NewSigner loads the signing key from a JWK: one Ed25519 private key, or a JWK set
// ({"keys": [...]}) of them, for a rotation: the first key of the set signs, and the
// public keys of all of them are published by JWKS, so that a target still verifies what
// was signed with the previous key. A key's kid is always its RFC 7638 thumbprint,
// whatever the JWK says, so it stays stable across re-encodings of the secret. Errors
// never quote the key.
func NewSigner(jwkJSON string) (*Signer, error) {
	keys, err := parseKeys([]byte(jwkJSON))
	if err != nil {
		return nil, err
	}
	var set jose.JSONWebKeySet
	for _, k := range keys {
		pub := jose.JSONWebKey{Key: k.Public().(ed25519.PublicKey), Algorithm: string(jose.EdDSA), Use: "sig"}
		if pub.KeyID, err = thumbprint(pub); err != nil {
			return nil, err
		}
		set.Keys = append(set.Keys, pub)
	}
	jwks, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("encode JWKS: %w", err)
	}
	kid := set.Keys[0].KeyID
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.EdDSA, Key: jose.JSONWebKey{Key: keys[0], KeyID: kid}},
		(&jose.SignerOptions{}).WithType(TokenType),
	)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	return &Signer{key: keys[0], signer: signer, kid: kid, jwks: jwks}, nil
}

// parseKeys reads one private JWK or a set of them; every one must be Ed25519.
func parseKeys(raw []byte) ([]ed25519.PrivateKey, error) {
	var probe struct {
		Keys json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return nil, errors.New("signing key: not a JSON object (want an Ed25519 private JWK)")
	}
	var jwks []jose.JSONWebKey
	if probe.Keys != nil {
		var set jose.JSONWebKeySet
		if err := json.Unmarshal(raw, &set); err != nil {
			return nil, fmt.Errorf("signing key: not a JWK set: %w", err)
		}
		jwks = set.Keys
	} else {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			return nil, fmt.Errorf("signing key: not a JWK: %w", err)
		}
		jwks = []jose.JSONWebKey{k}
	}
	if len(jwks) == 0 {
		return nil, errors.New("signing key: the JWK set is empty")
	}
	keys := make([]ed25519.PrivateKey, 0, len(jwks))
	for i, k := range jwks {
		priv, ok := k.Key.(ed25519.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("signing key %d: want an Ed25519 private key (kty OKP, crv Ed25519, with d), got %T", i, k.Key)
		}
		keys = append(keys, priv)
	}
	return keys, nil
}

func thumbprint(k jose.JSONWebKey) (string, error) {
	tp, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("key thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// KeyID returns the kid of the signing key: its RFC 7638 thumbprint, base64url.
func (s *Signer) KeyID() string { return s.kid }

// Sign returns claims as a compact JWS: alg EdDSA, kid the signing key's, typ TokenType.
func (s *Signer) Sign(claims Claims) (string, error) {
	token, err := jwt.Signed(s.signer).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("sign claims of message %s: %w", claims.ID, err)
	}
	return token, nil
}

// JWKS returns the public JWK set that verifies the signatures: what the gateway serves
// at GET /.well-known/jwks.json.
func (s *Signer) JWKS() []byte { return bytes.Clone(s.jwks) }

// ClaimsFor returns the claims that sign m for gateway gatewayID at now.
func ClaimsFor(gatewayID string, m Message, now time.Time) (Claims, error) {
	hash, err := MessageHash(m)
	if err != nil {
		return Claims{}, err
	}
	c := Claims{
		Issuer: gatewayID, IssuedAt: now.Unix(), Expiry: now.Add(TokenLifetime).Unix(),
		ID: m.ID, MsgHash: hash,
	}
	if m.VerifiedBy != "" || m.Subject != "" {
		c.VerifiedBy = &VerifiedBy{Method: m.VerifiedBy, Subject: m.Subject}
	}
	return c, nil
}

// MessageHash returns base64url (no padding) of the SHA-256 of the RFC 8785 canonical
// JSON of {message_id, from, to, source_registry, target_registry, payload}, with the
// payload as the sender sent it (before any {"value": ...} wrapping); a message that
// carries its sender's parts (m.Parts) adds "payload_form": "parts", its payload being
// the list of parts, so that neither form can pass for the other. Errors: EINVALID when
// the payload is not JSON or holds a number JSON canonicalization cannot represent.
func MessageHash(m Message) (string, error) {
	doc := struct {
		MessageID      string          `json:"message_id"`
		From           string          `json:"from"`
		To             string          `json:"to"`
		SourceRegistry string          `json:"source_registry"`
		TargetRegistry string          `json:"target_registry"`
		Payload        json.RawMessage `json:"payload"`
		PayloadForm    string          `json:"payload_form,omitempty"`
	}{m.ID, m.From, m.To, m.SourceRegistry, m.TargetRegistry, m.Payload, ""}
	if m.Parts {
		doc.PayloadForm = PayloadParts
	}
	if len(bytes.TrimSpace(doc.Payload)) == 0 {
		doc.Payload = json.RawMessage("null")
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return "", federation.Wrap(federation.EINVALID, err, "the payload is not valid JSON")
	}
	canonical, err := jcs.Transform(b)
	if err != nil {
		return "", federation.Wrap(federation.EINVALID, err, "the payload cannot be canonicalized (RFC 8785): a number out of range or a duplicate key")
	}
	sum := sha256.Sum256(canonical)
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// VerifyForwarded checks that token, the federation.signature of a message a target
// received, was made by a key of jwks (the gateway's /.well-known/jwks.json) for exactly
// m, and is within its validity (with ClockLeeway). It checks the signature (EdDSA only),
// typ, iat and exp, jti against m.ID, msg_hash against MessageHash(m), and verified_by
// against m.VerifiedBy and m.Subject. It does not check iss: the JWKS fetched from the
// gateway the target trusts is what says who signed. Errors: EUNAUTHORIZED with the reason.
func VerifyForwarded(jwks []byte, token string, m Message) error {
	return verifyForwarded(jwks, token, m, time.Now())
}

func verifyForwarded(jwks []byte, token string, m Message, now time.Time) error {
	fail := func(format string, args ...any) error {
		return federation.Errorf(federation.EUNAUTHORIZED, "forwarding signature: "+format, args...)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(jwks, &set); err != nil {
		return fail("the JWKS is not a JWK set")
	}
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		return fail("not a compact EdDSA JWS")
	}
	if len(tok.Headers) != 1 {
		return fail("want exactly one signature")
	}
	h := tok.Headers[0]
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != TokenType {
		return fail("typ is %q, want %q", typ, TokenType)
	}
	var key ed25519.PublicKey
	for _, k := range set.Key(h.KeyID) {
		switch v := k.Key.(type) {
		case ed25519.PublicKey:
			key = v
		case ed25519.PrivateKey:
			key = v.Public().(ed25519.PublicKey)
		}
	}
	if h.KeyID == "" || key == nil {
		return fail("no Ed25519 key %q in the JWKS", h.KeyID)
	}
	var c Claims
	if err := tok.Claims(key, &c); err != nil {
		return fail("the signature does not verify")
	}
	switch {
	case c.Expiry == 0 || c.IssuedAt == 0:
		return fail("iat and exp are required")
	case now.Add(-ClockLeeway).Unix() > c.Expiry:
		return fail("expired at %s", time.Unix(c.Expiry, 0).UTC().Format(time.RFC3339))
	case now.Add(ClockLeeway).Unix() < c.IssuedAt:
		return fail("issued in the future")
	case c.ID != m.ID:
		return fail("it signs message %q, not %q", c.ID, m.ID)
	}
	hash, err := MessageHash(m)
	if err != nil {
		return fail("the message cannot be hashed: %s", federation.ErrorMessage(err))
	}
	if c.MsgHash != hash {
		return fail("the message was altered: msg_hash does not match")
	}
	var got VerifiedBy
	if c.VerifiedBy != nil {
		got = *c.VerifiedBy
	}
	if got != (VerifiedBy{Method: m.VerifiedBy, Subject: m.Subject}) {
		return fail("verified_by does not match the signed one")
	}
	return nil
}
