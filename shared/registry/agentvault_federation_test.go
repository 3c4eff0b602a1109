package registry_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/registry"
)

func v2Registry(url string) federation.Registry {
	return federation.Registry{ID: "av-two", URL: url, Kind: federation.KindAgentVaultFederation}
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// at returns records with the IDs and the timestamps t0 + seconds.
func at(spec ...any) []record {
	var recs []record
	for i := 0; i < len(spec); i += 2 {
		id, secs := spec[i].(string), spec[i+1].(int)
		recs = append(recs, record{ID: id, Name: id, Active: true, UpdatedAt: t0.Add(time.Duration(secs) * time.Second)})
	}
	return recs
}

func TestFederationFullListing(t *testing.T) {
	for _, inclusive := range []bool{false, true} {
		t.Run(fmt.Sprintf("inclusive since %v", inclusive), func(t *testing.T) {
			f := newFakeAgentVault(t, 0)
			// b and c share a timestamp across the end of the first page; d and e the
			// end of the second.
			f.records = at("a", 1, "b", 2, "c", 2, "d", 3, "e", 3, "f", 4)
			f.sinceInclusive = inclusive
			srv := f.start()
			opts := testOptions()
			opts.PageSize = 3
			l := fetch(t, newClient(t, v2Registry(srv.URL), opts), registry.Request{})

			want := []string{"a", "b", "c", "d", "e", "f"}
			if !slices.Equal(l.Listed, want) || !slices.Equal(sourceIDs(l.Cards), want) {
				t.Errorf("Listed %v, Cards %v; want %v", l.Listed, sourceIDs(l.Cards), want)
			}
			if !l.Complete {
				t.Errorf("Complete = false (%q)", l.Problems)
			}
			if want := t0.Add(4 * time.Second).Format(time.RFC3339Nano); l.Cursor != want {
				t.Errorf("Cursor = %q, want %q", l.Cursor, want)
			}
			if l.Pages != l.Requests || l.Pages > 4 {
				t.Errorf("Pages %d, Requests %d", l.Pages, l.Requests)
			}
			if f.sinceParams()[0] != "" {
				t.Errorf("a full listing started with since=%q", f.sinceParams()[0])
			}
		})
	}
}

func TestFederationEmpty(t *testing.T) {
	f := newFakeAgentVault(t, 0)
	srv := f.start()
	l := fetch(t, newClient(t, v2Registry(srv.URL), testOptions()), registry.Request{})
	if !l.Complete || len(l.Listed) != 0 || l.Cursor != "" || l.Pages != 1 {
		t.Errorf("listing = %+v", l)
	}
}

func TestFederationBoundaryGroup(t *testing.T) {
	// Four cards share t0+2s, more than a page of 3: the overlap brings the same page
	// back, and paging must neither loop, nor stop before the cards after the group, nor
	// claim the listing complete.
	for _, inclusive := range []bool{false, true} {
		t.Run(fmt.Sprintf("inclusive since %v", inclusive), func(t *testing.T) {
			f := newFakeAgentVault(t, 0)
			f.records = at("a", 1, "b", 2, "c", 2, "d", 2, "e", 2, "f", 3)
			f.sinceInclusive = inclusive
			srv := f.start()
			opts := testOptions()
			opts.PageSize = 3
			l := fetch(t, newClient(t, v2Registry(srv.URL), opts), registry.Request{})
			if l.Complete {
				t.Errorf("Complete = true though cards may have been missed")
			}
			if !hasProblem(l, "share updated_at") {
				t.Errorf("Problems = %q", l.Problems)
			}
			if l.Pages > 6 {
				t.Errorf("%d pages", l.Pages)
			}
			// Paging goes on past the group: f, changed after it, is not held back.
			for _, id := range []string{"a", "b", "c", "d", "f"} {
				if !slices.Contains(l.Listed, id) {
					t.Errorf("%s not listed (%v)", id, l.Listed)
				}
			}
		})
	}
}

func TestFederationIncremental(t *testing.T) {
	f := newFakeAgentVault(t, 0)
	f.records = at("a", 1, "b", 2, "c", 2)
	srv := f.start()
	c := newClient(t, v2Registry(srv.URL), testOptions())

	first := fetch(t, c, registry.Request{})
	known := knownFrom(first, nil)
	if !first.Complete || len(first.Cards) != 3 {
		t.Fatalf("first run: %+v", first)
	}

	// Nothing changed: the boundary cards come back through the overlap, and the cache
	// keeps them out of Cards.
	f.reset()
	same := fetch(t, c, registry.Request{Cursor: first.Cursor, Known: known})
	if len(same.Cards) != 0 || same.Complete || same.Cursor != first.Cursor || same.Requests != 1 {
		t.Errorf("unchanged run: Cards %v, Complete %v, Cursor %q, Requests %d", sourceIDs(same.Cards), same.Complete, same.Cursor, same.Requests)
	}
	if want := t0.Add(2*time.Second - time.Microsecond).Format(time.RFC3339Nano); f.sinceParams()[0] != want {
		t.Errorf("since = %q, want %q", f.sinceParams()[0], want)
	}

	// One card changed at the cursor's timestamp, one was added, one deactivated.
	f.mu.Lock()
	f.records[1].Name, f.records[1].CardData = "b2", []byte(`{"name": "b2"}`)
	f.records[0].Active, f.records[0].UpdatedAt = false, t0.Add(5*time.Second)
	f.records = append(f.records, at("d", 4)...)
	f.mu.Unlock()
	next := fetch(t, c, registry.Request{Cursor: first.Cursor, Known: known})
	if got := sourceIDs(next.Cards); !slices.Equal(got, []string{"b", "d", "a"}) {
		t.Errorf("Cards = %v, want b (changed), d (new), a (deactivated)", got)
	}
	if i := slices.IndexFunc(next.Cards, func(c registry.Card) bool { return c.SourceID == "a" }); i < 0 || next.Cards[i].Active {
		t.Errorf("a is not returned inactive")
	}
	if slices.Contains(next.Listed, "a") || next.Complete {
		t.Errorf("Listed %v, Complete %v: an incremental run lists the active changed cards and is not complete", next.Listed, next.Complete)
	}
	if want := t0.Add(5 * time.Second).Format(time.RFC3339Nano); next.Cursor != want {
		t.Errorf("Cursor = %q, want %q", next.Cursor, want)
	}

	// FullRefresh ignores the cursor and the cache.
	f.reset()
	full := fetch(t, c, registry.Request{Cursor: next.Cursor, Known: knownFrom(next, known), FullRefresh: true})
	if !full.Complete || len(full.Cards) != 4 || f.sinceParams()[0] != "" {
		t.Errorf("FullRefresh: Complete %v, Cards %v, since %q", full.Complete, sourceIDs(full.Cards), f.sinceParams()[0])
	}
}

func TestFederationWrappedItems(t *testing.T) {
	f := newFakeAgentVault(t, 3)
	f.wrapV2 = true
	srv := f.start()
	l := fetch(t, newClient(t, v2Registry(srv.URL), testOptions()), registry.Request{})
	if len(l.Cards) != 3 || !l.Complete {
		t.Errorf("Cards %d, Complete %v", len(l.Cards), l.Complete)
	}
}

func TestFederationDeadline(t *testing.T) {
	f := newFakeAgentVault(t, 10)
	srv := f.start()
	opts := testOptions()
	opts.PageSize = 3
	opts.DeadlineMargin = time.Hour
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := newClient(t, v2Registry(srv.URL), opts).Fetch(ctx, registry.Request{})
	if err != nil {
		t.Fatal(err)
	}
	// One page is read whatever the time: it is the unit of progress.
	if l.Pages != 1 || len(l.Cards) != 3 || l.Complete {
		t.Errorf("Pages %d, Cards %d, Complete %v", l.Pages, len(l.Cards), l.Complete)
	}
	if want := f.records[2].UpdatedAt.Format(time.RFC3339Nano); l.Cursor != want {
		t.Errorf("Cursor = %q, want the newest of the page read, %q", l.Cursor, want)
	}
}

func TestFederationUnorderedPage(t *testing.T) {
	f := newFakeAgentVault(t, 0)
	f.intercept = func(w http.ResponseWriter, r *http.Request) bool {
		recs := at("b", 2, "a", 1)
		writeJSON(w, http.StatusOK, []any{recs[0].json(), recs[1].json()})
		return true
	}
	srv := f.start()
	opts := testOptions()
	opts.PageSize = 2
	_, err := newClient(t, v2Registry(srv.URL), opts).Fetch(context.Background(), registry.Request{})
	wantCode(t, err, federation.EUNAVAILABLE, "not ordered by updated_at")
}

func TestFederationMalformed(t *testing.T) {
	for _, body := range []string{`[{"id": "a"`, `{"cards": []}`, `"hello"`, `null`} {
		t.Run(body, func(t *testing.T) {
			f := newFakeAgentVault(t, 0)
			f.intercept = func(w http.ResponseWriter, r *http.Request) bool {
				fmt.Fprint(w, body)
				return true
			}
			srv := f.start()
			_, err := newClient(t, v2Registry(srv.URL), testOptions()).Fetch(context.Background(), registry.Request{})
			wantCode(t, err, federation.EUNAVAILABLE, `"av-two"`, "/api/v1/federation/agent-cards")
		})
	}
}

func TestFederationCredential(t *testing.T) {
	f := newFakeAgentVault(t, 1)
	srv := f.start()
	opts := testOptions()
	opts.Credential = "s3cret"
	fetch(t, newClient(t, v2Registry(srv.URL), opts), registry.Request{})
	if got := f.requestHeaders()[0].Get("Authorization"); got != "Bearer s3cret" {
		t.Errorf("Authorization = %q", got)
	}
	if got := f.requestHeaders()[0].Get("X-Api-Key"); got != "" {
		t.Errorf("X-Api-Key = %q", got)
	}
}

func TestFederationLookup(t *testing.T) {
	f := newFakeAgentVault(t, 2)
	srv := f.start()
	c := newClient(t, v2Registry(srv.URL), testOptions())
	card, err := c.Lookup(context.Background(), "card-000")
	if err != nil || card.SourceID != "card-000" || !strings.Contains(string(card.Data), "acme/card-000") {
		t.Fatalf("Lookup = %+v, %v", card, err)
	}
	_, err = c.Lookup(context.Background(), "nope")
	wantCode(t, err, federation.ENOTFOUND, `"av-two"`, "nope")
}

func TestFederationCardChangedWhileListed(t *testing.T) {
	f := newFakeAgentVault(t, 0)
	f.records = at("a", 1, "b", 2, "c", 3, "d", 4)
	var v2Pages atomic.Int64
	f.intercept = func(w http.ResponseWriter, r *http.Request) bool {
		if v2Pages.Add(1) == 2 { // between the first and the second page
			f.mu.Lock()
			f.records[0].Name, f.records[0].CardData, f.records[0].UpdatedAt = "a2", []byte(`{"name": "a2"}`), t0.Add(10*time.Second)
			f.mu.Unlock()
		}
		return false
	}
	srv := f.start()
	opts := testOptions()
	opts.PageSize = 2
	l := fetch(t, newClient(t, v2Registry(srv.URL), opts), registry.Request{})

	if !slices.Equal(l.Listed, []string{"a", "b", "c", "d"}) {
		t.Errorf("Listed = %v", l.Listed)
	}
	i := slices.IndexFunc(l.Cards, func(c registry.Card) bool { return c.SourceID == "a" })
	if i < 0 || string(l.Cards[i].Data) != `{"name":"a2"}` || !l.Cards[i].UpdatedAt.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("card a = %+v: want its version changed during the run", l.Cards[i])
	}
	if len(l.Cards) != 4 {
		t.Errorf("%d cards", len(l.Cards))
	}
	if want := t0.Add(10 * time.Second).Format(time.RFC3339Nano); l.Cursor != want {
		t.Errorf("Cursor = %q, want %q", l.Cursor, want)
	}
}
