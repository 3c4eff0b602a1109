package registry

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The fuzz targets feed the response decoders arbitrary bytes: a registry is outside the
// gateway's control, and nothing it sends may crash a sync. `go test` replays the seeds.

func FuzzDecodeV1Page(f *testing.F) {
	for _, seed := range []string{
		`{"items": [{"id": "a", "name": "A", "description": "d"}], "pagination": {"total_items": 1, "limit": 250, "offset": 0, "total_pages": 1, "current_page": 1}}`,
		`{"items": []}`,
		`{"items": [{"id": 1}, "x", null, {"id": "b", "name": null}], "pagination": null}`,
		`{"items": [], "pagination": {"total_items": 9223372036854775807, "total_pages": -1}}`,
		`{"items": null}`,
		`{"items": [`,
		`[]`,
		`{"items": [{"id": "\u0000"}]} trailing`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		page, err := decodeV1Page(body)
		if err != nil {
			return
		}
		// What was decoded encodes and decodes to itself: no item is half-read.
		again, err := json.Marshal(map[string]any{"items": page.Items})
		if err != nil {
			t.Fatalf("re-encoding: %v", err)
		}
		round, err := decodeV1Page(again)
		if err != nil || !reflect.DeepEqual(round.Items, page.Items) {
			t.Fatalf("round trip: %v, %+v != %+v", err, round.Items, page.Items)
		}
		for _, it := range page.Items {
			_ = validID(it.ID)
			_ = hashFields(it.ID, it.Name, it.Description)
		}
	})
}

func FuzzDecodeV2Page(f *testing.F) {
	for _, seed := range []string{
		`[{"id": "a", "card_data": {"name": "A"}, "is_active": true, "updated_at": "2026-01-02T03:04:05.123456", "source_registry": "r"}]`,
		`{"items": [{"id": "a", "card_data": [], "is_active": false, "updated_at": "2026-01-02T03:04:05Z"}]}`,
		`[{"id": "a", "card_data": null, "updated_at": "yesterday"}, 5, "x"]`,
		`[]`,
		`null`,
		`{"items": null}`,
		`[{"id": "a", "updated_at": "2026-01-02 03:04:05+02:00"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		cards, err := decodeV2Page(body)
		if err != nil {
			return
		}
		for _, c := range cards {
			if len(c.CardData) > 0 && !json.Valid(c.CardData) {
				t.Fatalf("card_data %q is not valid JSON", c.CardData)
			}
			data := compact(c.CardData)
			if isObject(c.CardData) != isObject(data) {
				t.Fatalf("compact changed the kind of %q", c.CardData)
			}
			if ts, err := parseTime(c.UpdatedAt); err == nil && ts.Location().String() != "UTC" {
				t.Fatalf("parseTime(%q) is not UTC", c.UpdatedAt)
			}
			_ = c.active()
		}
	})
}

func FuzzDecodeStatic(f *testing.F) {
	for _, seed := range []string{
		`[{"humanReadableId": "acme/one", "name": "One"}, {"id": "two"}, {"did": "did:web:x"}, {"name": "n"}]`,
		`{"agents": [{"id": "a"}]}`,
		`{"cards": [{"id": "a"}, 7, "s", null, {"id": 5}]}`,
		`{"agents": [], "cards": []}`,
		`{"other": []}`,
		`null`,
		`"a string"`,
		` [ ] `,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		entries, err := decodeStatic(body)
		if err != nil {
			return
		}
		for _, raw := range entries {
			if !json.Valid(raw) {
				t.Fatalf("entry %q is not valid JSON", raw)
			}
			if !isObject(raw) {
				continue
			}
			ids, err := decodeCardIDs(raw)
			if err != nil {
				continue
			}
			id, err := ids.staticSourceID()
			if err == nil && id == "" {
				t.Fatalf("empty source ID for %q", raw)
			}
			if ids.names("") {
				t.Fatalf("%q names the empty DID", raw)
			}
		}
	})
}

func FuzzDecodeCardIDs(f *testing.F) {
	for _, seed := range []string{
		`{"humanReadableId": "acme/one", "id": "x", "did": "did:key:z6Mk", "name": "One"}`,
		`{"humanReadableId": 7, "id": null, "did": ["x"], "name": {"a": 1}}`,
		`{"humanReadableId": "  ", "name": ""}`,
		`{}`,
	} {
		f.Add([]byte(seed), "did:agentvault:acme/one")
	}
	f.Fuzz(func(t *testing.T, body []byte, did string) {
		ids, err := decodeCardIDs(body)
		if err != nil {
			return
		}
		if id, err := ids.staticSourceID(); err == nil && strings.TrimSpace(id) == "" {
			t.Fatalf("blank source ID from %q", body)
		}
		if ids.names(did) && did != ids.DID && did != agentVaultDID+ids.HumanReadableID {
			t.Fatalf("%+v names %q", ids, did)
		}
	})
}

// FuzzParseClientCertificate feeds the parser of a registry's client certificate secret
// arbitrary text: whatever an operator pastes into the secret must not crash a function
// at start, and no error may show the secret.
func FuzzParseClientCertificate(f *testing.F) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		f.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		f.Fatal(err)
	}
	cert := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	ecKey := string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	for _, seed := range []string{
		cert + ecKey,
		ecKey + cert,
		cert,
		ecKey,
		cert[:len(cert)/2],
		"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n" + ecKey,
		"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n" + cert,
		"not a pem",
		"",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, secret string) {
		c, err := parseClientCertificate(secret)
		if err != nil {
			if len(secret) >= 16 && strings.Contains(err.Error(), secret) {
				t.Fatalf("the error shows the secret: %v", err)
			}
			return
		}
		if len(c.Certificate) == 0 || c.PrivateKey == nil {
			t.Fatalf("accepted %q without a certificate and a key", secret)
		}
	})
}
