package directory_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/gowebpki/jcs"

	"github.com/federation-gateway/gateway/shared/directory"
	"github.com/federation-gateway/gateway/shared/federation"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

const agentVaultCard = `{
  "humanReadableId": "acme/weather-bot",
  "name": " Weather Bot ",
  "description": "Forecasts.",
  "url": "https://agents.acme.example/weather/a2a",
  "provider": {"name": "Acme"},
  "capabilities": {"a2aVersion": "1.0", "type": "Weather", "features": ["Forecast", "alerts"]},
  "authSchemes": [{"scheme": "none"}],
  "skills": [{"id": "Lookup", "name": "Look up", "description": "x"}, {"id": "", "name": "nameless"}],
  "tags": ["Weather", "climate", "weather"],
  "identities": ["spiffe://acme.example/weather", "not-an-id"]
}`

const a2aCard = `{
  "name": "Translator",
  "description": "Translates text.",
  "version": "2.1.0",
  "supportedInterfaces": [
    {"url": "https://t.example/grpc", "protocolBinding": "GRPC", "protocolVersion": "1.0"},
    {"url": "https://t.example:8443/a2a/v1", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}
  ],
  "capabilities": {"streaming": true},
  "skills": [{"id": "translate", "name": "Translate", "description": "d", "tags": ["language", "text"]}]
}`

