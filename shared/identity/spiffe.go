package identity

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"strings"

	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/federation-gateway/gateway/shared/federation"
)

// maxChain bounds the certificates of an X.509-SVID chain: a leaf and a few
// intermediates, never more.
const maxChain = 8

// bundle returns the configured trust domain's bundle, or the reason there is none.
func (v *Verifier) bundle(ctx context.Context, td spiffeid.TrustDomain) (*spiffebundle.Bundle, error) {
	if v.bundles == nil {
		return nil, deny("unknown trust domain", nil)
	}
	b, err := v.bundles.Bundle(ctx, td)
	switch federation.ErrorCode(err) {
	case "":
		return b, nil
	case federation.ENOTFOUND:
		return nil, deny("unknown trust domain", err)
	default:
		return nil, err
	}
}

// verifyJWTSVID checks the token step by step to name the reason it fails, then passes it
// through go-spiffe's jwtsvid.ParseAndValidate, the SPIFFE-conformant check, with the
// gateway as the audience.
func (v *Verifier) verifyJWTSVID(ctx context.Context, p *parsedJWT) (federation.Identity, error) {
	id, err := spiffeid.FromString(p.claims.Subject)
	if err != nil {
		return federation.Identity{}, deny("invalid SPIFFE ID", err)
	}
	b, err := v.bundle(ctx, id.TrustDomain())
	if err != nil {
		return federation.Identity{}, err
	}
	if p.header.Kid == "" {
		return federation.Identity{}, deny("unknown key", nil)
	}
	key, ok := b.FindJWTAuthority(p.header.Kid)
	if !ok {
		return federation.Identity{}, deny("unknown key", nil)
	}
	// EdDSA is on the gateway's allow-list but not in the JWT-SVID specification's, which
	// go-spiffe enforces.
	if p.header.Alg == "EdDSA" {
		return federation.Identity{}, deny("algorithm not allowed", nil)
	}
	if err := p.checkSignature(key); err != nil {
		return federation.Identity{}, err
	}
	if err := v.checkClaims(p.claims, false, false); err != nil {
		return federation.Identity{}, err
	}
	svid, err := jwtsvid.ParseAndValidate(p.raw, jwtbundle.NewSet(b.JWTBundle()), []string{v.audience})
	if err != nil {
		return federation.Identity{}, deny("invalid JWT-SVID", err)
	}
	if err := v.claim(ctx, replayKey(MethodJWTSVID, svid.ID.String(), p.claims.ID, p.raw), svid.Expiry); err != nil {
		return federation.Identity{}, err
	}
	return federation.Identity{Method: MethodJWTSVID, Subject: svid.ID.String(), TrustDomain: svid.ID.TrustDomain().Name(), ExpiresAt: svid.Expiry.UTC()}, nil
}

// verifyX509 verifies an X.509-SVID, presented in one of two forms:
//
//   - the chain alone (PEM, or base64 DER certificates separated by commas): proves that
//     the certificate is a valid SVID of a configured trust domain, but not that whoever
//     presents it holds its key, since certificates are public (see Caveat);
//   - a JWT signed with the SVID's key, carrying the chain in its x5c header (base64 DER,
//     leaf first): proves possession, and is held to every rule of a JWT (audience,
//     exp, iat, jti once).
func (v *Verifier) verifyX509(ctx context.Context, token string) (federation.Identity, error) {
	if isJWS(token) {
		return v.verifyX509JWT(ctx, token)
	}
	certs, err := parseChain(token)
	if err != nil {
		return federation.Identity{}, err
	}
	id, err := v.verifyChain(ctx, certs)
	if err != nil {
		return federation.Identity{}, err
	}
	return federation.Identity{Method: MethodX509SVID, Subject: id.String(), TrustDomain: id.TrustDomain().Name(), ExpiresAt: certs[0].NotAfter.UTC()}, nil
}

