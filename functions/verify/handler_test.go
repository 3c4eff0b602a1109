package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/federation-gateway/gateway/infra/localtest"
	"github.com/federation-gateway/gateway/shared/apigw"
	"github.com/federation-gateway/gateway/shared/apigw/openapitest"
	"github.com/federation-gateway/gateway/shared/directory"
	"github.com/federation-gateway/gateway/shared/dynamo"
	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/identity"
	"github.com/federation-gateway/gateway/shared/identity/identityhttp"
	"github.com/federation-gateway/gateway/shared/logs"
	"github.com/federation-gateway/gateway/shared/metrics"
)

// sampleDID signed the token of events/verify.json (Ed25519 key from the SHA-256 of
// "federation-gateway sample agent"), issued at the event's time, valid five minutes.
const sampleDID = "did:key:z6Mkt2ytjoR5FPeY4Ye9zpYY4bgg9X1bq9nRVXDYPuaDQE3X"

var sampleTime = time.Unix(1795636261, 0)

func loadEvent(t testing.TB, name string) events.APIGatewayV2HTTPRequest {
	t.Helper()
	return localtest.HTTPEvent(t, name)
}

// token is a did:key JWT of a fresh key, issued at iat.
func token(t *testing.T, iat time.Time) (did, tok string) {
	t.Helper()
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	did = "did:key:z" + directory.Base58Encode(append([]byte{0xed, 0x01}, key.Public().(ed25519.PublicKey)...))
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(did))
	tok, err = jwt.Signed(s).Claims(jwt.Claims{Issuer: did, Audience: jwt.Audience{"federation-gateway"}, IssuedAt: jwt.NewNumericDate(iat),
		Expiry: jwt.NewNumericDate(iat.Add(5 * time.Minute)), ID: string(sum[:8])}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return did, tok
}

type verifyAnswer struct {
	Verified    bool              `json:"verified"`
	Method      string            `json:"method"`
	Subject     string            `json:"subject"`
	TrustDomain string            `json:"trust_domain"`
	ExpiresAt   *time.Time        `json:"expires_at"`
	Agent       *federation.Agent `json:"agent"`
	Reason      string            `json:"reason"`
}

