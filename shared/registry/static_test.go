package registry_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	"github.com/federation-gateway/gateway/shared/directory"
	"github.com/federation-gateway/gateway/shared/federation"
)

// fakeDocument serves one JSON document with an ETag.
type fakeDocument struct {
	mu       sync.Mutex
	body     string
	etag     string
	requests int
}

func (d *fakeDocument) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.requests++
	if d.etag != "" && r.Header.Get("If-None-Match") == d.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("ETag", d.etag)
	fmt.Fprint(w, d.body)
}

func startDocument(t *testing.T, d *fakeDocument) federation.Registry {
	t.Helper()
	srv := httptest.NewServer(d)
	t.Cleanup(srv.Close)
	return federation.Registry{ID: "static-one", URL: srv.URL + "/agents.json", Kind: federation.KindStatic}
}

const staticCards = `{"humanReadableId": "acme/one", "id": "x", "name": "One"},
	{"id": "two", "did": "did:web:two.example.com", "name": "Two"},
	{"did": "did:web:three.example.com", "name": "Three"},
	{"name": "Four"}`

func TestStaticShapes(t *testing.T) {
	for _, body := range []string{
		`[` + staticCards + `]`,
		`{"agents": [` + staticCards + `]}`,
		`{"cards": [` + staticCards + `], "version": 3}`,
	} {
		t.Run(body[:10], func(t *testing.T) {
			reg := startDocument(t, &fakeDocument{body: body, etag: `"d1"`})
			l := fetch(t, newClient(t, reg, testOptions()), directory.Request{})
			want := []string{"acme/one", "two", "did:web:three.example.com", "Four"}
			if !slices.Equal(l.Listed, want) || !slices.Equal(sourceIDs(l.Cards), want) {
				t.Errorf("Listed %v, Cards %v; want %v", l.Listed, sourceIDs(l.Cards), want)
			}
			if !l.Complete || l.Pages != 1 || l.Requests != 1 || l.Cards[0].Version != `"d1"` || !l.Cards[0].Active {
				t.Errorf("listing = %+v", l)
			}
		})
	}
}

func TestStaticBadEntries(t *testing.T) {
	reg := startDocument(t, &fakeDocument{body: `[{"id": "a"}, 7, "b", {"description": "no id"}, {"id": ""}, {"id": "a", "name": "again"}, {"id": 5, "name": "n"}]`})
	l := fetch(t, newClient(t, reg, testOptions()), directory.Request{})
	if !slices.Equal(l.Listed, []string{"a", "n"}) || l.Skipped != 5 {
		t.Errorf("Listed %v, Skipped %d, Problems %q", l.Listed, l.Skipped, l.Problems)
	}
}

func TestStaticNotModified(t *testing.T) {
	doc := &fakeDocument{body: `[` + staticCards + `]`, etag: `"d1"`}
	reg := startDocument(t, doc)
	c := newClient(t, reg, testOptions())
	first := fetch(t, c, directory.Request{})
	known := knownFrom(first, nil)

	second := fetch(t, c, directory.Request{Known: known})
	if len(second.Cards) != 0 || !second.Complete || len(second.Listed) != 4 || second.Requests != 1 {
		t.Errorf("304 run: %+v", second)
	}

	full := fetch(t, c, directory.Request{Known: known, FullRefresh: true})
	if len(full.Cards) != 4 {
		t.Errorf("FullRefresh fetched %d cards", len(full.Cards))
	}

	doc.mu.Lock()
	doc.body, doc.etag = `[{"id": "only"}]`, `"d2"`
	doc.mu.Unlock()
	changed := fetch(t, c, directory.Request{Known: known})
	if !slices.Equal(changed.Listed, []string{"only"}) || changed.Cards[0].Version != `"d2"` {
		t.Errorf("changed document: %+v", changed)
	}
}

func TestStaticMalformed(t *testing.T) {
	for _, body := range []string{`[{"id": "a"}`, `{"items": []}`, `{"agents": [], "cards": []}`, `null`, `42`, ``} {
		t.Run(body, func(t *testing.T) {
			reg := startDocument(t, &fakeDocument{body: body})
			_, err := newClient(t, reg, testOptions()).Fetch(context.Background(), directory.Request{})
			wantCode(t, err, federation.EUNAVAILABLE, `"static-one"`, "/agents.json")
		})
	}
}

func TestStaticOversized(t *testing.T) {
	reg := startDocument(t, &fakeDocument{body: `[` + staticCards + `]`})
	opts := testOptions()
	opts.MaxPageBytes = 64
	_, err := newClient(t, reg, opts).Fetch(context.Background(), directory.Request{})
	wantCode(t, err, federation.EUNAVAILABLE, `"static-one"`, "larger than the limit of 64 bytes")
}

func TestStaticLookup(t *testing.T) {
	reg := startDocument(t, &fakeDocument{body: `{"agents": [` + staticCards + `]}`})
	c := newClient(t, reg, testOptions())
	for did, want := range map[string]string{"did:web:two.example.com": "two", "did:agentvault:acme/one": "acme/one"} {
		card, err := c.LookupDID(context.Background(), did)
		if err != nil || card.SourceID != want {
			t.Fatalf("LookupDID(%s) = %+v, %v; want %s", did, card, err, want)
		}
	}
	_, err := c.LookupDID(context.Background(), "did:agentvault:five")
	wantCode(t, err, federation.ENOTFOUND, `"static-one"`, "five")
}