func (v *Verifier) verifyX509JWT(ctx context.Context, token string) (federation.Identity, error) {
	p, err := parseJWT(token)
	if err != nil {
		return federation.Identity{}, err
	}
	if len(p.header.X5c) == 0 {
		return federation.Identity{}, deny("missing x5c", nil)
	}
	certs, err := parseDERList(p.header.X5c, base64.StdEncoding)
	if err != nil {
		return federation.Identity{}, err
	}
	id, err := v.verifyChain(ctx, certs)
	if err != nil {
		return federation.Identity{}, err
	}
	if err := p.checkSignature(certs[0].PublicKey); err != nil {
		return federation.Identity{}, err
	}
	if p.claims.Subject != "" && p.claims.Subject != id.String() {
		return federation.Identity{}, deny("subject does not match the certificate", nil)
	}
	if err := v.checkClaims(p.claims, true, true); err != nil {
		return federation.Identity{}, err
	}
	exp := expiry(p.claims)
	if certs[0].NotAfter.Before(exp) {
		exp = certs[0].NotAfter.UTC()
	}
	if err := v.claim(ctx, replayKey(MethodX509SVID, id.String(), p.claims.ID, p.raw), exp); err != nil {
		return federation.Identity{}, err
	}
	return federation.Identity{Method: MethodX509SVID, Subject: id.String(), TrustDomain: id.TrustDomain().Name(), ExpiresAt: exp}, nil
}

// verifyChain verifies certs (leaf first) as an X.509-SVID of a configured trust domain,
// at the verifier's clock, with go-spiffe's x509svid.Verify.
func (v *Verifier) verifyChain(ctx context.Context, certs []*x509.Certificate) (spiffeid.ID, error) {
	leaf := certs[0]
	id, err := x509svid.IDFromCert(leaf)
	if err != nil {
		return spiffeid.ID{}, deny("not an X.509-SVID", err)
	}
	b, err := v.bundle(ctx, id.TrustDomain())
	if err != nil {
		return spiffeid.ID{}, err
	}
	now := v.now()
	switch {
	case now.After(leaf.NotAfter):
		return spiffeid.ID{}, deny("expired", nil)
	case now.Before(leaf.NotBefore):
		return spiffeid.ID{}, deny("not yet valid", nil)
	}
	if _, _, err := x509svid.Verify(certs, x509bundle.NewSet(b.X509Bundle()), x509svid.WithTime(now)); err != nil {
		return spiffeid.ID{}, deny("untrusted certificate chain", err)
	}
	return id, nil
}

// Caveat returns what a verified identity does not prove, or "": for an X.509-SVID chain
// presented without a signature, that the presenter holds the certificate's key.
func Caveat(c federation.Credential, id federation.Identity) string {
	if id.Method == MethodX509SVID && !isJWS(strings.TrimSpace(c.Token)) {
		return "the certificate chain is valid, but it was presented without proof of possession of its key"
	}
	return ""
}

// isJWS reports whether token has the shape of a compact JWS rather than of a chain: base64
// and PEM have no dots.
func isJWS(token string) bool {
	return strings.Count(token, ".") == 2 && !strings.Contains(token, "-----")
}

// parseChain parses PEM certificates, or base64 DER certificates separated by commas.
func parseChain(s string) ([]*x509.Certificate, error) {
	if !strings.Contains(s, "-----BEGIN") {
		return parseDERList(strings.Split(s, ","), base64.StdEncoding)
	}
	var certs []*x509.Certificate
	rest := []byte(s)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, deny("malformed certificate chain", nil)
		}
		if len(certs) == maxChain {
			return nil, deny("certificate chain too long", nil)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, deny("malformed certificate chain", err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 || strings.TrimSpace(string(rest)) != "" {
		return nil, deny("malformed certificate chain", nil)
	}
	return certs, nil
}

func parseDERList(list []string, enc *base64.Encoding) ([]*x509.Certificate, error) {
	if len(list) > maxChain {
		return nil, deny("certificate chain too long", nil)
	}
	certs := make([]*x509.Certificate, 0, len(list))
	for _, s := range list {
		der, err := enc.DecodeString(strings.TrimSpace(s))
		if err != nil {
			return nil, deny("malformed certificate chain", err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, deny("malformed certificate chain", err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, deny("malformed certificate chain", nil)
	}
	return certs, nil
}