func TestHandler(t *testing.T) {
	ctx := context.Background()
	store := dynamo.NewStore(localtest.DynamoDB(t), localtest.Table(t))
	agent := federation.Agent{DID: sampleDID, Name: "Sample", Registry: "alpha", Endpoint: "https://agent.example", Status: federation.StatusActive,
		ServiceType: "text", Signature: federation.SignatureNone, LastSeen: sampleTime}
	if _, err := store.PutAgent(ctx, agent, "", nil); err != nil {
		t.Fatal(err)
	}
	broken := dynamo.NewStore(localtest.DynamoDB(t), "verify-test-no-such-table")
	// The verifier, and so the replay guard, run at the time of the sample event.
	clock := func() time.Time { return sampleTime.Add(30 * time.Second) }
	newVerifier := func(replay dynamo.ReplayGuard) *identity.Verifier {
		replay.Now = clock
		v, err := identity.NewVerifier(identity.Options{Audience: "federation-gateway", Replay: replay, Clock: clock})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	v := newVerifier(store.ReplayGuard())
	log := logs.New(&bytes.Buffer{}, "debug")

	freshDID, fresh := token(t, sampleTime)
	_, expired := token(t, sampleTime.Add(-time.Hour))
	_, viaBrokenDirectory := token(t, sampleTime)
	_, viaBrokenReplay := token(t, sampleTime)
	withBody := func(body string) func(*events.APIGatewayV2HTTPRequest) {
		return func(ev *events.APIGatewayV2HTTPRequest) { ev.Body = body }
	}
	credential := func(typ, tok string) string {
		raw, _ := json.Marshal(map[string]any{"credential": map[string]string{"type": typ, "token": tok}})
		return string(raw)
	}

	tests := []struct {
		name   string
		event  string
		edit   func(*events.APIGatewayV2HTTPRequest)
		v      *identity.Verifier
		dir    Directory
		status int
		check  func(t *testing.T, a verifyAnswer, body string)
	}{
		{"verify.json", "verify.json", nil, v, store, 200, func(t *testing.T, a verifyAnswer, body string) {
			if !a.Verified || a.Method != "did:key" || a.Subject != sampleDID || a.TrustDomain != "did:key" || a.Reason != "" ||
				a.ExpiresAt == nil || !a.ExpiresAt.Equal(sampleTime.Add(5*time.Minute)) {
				t.Errorf("answer = %s", body)
			}
			if a.Agent == nil || a.Agent.DID != sampleDID || a.Agent.Registry != "alpha" {
				t.Errorf("the directory's agent is missing: %s", body)
			}
		}},
		{"verify.json again", "verify.json", nil, v, store, 200, func(t *testing.T, a verifyAnswer, body string) {
			if a.Verified || a.Reason != "replayed jti" || !strings.Contains(body, `"agent":null`) || !strings.Contains(body, `"expires_at":null`) {
				t.Errorf("answer = %s", body)
			}
		}},
		{"verify-invalid.json", "verify-invalid.json", nil, v, store, 400, func(t *testing.T, _ verifyAnswer, body string) {
			if !strings.Contains(body, "credential.token is required") {
				t.Errorf("problem = %s", body)
			}
		}},
		{"bearer token, agent not listed", "verify.json", func(ev *events.APIGatewayV2HTTPRequest) {
			ev.Body = ""
			ev.Headers["authorization"] = "Bearer " + fresh
		}, v, store, 200, func(t *testing.T, a verifyAnswer, body string) {
			if !a.Verified || a.Subject != freshDID || a.Agent != nil {
				t.Errorf("answer = %s", body)
			}
		}},
		{"expired", "verify.json", withBody(credential("jwt", expired)), v, store, 200, func(t *testing.T, a verifyAnswer, body string) {
			if a.Verified || a.Reason != "expired" || a.Subject != "" {
				t.Errorf("answer = %s", body)
			}
		}},
		{"directory down", "verify.json", withBody(credential("did:key", viaBrokenDirectory)), v, broken, 200, func(t *testing.T, a verifyAnswer, body string) {
			if !a.Verified || a.Agent != nil {
				t.Errorf("a spent credential must still be answered: %s", body)
			}
		}},
		{"replay guard down", "verify.json", withBody(credential("jwt", viaBrokenReplay)), newVerifier(broken.ReplayGuard()), store, 500, nil},
		{"not JSON", "verify.json", withBody("credential=abc"), v, store, 400, nil},
		{"unknown field", "verify.json", withBody(`{"credential":{"token":"a.b.c"},"extra":1}`), v, store, 400, nil},
		{"nothing", "verify.json", withBody(""), v, store, 400, func(t *testing.T, _ verifyAnswer, body string) {
			if !strings.Contains(body, "Authorization: Bearer") {
				t.Errorf("problem = %s", body)
			}
		}},
		{"not a bearer", "verify.json", func(ev *events.APIGatewayV2HTTPRequest) {
			ev.Body = "{}"
			ev.Headers["authorization"] = "Basic dXNlcjpwYXNz"
		}, v, store, 400, nil},
		{"unknown type", "verify.json", withBody(credential("saml", "x")), v, store, 400, nil},
		{"too large", "verify.json", withBody(credential("jwt", strings.Repeat("a", 70<<10))), v, store, 413, nil},
		{"garbage token", "verify.json", withBody(credential("jwt", "not-a-token")), v, store, 200, func(t *testing.T, a verifyAnswer, body string) {
			if a.Verified || a.Reason != "malformed token" {
				t.Errorf("answer = %s", body)
			}
		}},
		{"wrong method", "verify.json", func(ev *events.APIGatewayV2HTTPRequest) { ev.RequestContext.HTTP.Method = "GET" }, v, store, 405, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := loadEvent(t, tt.event)
			if tt.edit != nil {
				tt.edit(&ev)
				delete(ev.Headers, "content-length")
			}
			var emitted bytes.Buffer
			m := metrics.New(&emitted, "test", "verify")
			resp, err := openapitest.New(t).Lambda(t, apigw.Lambda(Handler(tt.v, tt.dir, log, m), log))(ctx, ev)
			if err != nil || resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s %v", resp.StatusCode, tt.status, resp.Body, err)
			}
			if tt.status >= 400 {
				if resp.Headers["Content-Type"] != apigw.ProblemContentType {
					t.Errorf("Content-Type %q: %s", resp.Headers["Content-Type"], resp.Body)
				}
				if tt.status == 500 && strings.Contains(resp.Body, "no-such-table") {
					t.Errorf("an internal detail reached the caller: %s", resp.Body)
				}
			}
			checkVerifyMetric(t, resp.StatusCode, resp.Body, emitted.String())
			if tt.check != nil {
				var a verifyAnswer
				if tt.status == 200 {
					if err := json.Unmarshal([]byte(resp.Body), &a); err != nil {
						t.Fatalf("%s: %v", resp.Body, err)
					}
				}
				tt.check(t, a, resp.Body)
			}
		})
	}
}

// FuzzVerifyBody: no body crashes the handler or gets a 5xx; each is verified or refused.
func FuzzVerifyBody(f *testing.F) {
	for _, seed := range []string{
		`{"credential":{"token":"a.b.c"}}`, `{"credential":{"type":"x509-svid","token":"-----BEGIN CERTIFICATE-----"}}`,
		`{"credential":{"type":"nope","token":"x"}}`, `{}`, `[]`, `{"credential":null}`, `not json`,
		`{"credential":{"token":7}}`, `{"credential":{"token":"a","tokn":"b"}}`, `{"credential":"a.b.c"}`, `{"credential":{}}{}`,
	} {
		f.Add(seed)
	}
	store := dynamo.NewStore(localtest.DynamoDB(f), localtest.Table(f))
	v, err := identity.NewVerifier(identity.Options{Audience: "federation-gateway", Replay: store.ReplayGuard()})
	if err != nil {
		f.Fatal(err)
	}
	log := logs.New(&bytes.Buffer{}, "error")
	raw := apigw.Lambda(Handler(v, store, log, nil), log)
	f.Fuzz(func(t *testing.T, body string) {
		h := openapitest.New(t).Lambda(t, raw)
		ev := loadEvent(t, "verify.json")
		ev.Body = body
		resp, err := h(context.Background(), ev)
		if err != nil || resp.StatusCode >= 500 {
			t.Fatalf("%q: %d %s %v", body, resp.StatusCode, resp.Body, err)
		}
		for _, w := range []string{"Go struct field", "Go value", "strconv.", "json:", "cannot unmarshal", "federation.Credential", "main.request"} {
			if resp.StatusCode >= 400 && strings.Contains(resp.Body, w) {
				t.Fatalf("%q: the answer speaks Go (%q): %s", body, w, resp.Body)
			}
		}
	})
}

