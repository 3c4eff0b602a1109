package registry_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/federation-gateway/gateway/infra/demo"
	"github.com/federation-gateway/gateway/shared/directory"
	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/outbound"
	"github.com/federation-gateway/gateway/shared/registry"
)

// testCA issues client certificates, as a SPIFFE trust domain's CA issues X.509-SVIDs.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gateway test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key}
}

// issue returns a client certificate for the SPIFFE ID and its key, as the PEM a
// registry's client_certificate_secret holds: the certificate, the CA's, the key.
func (ca *testCA) issue(t *testing.T, spiffeID string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := url.Parse(spiffeID)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), URIs: []*url.URL{id},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})) +
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})) +
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
}

// A registry that requires mutual TLS refuses the gateway without its client
// certificate and accepts it with the one its client_certificate_secret holds; the
// outbound guard still decides which addresses may be dialled.
func TestMutualTLS(t *testing.T) {
	ca := newTestCA(t)
	reg := demo.NewRegistry("secure", true)
	reg.Put(demoCard("acme/one", "One"))
	var peers []string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, c := range r.TLS.PeerCertificates[:1] {
			for _, u := range c.URIs {
				peers = append(peers, u.String())
			}
		}
		reg.Handler().ServeHTTP(w, r)
	}))
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is the point
	srv.StartTLS()
	defer srv.Close()
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())

	const secretName = "federation-gateway/test/registries/secure/client-certificate"
	secrets := map[string]string{secretName: ca.issue(t, "spiffe://gateway.example/federation-gateway")}
	secret := func(_ context.Context, name string) (string, error) {
		if v, ok := secrets[name]; ok {
			return v, nil
		}
		return "", errors.New("no such secret")
	}
	cfg := federation.Registry{ID: "secure", URL: srv.URL, Kind: federation.KindAgentVaultFederation}
	opts := testOptions()
	opts.Retries = -1
	fetchWith := func(cfg federation.Registry, network outbound.Options) (directory.Listing, error) {
		sources, err := registry.NewClients(context.Background(), []federation.Registry{cfg}, network, opts, secret)
		if err != nil {
			t.Fatal(err)
		}
		return sources[cfg.ID].Fetch(context.Background(), directory.Request{})
	}
	network := outbound.Options{AllowPrivate: true, RootCAs: roots}

	_, err := fetchWith(cfg, network)
	wantCode(t, err, federation.EUNAVAILABLE, `"secure"`)
	t.Logf("without a client certificate: %s", federation.ErrorMessage(err))
	if msg := federation.ErrorMessage(err); !contains(msg, "TLS handshake", "closed before the answer", "connection reset") {
		t.Errorf("without a client certificate: %q", msg)
	}

	cfg.ClientCertificateSecret = secretName
	l, err := fetchWith(cfg, network)
	if err != nil || len(l.Cards) != 1 {
		t.Fatalf("with the client certificate: %+v, %v", l, err)
	}
	if len(peers) == 0 || peers[len(peers)-1] != "spiffe://gateway.example/federation-gateway" {
		t.Errorf("the registry saw client certificates %v", peers)
	}

	// The guard is not bypassed: without allow_private_networks the loopback registry
	// is refused before any handshake.
	network.AllowPrivate = false
	_, err = fetchWith(cfg, network)
	if !outbound.IsRefused(err) {
		t.Errorf("a loopback registry without allow_private_networks: %v, want refused", err)
	}
}

func contains(s string, any ...string) bool {
	return slices.ContainsFunc(any, func(sub string) bool { return strings.Contains(s, sub) })
}

func TestParseClientCertificate(t *testing.T) {
	ca := newTestCA(t)
	good := ca.issue(t, "spiffe://gateway.example/gw")
	other := ca.issue(t, "spiffe://gateway.example/other")
	block := func(s string, i int) string { // the i-th PEM block of s
		rest := []byte(s)
		var b *pem.Block
		for range i + 1 {
			b, rest = pem.Decode(rest)
		}
		return string(pem.EncodeToMemory(b))
	}
	tests := []struct {
		name, secret, wantErr string
	}{
		{"chain and key", good, ""},
		{"key first", block(good, 2) + block(good, 0), ""},
		{"no certificate", block(good, 2), "no CERTIFICATE"},
		{"no key", block(good, 0) + block(good, 1), "0 private keys"},
		{"two keys", good + block(other, 2), "2 private keys"},
		{"the key of another certificate", block(good, 0) + block(other, 2), "does not match"},
		{"another kind of block", good + "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", `"PUBLIC KEY"`},
		{"not PEM", "avreg_api_key", "not a PEM block"},
		{"empty", "", "no CERTIFICATE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cert, err := registry.ParseClientCertificate(tt.secret)
			switch {
			case tt.wantErr == "" && (err != nil || len(cert.Certificate) == 0):
				t.Fatalf("ParseClientCertificate: %v", err)
			case tt.wantErr != "" && (err == nil || !contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want it to say %q", err, tt.wantErr)
			case err != nil && contains(err.Error(), "MII", "BEGIN"):
				t.Errorf("the error shows the secret: %v", err)
			}
		})
	}
}
