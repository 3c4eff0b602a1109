package identityhttp_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/federation-gateway/gateway/infra/localtest"
	"github.com/federation-gateway/gateway/shared/dynamo"
	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/identity"
	"github.com/federation-gateway/gateway/shared/identity/identityhttp"
	"github.com/federation-gateway/gateway/shared/outbound"
	"github.com/federation-gateway/gateway/shared/outbound/outboundtest"
)

const audience = "federation-gateway"

// server is a test server that counts the connections it accepts: a refusal must come
// before any connection, not at the TLS handshake or the HTTP answer.
type server struct {
	*httptest.Server
	conns atomic.Int64
}

func startServer(t *testing.T, h http.Handler, tlsOn bool) *server {
	t.Helper()
	s := &server{Server: httptest.NewUnstartedServer(h)}
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	if tlsOn {
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	return s
}

func (s *server) hostPort() string { return s.Listener.Addr().String() }

func (s *server) port() string {
	_, p, _ := net.SplitHostPort(s.hostPort())
	return p
}

// A did:web names its host, and the verifier fetches from it before any signature is
// checked: so whatever the configuration allows for registries, a did:web never reaches
// a loopback, private or link-local address, nor the local AWS endpoint, directly or by
// redirect. Each refusal happens before any connection to the target.
func TestDIDWebNeverReachesPrivateAddresses(t *testing.T) {
	key := ed25519.NewKeyFromSeed(make([]byte, 32))
	// Any document it is asked for, valid for the DID asked: reaching it would verify.
	docs := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		did := "did:web:" + strings.ReplaceAll(r.Host, ":", "%3A") + strings.ReplaceAll(strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/.well-known"), "/did.json"), "/", ":")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"id": did, "authentication": []string{did + "#k"},
			"verificationMethod": []any{map[string]any{"id": did + "#k", "type": "JsonWebKey2020", "controller": did,
				"publicKeyJwk": jose.JSONWebKey{Key: key.Public()}}},
		})
	})
	target := startServer(t, docs, true) // a private service that would answer
	aws := startServer(t, docs, false)   // the local AWS endpoint
	redirects := map[string]string{
		"/loopback/did.json": "https://127.0.0.1:" + target.port() + "/x/did.json",
		"/aws/did.json":      aws.URL + "/x/did.json",
		"/aws-tls/did.json":  "https://127.0.0.1:" + aws.port() + "/x/did.json",
		"/private/did.json":  "https://private.example.com/x/did.json",
		"/metadata/did.json": "https://169.254.169.254/latest/meta-data/did.json",
	}
	redirector := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, redirects[r.URL.Path], http.StatusFound)
	}), true)

	n := outboundtest.NewNet()
	n.Name("redirect.example.com", "93.184.216.34")
	n.Serve("93.184.216.34:443", redirector.hostPort())
	n.Name("private.example.com", "10.0.0.7")
	n.Serve("10.0.0.7:443", target.hostPort())
	n.Name("loopback.example.com", "127.0.0.1")
	n.Name("aws.example.com", "127.0.0.1")
	roots := x509.NewCertPool()
	roots.AddCert(target.Certificate())

	// As the functions wire it, with allow_private_networks on.
	client := outbound.NewClient(outbound.Options{
		Purpose: outbound.Identifiers, AllowPrivate: true, Deny: []string{aws.hostPort()},
		Network: n, RootCAs: roots, Timeout: 5 * time.Second,
	})
	v, err := identity.NewVerifier(identity.Options{
		Audience: audience, DIDs: identityhttp.NewDIDResolver(client),
		Replay: dynamo.NewStore(localtest.DynamoDB(t), localtest.Table(t)).ReplayGuard(),
	})
	if err != nil {
		t.Fatal(err)
	}

	for _, did := range []string{
		"did:web:127.0.0.1%3A" + target.port(),
		"did:web:loopback.example.com%3A" + target.port(),
		"did:web:private.example.com",
		"did:web:127.0.0.1%3A" + aws.port(),
		"did:web:aws.example.com%3A" + aws.port(),
		"did:web:redirect.example.com:loopback",
		"did:web:redirect.example.com:aws",
		"did:web:redirect.example.com:aws-tls",
		"did:web:redirect.example.com:private",
		"did:web:redirect.example.com:metadata",
	} {
		t.Run(did, func(t *testing.T) {
			before := target.conns.Load() + aws.conns.Load()
			_, err := v.Verify(context.Background(), federation.Credential{Token: token(t, key, did)})
			if federation.ErrorCode(err) != federation.EUNAUTHORIZED || federation.ErrorMessage(err) != "DID document unavailable" || !outbound.IsRefused(err) {
				t.Fatalf("Verify: %v; want the guard's refusal as \"DID document unavailable\"", err)
			}
			if got := target.conns.Load() + aws.conns.Load() - before; got != 0 {
				t.Errorf("the refused address accepted %d connections", got)
			}
		})
	}
	// The same documents, on a public address, verify: the refusals above are the
	// policy's, not a broken fixture.
	t.Run("public", func(t *testing.T) {
		n.Name("agent.example.com", "93.184.216.35")
		n.Serve("93.184.216.35:443", target.hostPort())
		id, err := v.Verify(context.Background(), federation.Credential{Token: token(t, key, "did:web:agent.example.com")})
		if err != nil || id.Subject != "did:web:agent.example.com" {
			t.Fatalf("a public did:web: %+v, %v", id, err)
		}
	})
}

// token is a JWT of did signed with key (kid #k).
func token(t *testing.T, key ed25519.PrivateKey, did string) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: jose.JSONWebKey{Key: key, KeyID: did + "#k"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	jti := make([]byte, 8)
	_, _ = rand.Read(jti)
	now := time.Now()
	tok, err := jwt.Signed(signer).Claims(jwt.Claims{
		Issuer: did, Subject: did, Audience: jwt.Audience{audience}, ID: url.QueryEscape(string(jti)),
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute)),
	}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