// The verifier as main wires it, with allow_private_networks on (the local development
// setting): a did:web is the caller's to name, so its document is never fetched from
// loopback, the local AWS endpoint included. The refusal comes before any connection.
func TestDIDWebStaysPublicWithPrivateNetworksAllowed(t *testing.T) {
	var conns atomic.Int64
	count := func(srv *httptest.Server) *httptest.Server {
		srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		}
		return srv
	}
	docs := count(httptest.NewUnstartedServer(http.NotFoundHandler()))
	docs.StartTLS()
	defer docs.Close()
	aws := count(httptest.NewUnstartedServer(http.NotFoundHandler()))
	aws.Start()
	defer aws.Close()
	awsAddr := strings.TrimPrefix(aws.URL, "http://")

	store := dynamo.NewStore(localtest.DynamoDB(t), localtest.Table(t))
	// The function's verifier, which takes no allow_private_networks at all: identifiers
	// callers supply never reach a private address, in any mode.
	v, err := identityhttp.NewGatewayVerifier("federation-gateway", nil, store, 0, store.ReplayGuard(), []string{awsAddr})
	if err != nil {
		t.Fatal(err)
	}
	log := logs.New(&bytes.Buffer{}, "error")
	h := openapitest.New(t).Lambda(t, apigw.Lambda(Handler(v, store, log, nil), log))
	_, docsPort, _ := net.SplitHostPort(strings.TrimPrefix(docs.URL, "https://"))
	_, awsPort, _ := net.SplitHostPort(awsAddr)
	for _, did := range []string{"did:web:127.0.0.1%3A" + docsPort, "did:web:localhost%3A" + docsPort, "did:web:127.0.0.1%3A" + awsPort, "did:web:localhost%3A" + awsPort} {
		t.Run(did, func(t *testing.T) {
			key := ed25519.NewKeyFromSeed(make([]byte, 32))
			s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: jose.JSONWebKey{Key: key, KeyID: did + "#k"}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			tok, err := jwt.Signed(s).Claims(jwt.Claims{Issuer: did, Audience: jwt.Audience{"federation-gateway"}, IssuedAt: jwt.NewNumericDate(now),
				Expiry: jwt.NewNumericDate(now.Add(time.Minute)), ID: did}).Serialize()
			if err != nil {
				t.Fatal(err)
			}
			ev := loadEvent(t, "verify.json")
			ev.Body = `{"credential":{"token":"` + tok + `"}}`
			delete(ev.Headers, "content-length")
			resp, err := h(context.Background(), ev)
			if err != nil || resp.StatusCode != 200 || !strings.Contains(resp.Body, `"reason":"DID document unavailable"`) {
				t.Fatalf("%d %s %v", resp.StatusCode, resp.Body, err)
			}
			if n := conns.Load(); n != 0 {
				t.Errorf("a loopback server accepted %d connections", n)
			}
		})
	}
}

// checkVerifyMetric checks that a verification's answer was counted once, by method,
// outcome and reason, and that a request that verified nothing was not.
func checkVerifyMetric(t *testing.T, status int, body, emitted string) {
	t.Helper()
	var lines []metrics.Line
	for _, raw := range strings.Split(emitted, "\n") {
		if l, ok := metrics.Parse([]byte(raw)); ok {
			lines = append(lines, l)
		}
	}
	if status != 200 {
		if len(lines) != 0 {
			t.Errorf("a %d counted as a verification: %s", status, emitted)
		}
		return
	}
	var a verifyAnswer
	_ = json.Unmarshal([]byte(body), &a)
	if len(lines) != 1 || lines[0].Values[metrics.Verifications] != 1 {
		t.Fatalf("want one Verifications line: %s", emitted)
	}
	d := lines[0].Dimensions
	switch {
	case a.Verified && (d[metrics.DimOutcome] != "verified" || d[metrics.DimMethod] != a.Method || d[metrics.DimReason] != ""):
		t.Errorf("verified by %s, counted %v", a.Method, d)
	case !a.Verified && (d[metrics.DimOutcome] != "refused" || d[metrics.DimReason] != a.Reason || d[metrics.DimMethod] == ""):
		t.Errorf("refused for %q, counted %v", a.Reason, d)
	}
}
