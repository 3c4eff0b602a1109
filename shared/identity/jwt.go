package identity

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/federation-gateway/gateway/shared/federation"
)

// jwtAlgs is the allow-list of JWS algorithms. "none" and the HMAC algorithms never are
// on it: with them, anyone who knows the public key could sign.
var jwtAlgs = []jose.SignatureAlgorithm{jose.EdDSA, jose.ES256, jose.ES384, jose.RS256, jose.PS256}

// minRSABits is the smallest RSA key accepted.
const minRSABits = 2048

// header is the part of a JWS protected header the verifier reads before parsing the
// token, to give a precise reason and to reach x5c, which go-jose keeps to itself.
type header struct {
	Alg string   `json:"alg"`
	Kid string   `json:"kid"`
	X5c []string `json:"x5c"`
}

// parsedJWT is a JWT whose structure is known good but whose signature is not yet checked.
type parsedJWT struct {
	raw    string
	header header
	tok    *jwt.JSONWebToken
	claims jwt.Claims
}

// parseJWT parses a compact JWS and its registered claims, without verifying it.
func parseJWT(token string) (*parsedJWT, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, deny("malformed token", nil)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return nil, deny("malformed token", err)
	}
	var h header
	if err := json.Unmarshal(raw, &h); err != nil {
		return nil, deny("malformed token", err)
	}
	if !slices.Contains(jwtAlgs, jose.SignatureAlgorithm(h.Alg)) {
		return nil, deny("algorithm not allowed", nil)
	}
	tok, err := jwt.ParseSigned(token, jwtAlgs)
	if err != nil {
		return nil, deny("malformed token", err)
	}
	if len(tok.Headers) != 1 {
		return nil, deny("malformed token", nil)
	}
	p := &parsedJWT{raw: token, header: h, tok: tok}
	if err := tok.UnsafeClaimsWithoutVerification(&p.claims); err != nil {
		return nil, deny("malformed claims", err)
	}
	return p, nil
}

// verifyJWT verifies a JWT of any method, or only of method want when it is not "".
func (v *Verifier) verifyJWT(ctx context.Context, token, want string) (federation.Identity, error) {
	p, err := parseJWT(token)
	if err != nil {
		return federation.Identity{}, err
	}
	method := ""
	switch {
	case strings.HasPrefix(p.claims.Subject, "spiffe://"):
		method = MethodJWTSVID
	case strings.HasPrefix(p.claims.Issuer, "did:key:"):
		method = MethodDIDKey
	case strings.HasPrefix(p.claims.Issuer, "did:web:"):
		method = MethodDIDWeb
	default:
		return federation.Identity{}, deny("unknown issuer", nil)
	}
	if want != "" && want != method {
		return federation.Identity{}, deny("credential type mismatch", nil)
	}
	switch method {
	case MethodJWTSVID:
		return v.verifyJWTSVID(ctx, p)
	case MethodDIDKey:
		return v.verifyDIDKey(ctx, p)
	default:
		return v.verifyDIDWeb(ctx, p)
	}
}

// checkSignature verifies the token with key, after checking that its algorithm is one
// the key's type can produce.
func (p *parsedJWT) checkSignature(key crypto.PublicKey) error {
	if !algFits(p.header.Alg, key) {
		return deny("algorithm not allowed", nil)
	}
	var verified jwt.Claims
	if err := p.tok.Claims(key, &verified); err != nil {
		return deny("invalid signature", err)
	}
	return nil
}

// algFits reports whether alg is the algorithm of the allow-list that key's type produces.
func algFits(alg string, key crypto.PublicKey) bool {
	switch k := key.(type) {
	case ed25519.PublicKey:
		return alg == string(jose.EdDSA)
	case *ecdsa.PublicKey:
		return (k.Curve == elliptic.P256() && alg == string(jose.ES256)) || (k.Curve == elliptic.P384() && alg == string(jose.ES384))
	case *rsa.PublicKey:
		return k.N.BitLen() >= minRSABits && (alg == string(jose.RS256) || alg == string(jose.PS256))
	}
	return false
}

// checkClaims checks the registered claims every JWT must satisfy, at the verifier's
// clock: the audience, exp, nbf and iat within the skew, and the lifetime. requireIAT and
// requireJTI are false only for JWT-SVIDs, whose format makes them optional.
func (v *Verifier) checkClaims(c jwt.Claims, requireIAT, requireJTI bool) error {
	now := v.now()
	switch {
	case c.Expiry == nil:
		return deny("missing exp", nil)
	case requireIAT && c.IssuedAt == nil:
		return deny("missing iat", nil)
	case requireJTI && c.ID == "":
		return deny("missing jti", nil)
	case !c.Audience.Contains(v.audience):
		return deny("wrong audience", nil)
	}
	exp := c.Expiry.Time()
	if now.After(exp.Add(v.skew)) {
		return deny("expired", nil)
	}
	if c.NotBefore != nil && now.Before(c.NotBefore.Time().Add(-v.skew)) {
		return deny("not yet valid", nil)
	}
	if c.IssuedAt != nil {
		iat := c.IssuedAt.Time()
		if iat.After(now.Add(v.skew)) {
			return deny("issued in the future", nil)
		}
		if exp.Sub(iat) > v.maxLifetime {
			return deny("lifetime too long", nil)
		}
	} else if exp.Sub(now) > v.maxLifetime+v.skew {
		// Without iat, the time left is the most that can be bounded.
		return deny("lifetime too long", nil)
	}
	return nil
}

// replayKey is the ReplayGuard key of a JWT: its jti, scoped by who issued it (two
// issuers may well pick the same jti), or, for a JWT-SVID without one, the token's hash.
func replayKey(method, principal, jti, token string) string {
	if jti == "" {
		sum := sha256.Sum256([]byte(token))
		jti = "sha256:" + hex.EncodeToString(sum[:])
	}
	return method + "|" + principal + "|" + jti
}

func expiry(c jwt.Claims) time.Time { return c.Expiry.Time().UTC() }