func TestNormalize(t *testing.T) {
	a, err := directory.Normalize("alpha", directory.Card{SourceID: "card-1", Data: []byte(agentVaultCard), Active: true}, now)
	if err != nil {
		t.Fatal(err)
	}
	want := federation.Agent{
		DID: "did:agentvault:acme/weather-bot", Name: "Weather Bot", Description: "Forecasts.", Registry: "alpha", SourceID: "card-1",
		Endpoint: "https://agents.acme.example/weather/a2a", Protocol: "JSONRPC", Version: "1.0",
		Skills: []federation.Skill{{ID: "lookup", Name: "Look up"}}, Tags: []string{"climate", "weather"}, ServiceType: "weather",
		Capabilities: []string{"alerts", "forecast", "lookup"}, Identities: []string{"did:agentvault:acme/weather-bot", "spiffe://acme.example/weather"},
		Signature: federation.SignatureNone, Status: federation.StatusActive, LastSeen: now,
	}
	a.ContentHash, a.Skills[0].Tags = "", nil
	if got, _ := json.Marshal(a); string(got) != string(must(json.Marshal(want))) {
		t.Errorf("AgentVault card:\n got %s\nwant %s", got, must(json.Marshal(want)))
	}

	b, err := directory.Normalize("beta", directory.Card{SourceID: "https://t.example:8443/a2a/v1", Data: []byte(a2aCard), Active: true}, now)
	if err != nil {
		t.Fatal(err)
	}
	if b.DID != "did:web:t.example%3A8443:a2a:v1" || b.Endpoint != "https://t.example:8443/a2a/v1" || b.Protocol != "JSONRPC" {
		t.Errorf("A2A card: did %q endpoint %q protocol %q", b.DID, b.Endpoint, b.Protocol)
	}
	// No capabilities.type and no card tags: the service type comes from the first skill's tags.
	if b.ServiceType != "language" || !slices.Equal(b.Capabilities, []string{"translate"}) {
		t.Errorf("A2A card: service type %q, capabilities %v", b.ServiceType, b.Capabilities)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// The content hash changes with the card and only with it.
func TestContentHash(t *testing.T) {
	norm := func(card string, at time.Time) string {
		a, err := directory.Normalize("alpha", directory.Card{SourceID: "x", Data: []byte(card)}, at)
		if err != nil {
			t.Fatal(err)
		}
		return a.ContentHash
	}
	base := norm(agentVaultCard, now)
	if norm(agentVaultCard, now.Add(time.Hour)) != base {
		t.Error("the hash depends on when the card was seen")
	}
	reordered := strings.Replace(agentVaultCard, `["Weather", "climate", "weather"]`, `["climate", "Weather"]`, 1)
	if norm(reordered, now) != base {
		t.Error("the hash depends on the order of tags")
	}
	if norm(strings.Replace(agentVaultCard, "Forecasts.", "Forecasts!", 1), now) == base {
		t.Error("a changed description left the hash unchanged")
	}
}

func TestNormalizeRejects(t *testing.T) {
	tests := map[string]string{
		"not JSON":         `{"name": `,
		"an array":         `[]`,
		"no name":          `{"url": "https://a.example"}`,
		"no endpoint":      `{"name": "x"}`,
		"endpoint not URL": `{"name": "x", "url": "javascript:alert(1)"}`,
		"bad did":          `{"name": "x", "url": "https://a.example", "did": "did:web:a b"}`,
	}
	for name, card := range tests {
		t.Run(name, func(t *testing.T) {
			a, err := directory.Normalize("alpha", directory.Card{SourceID: "x", Data: []byte(card)}, now)
			if name == "bad did" {
				// An unusable declared DID falls back to the endpoint's did:web.
				if err != nil || a.DID != "did:web:a.example" {
					t.Errorf("got %q, %v", a.DID, err)
				}
				return
			}
			if err == nil {
				t.Errorf("accepted: %+v", a)
			}
		})
	}
}

// signCard signs an A2A card the A2A v1.0 way: a detached JWS over the RFC 8785 canonical
// card, its key named by a did:key in the protected header.
func signCard(t *testing.T, card string, priv ed25519.PrivateKey, kid string) string {
	t.Helper()
	canonical, err := jcs.Transform([]byte(card))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: priv}, (&jose.SignerOptions{}).WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(canonical)
	if err != nil {
		t.Fatal(err)
	}
	compact, err := jws.DetachedCompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(compact, ".")
	var doc map[string]any
	_ = json.Unmarshal([]byte(card), &doc)
	doc["signatures"] = []map[string]string{{"protected": parts[0], "signature": parts[2]}}
	return string(must(json.Marshal(doc)))
}

func didKey(pub ed25519.PublicKey) string {
	return "did:key:z" + directory.Base58Encode(append([]byte{0xed, 0x01}, pub...))
}

func TestCardSignatures(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	otherPub, _, _ := ed25519.GenerateKey(rand.Reader)
	if got, ok := directory.DIDKeyEd25519(didKey(pub) + "#key-1"); !ok || !got.Equal(pub) {
		t.Fatalf("did:key round trip failed: %v", ok)
	}
	signed := signCard(t, a2aCard, priv, didKey(pub))
	tests := []struct {
		name, card, want string
	}{
		{"unsigned", a2aCard, federation.SignatureNone},
		{"valid", signed, federation.SignatureValid},
		{"tampered", strings.Replace(signed, "Translates text.", "Steals text.", 1), federation.SignatureInvalid},
		{"other key", signCard(t, a2aCard, priv, didKey(otherPub)), federation.SignatureInvalid},
		{"key not resolvable", signCard(t, a2aCard, priv, "https://keys.example/jwks#1"), federation.SignatureUnverified},
		{"garbage signature", strings.Replace(a2aCard, `"name"`, `"signatures": [{"protected": "e30", "signature": "AAAA"}], "name"`, 1), federation.SignatureInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := directory.Normalize("beta", directory.Card{SourceID: "x", Data: []byte(tt.card)}, now)
			if err != nil {
				t.Fatal(err)
			}
			if a.Signature != tt.want {
				t.Errorf("signature = %q, want %q", a.Signature, tt.want)
			}
		})
	}
	// alg "none" is never accepted.
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"` + didKey(pub) + `"}`))
	card := strings.Replace(a2aCard, `"name"`, `"signatures": [{"protected": "`+none+`", "signature": ""}], "name"`, 1)
	if a, _ := directory.Normalize("beta", directory.Card{SourceID: "x", Data: []byte(card)}, now); a.Signature == federation.SignatureValid {
		t.Error("alg none verified")
	}
}

// FuzzNormalize: no card crashes normalization, and an accepted one has a valid DID, an
// http(s) endpoint and a hash.
func FuzzNormalize(f *testing.F) {
	f.Add([]byte(agentVaultCard))
	f.Add([]byte(a2aCard))
	f.Add([]byte(`{"name":"x","url":"http://[::1]:80/","did":"did:key:z6Mk"}`))
	f.Add([]byte(`{"name":"x","supportedInterfaces":[{"url":""}],"url":"https://a.example"}`))
	f.Add([]byte(`{"name":"x","url":"https://a.example","signatures":[{}]}`))
	f.Fuzz(func(t *testing.T, card []byte) {
		a, err := directory.Normalize("r", directory.Card{SourceID: "s", Data: card}, now)
		if err != nil {
			return
		}
		if !strings.HasPrefix(a.DID, "did:") || len(a.ContentHash) != 64 || a.Name == "" ||
			!(strings.HasPrefix(a.Endpoint, "http://") || strings.HasPrefix(a.Endpoint, "https://")) {
			t.Fatalf("accepted %+v from %q", a, card)
		}
	})
}
