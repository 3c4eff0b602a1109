package registry

import (
	"encoding/json"
	"reflect"
	"testing"
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
