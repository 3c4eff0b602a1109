package directory

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"strings"

	"github.com/go-jose/go-jose/v4"
	"github.com/gowebpki/jcs"

	"github.com/federation-gateway/gateway/shared/federation"
)

// signatureAlgs are the JWS algorithms accepted on agent cards; "none" and HMAC never are.
var signatureAlgs = []jose.SignatureAlgorithm{jose.EdDSA, jose.ES256, jose.ES384, jose.RS256, jose.PS256}

// verifyCardSignatures checks an A2A v1.0 card's JWS signatures: each is a detached JWS
// over the RFC 8785 canonical form of the card without its "signatures" member. A key it
// carries (the protected header's jwk) or names as a did:key (kid) is checked here; a key
// behind a URL (jku) is not fetched during a sync, so such a card is "unverified". The
// card is "valid" when one signature verifies, "invalid" when one fails and none verifies.
func verifyCardSignatures(data []byte) string {
	var doc map[string]json.RawMessage
	if json.Unmarshal(data, &doc) != nil {
		return federation.SignatureInvalid
	}
	var sigs []struct {
		Protected string `json:"protected"`
		Signature string `json:"signature"`
	}
	if json.Unmarshal(doc["signatures"], &sigs) != nil {
		return federation.SignatureInvalid
	}
	delete(doc, "signatures")
	body, err := json.Marshal(doc)
	if err != nil {
		return federation.SignatureInvalid
	}
	canonical, err := jcs.Transform(body)
	if err != nil {
		return federation.SignatureInvalid
	}
	payload := base64.RawURLEncoding.EncodeToString(canonical)

	status := federation.SignatureUnverified
	for _, s := range sigs {
		jws, err := jose.ParseSignedCompact(s.Protected+"."+payload+"."+s.Signature, signatureAlgs)
		if err != nil || len(jws.Signatures) != 1 {
			status = federation.SignatureInvalid
			continue
		}
		key := signatureKey(jws.Signatures[0].Protected)
		if key == nil {
			continue
		}
		if _, err := jws.Verify(key); err != nil {
			status = federation.SignatureInvalid
			continue
		}
		return federation.SignatureValid
	}
	return status
}

// signatureKey is the public key a protected header carries or names as a did:key, or nil.
func signatureKey(h jose.Header) any {
	if h.JSONWebKey != nil && h.JSONWebKey.Valid() && h.JSONWebKey.IsPublic() {
		return h.JSONWebKey.Key
	}
	if pub, ok := DIDKeyEd25519(h.KeyID); ok {
		return pub
	}
	return nil
}

// DIDKeyEd25519 returns the Ed25519 public key of a did:key identifier (multicodec 0xed01,
// base58btc "z..."), with or without a "#fragment".
func DIDKeyEd25519(did string) (ed25519.PublicKey, bool) {
	id, ok := strings.CutPrefix(did, "did:key:z")
	if !ok {
		return nil, false
	}
	for i := range id {
		if id[i] == '#' {
			id = id[:i]
			break
		}
	}
	raw, ok := base58Decode(id)
	if !ok || len(raw) != 2+ed25519.PublicKeySize || raw[0] != 0xed || raw[1] != 0x01 {
		return nil, false
	}
	return ed25519.PublicKey(raw[2:]), true
}

const base58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

// base58Decode decodes Bitcoin-alphabet base58.
func base58Decode(s string) ([]byte, bool) {
	if s == "" || len(s) > 128 {
		return nil, false
	}
	var index [256]int
	for i := range index {
		index[i] = -1
	}
	for i := range len(base58Alphabet) {
		index[base58Alphabet[i]] = i
	}
	out := []byte{}
	for i := range len(s) {
		carry := index[s[i]]
		if carry < 0 {
			return nil, false
		}
		for j := len(out) - 1; j >= 0; j-- {
			carry += int(out[j]) * 58
			out[j] = byte(carry)
			carry >>= 8
		}
		for carry > 0 {
			out = append([]byte{byte(carry)}, out...)
			carry >>= 8
		}
	}
	for i := 0; i < len(s) && s[i] == '1'; i++ {
		out = append([]byte{0}, out...)
	}
	return out, true
}

// Base58Encode encodes bytes in the Bitcoin base58 alphabet (for did:key identifiers).
func Base58Encode(b []byte) string {
	digits := []byte{0}
	for _, c := range b {
		carry := int(c)
		for j := range digits {
			carry += int(digits[j]) << 8
			digits[j] = byte(carry % 58)
			carry /= 58
		}
		for carry > 0 {
			digits = append(digits, byte(carry%58))
			carry /= 58
		}
	}
	out := []byte{}
	for i := 0; i < len(b) && b[i] == 0; i++ {
		out = append(out, '1')
	}
	for i := len(digits) - 1; i >= 0; i-- {
		if i == len(digits)-1 && digits[i] == 0 && len(digits) > 1 {
			continue
		}
		out = append(out, base58Alphabet[digits[i]])
	}
	return string(out)
}
