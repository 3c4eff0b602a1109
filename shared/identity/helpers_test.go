package identity_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/federation-gateway/gateway/infra/localtest"
	"github.com/federation-gateway/gateway/shared/directory"
	"github.com/federation-gateway/gateway/shared/dynamo"
	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/identity"
	"github.com/federation-gateway/gateway/shared/identity/identityhttp"
	"github.com/federation-gateway/gateway/shared/outbound"
	"github.com/federation-gateway/gateway/shared/outbound/outboundtest"
)

const audience = "federation-gateway"

// didHost is the public name of the TLS test server that serves did:web documents, on
// the test network didNet (no name of it is ever looked up outside the process);
// didDocs maps a path to the document served there.
const didHost = "did.example.com"

var (
	didNet   *outboundtest.Net
	didRoots *x509.CertPool
	didDocs  sync.Map
	seq      atomic.Int64
)

// TestMain starts the did:web server and gives it a public name and address on the test
// network, so the verifier reaches it through the outbound Identifiers policy, as in
// production.
func TestMain(m *testing.M) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		doc, ok := didDocs.Load(r.URL.Path)
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/did+json")
		_, _ = w.Write(doc.([]byte))
	}))
	didNet = outboundtest.NewNet()
	didNet.Name(didHost, "93.184.216.34")
	didNet.Serve("93.184.216.34:443", srv.Listener.Addr().String())
	didRoots = x509.NewCertPool()
	didRoots.AddCert(srv.Certificate())
	code := m.Run()
	srv.Close()
	os.Exit(code)
}

// didResolver resolves did:web identifiers as the functions do: the identityhttp adapter
// over a client of the Identifiers policy, on the test network.
func didResolver() identity.DIDResolver {
	return identityhttp.NewDIDResolver(outbound.NewClient(outbound.Options{
		Purpose: outbound.Identifiers, Network: didNet, RootCAs: didRoots, Timeout: 5 * time.Second,
	}))
}

// serveDID publishes doc for a fresh did:web under the test server and returns the DID.
func serveDID(t testing.TB, doc func(did string) map[string]any) string {
	t.Helper()
	name := fmt.Sprintf("agent%d", seq.Add(1))
	did := "did:web:" + didHost + ":agents:" + name
	setDID(t, "/agents/"+name+"/did.json", doc(did))
	return did
}

func setDID(t testing.TB, path string, doc map[string]any) {
	t.Helper()
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	didDocs.Store(path, raw)
}

// didDoc is a DID document with one verification method, listed for authentication.
func didDoc(did string, method map[string]any) map[string]any {
	method["controller"] = did
	return map[string]any{
		"@context":           []string{"https://www.w3.org/ns/did/v1"},
		"id":                 did,
		"verificationMethod": []any{method},
		"authentication":     []any{method["id"]},
	}
}

func jwkOf(t testing.TB, pub crypto.PublicKey) json.RawMessage {
	t.Helper()
	raw, err := json.Marshal(jose.JSONWebKey{Key: pub})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func didKey(pub ed25519.PublicKey) string {
	return "did:key:z" + directory.Base58Encode(append([]byte{0xed, 0x01}, pub...))
}

// claims are a token's claims, valid for the gateway now.
func claims(iss, sub string) jwt.Claims {
	now := time.Now()
	return jwt.Claims{
		Issuer: iss, Subject: sub, Audience: jwt.Audience{audience},
		Expiry: jwt.NewNumericDate(now.Add(5 * time.Minute)), IssuedAt: jwt.NewNumericDate(now),
		ID: fmt.Sprintf("jti-%d-%d", time.Now().UnixNano(), seq.Add(1)),
	}
}

// sign signs c as a JWT with key, with the kid and any extra header fields.
func sign(t testing.TB, alg jose.SignatureAlgorithm, key crypto.Signer, kid string, c any, extra map[jose.HeaderKey]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	for k, v := range extra {
		opts = opts.WithHeader(k, v)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// unsigned is an alg "none" token.
func unsigned(t testing.TB, kid string, c any) string {
	t.Helper()
	h, _ := json.Marshal(map[string]string{"alg": "none", "typ": "JWT", "kid": kid})
	p, _ := json.Marshal(c)
	return b64(h) + "." + b64(p) + "."
}

// hmacWith is the algorithm-confusion attack: HS256 keyed with the public key's bytes,
// which a verifier that trusts the header's alg would accept.
func hmacWith(t testing.TB, pub crypto.PublicKey, kid string, c any) string {
	t.Helper()
	var keyBytes []byte
	if k, ok := pub.(ed25519.PublicKey); ok {
		keyBytes = k
	} else {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		keyBytes = der
	}
	h, _ := json.Marshal(map[string]string{"alg": "HS256", "typ": "JWT", "kid": kid})
	p, _ := json.Marshal(c)
	input := b64(h) + "." + b64(p)
	mac := hmac.New(sha256.New, keyBytes)
	mac.Write([]byte(input))
	return input + "." + b64(mac.Sum(nil))
}

// tamper replaces a signed token's payload with c, keeping its header and signature.
func tamper(t testing.TB, token string, c any) string {
	t.Helper()
	parts := strings.Split(token, ".")
	p, _ := json.Marshal(c)
	return parts[0] + "." + b64(p) + "." + parts[2]
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// authority is a SPIFFE trust domain's signing material: a JWT key and an X.509 CA.
type authority struct {
	td     spiffeid.TrustDomain
	jwtKey *ecdsa.PrivateKey
	kid    string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
}

func newAuthority(t testing.TB, name string) *authority {
	t.Helper()
	a := &authority{td: spiffeid.RequireTrustDomainFromString(name), jwtKey: ecKey(t), kid: name + "-jwt-1", caKey: ecKey(t)}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		URIs: []*url.URL{{Scheme: "spiffe", Host: name}},
	}
	a.ca = createCert(t, tmpl, tmpl, &a.caKey.PublicKey, a.caKey)
	return a
}

// bundle is the trust domain's SPIFFE bundle document.
func (a *authority) bundle(t testing.TB, sequence uint64) []byte {
	t.Helper()
	b := spiffebundle.New(a.td)
	if err := b.AddJWTAuthority(a.kid, &a.jwtKey.PublicKey); err != nil {
		t.Fatal(err)
	}
	b.AddX509Authority(a.ca)
	b.SetSequenceNumber(sequence)
	b.SetRefreshHint(5 * time.Minute)
	raw, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// svid issues an X.509-SVID for path, valid from notBefore to notAfter, and returns it
// with its key.
func (a *authority) svid(t testing.TB, path string, notBefore, notAfter time.Time) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key := ecKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(seq.Add(1) + 1), Subject: pkix.Name{CommonName: path},
		NotBefore: notBefore, NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, BasicConstraintsValid: true,
		URIs: []*url.URL{{Scheme: "spiffe", Host: a.td.Name(), Path: path}},
	}
	return createCert(t, tmpl, a.ca, &key.PublicKey, a.caKey), key
}

func createCert(t testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func pemOf(certs ...*x509.Certificate) string {
	var b strings.Builder
	for _, c := range certs {
		b.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	}
	return b.String()
}

func ecKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func edKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// world is a verifier of the trust domain registry-a.example (whose authority is a) over
// the local table; other.example (b) is not configured.
type world struct {
	v    *identity.Verifier
	a, b *authority
}

func newWorld(t testing.TB, opts identity.Options) *world {
	t.Helper()
	w := &world{a: newAuthority(t, "registry-a.example"), b: newAuthority(t, "other.example")}
	bundles, err := identity.InlineBundles([]federation.TrustDomain{{Name: "registry-a.example", Bundle: w.a.bundle(t, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	opts.Audience = audience
	opts.Bundles = bundles
	opts.Replay = dynamo.NewStore(localtest.DynamoDB(t), localtest.Table(t)).ReplayGuard()
	opts.DIDs = didResolver()
	w.v, err = identity.NewVerifier(opts)
	if err != nil {
		t.Fatal(err)
	}
	return w
}
