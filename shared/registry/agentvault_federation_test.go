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

	"github.com/federation-gateway/gateway/infra/demo"
	"github.com/federation-gateway/gateway/shared/directory"
	"github.com/federation-gateway/gateway/shared/federation"
)

func v2Registry(url string) federation.Registry {
	return federation.Registry{ID: "av-two", URL: url, Kind: federation.KindAgentVaultFederation}
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestFederationFullListing(t *testing.T) {
	for _, inclusive := range []bool{false, true} {
		t.Run(fmt.Sprintf("inclusive since %v", inclusive), func(t *testing.T) {
			f := newFake(t, 0, true)
			// b and c share a timestamp across the end of the first page; d and e the
			// end of the second.
			f.at(t, "a", 1, "b", 2, "c", 2, "d", 3, "e", 3, "f", 4)
			f.SetFaults(demo.Faults{SinceInclusive: inclusive})
			opts := testOptions()
			opts.PageSize = 3
			l := fetch(t, newClient(t, v2Registry(f.srv.URL), opts), directory.Request{})

			want := f.idsOf("a", "b", "c", "d", "e", "f")
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
	f := newFake(t, 0, true)
	l := fetch(t, newClient(t, v2Registry(f.srv.URL), testOptions()), directory.Request{})
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
			f := newFake(t, 0, true)
			f.at(t, "a", 1, "b", 2, "c", 2, "d", 2, "e", 2, "f", 3)
			f.SetFaults(demo.Faults{SinceInclusive: inclusive})
			opts := testOptions()
			opts.PageSize = 3
			l := fetch(t, newClient(t, v2Registry(f.srv.URL), opts), directory.Request{})
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
			for _, slug := range []string{"a", "b", "c", "d", "f"} {
				if !slices.Contains(l.Listed, f.id(slug)) {
					t.Errorf("%s not listed (%v)", slug, l.Listed)
				}
			}
		})
	}
}

func TestFederationIncremental(t *testing.T) {
	f := newFake(t, 0, true)
	f.at(t, "a", 1, "b", 2, "c", 2)
	c := newClient(t, v2Registry(f.srv.URL), testOptions())

	first := fetch(t, c, directory.Request{})
	known := knownFrom(first, nil)
	if !first.Complete || len(first.Cards) != 3 {
		t.Fatalf("first run: %+v", first)
	}

	// Nothing changed: the boundary cards come back through the overlap, and the cache
	// keeps them out of Cards.
	f.ResetRequests()
	same := fetch(t, c, directory.Request{Cursor: first.Cursor, Known: known})
	if len(same.Cards) != 0 || same.Complete || same.Cursor != first.Cursor || same.Requests != 1 {
		t.Errorf("unchanged run: Cards %v, Complete %v, Cursor %q, Requests %d", sourceIDs(same.Cards), same.Complete, same.Cursor, same.Requests)
	}
	if want := t0.Add(2*time.Second - time.Microsecond).Format(time.RFC3339Nano); f.sinceParams()[0] != want {
		t.Errorf("since = %q, want %q", f.sinceParams()[0], want)
	}

	// One card changed at the cursor's timestamp, one was added, one deactivated.
	f.add("b", "b2")
	if err := f.SetUpdatedAt(f.id("b"), t0.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.SetActive(f.id("a"), false); err != nil {
		t.Fatal(err)
	}
	if err := f.SetUpdatedAt(f.id("a"), t0.Add(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	f.at(t, "d", 4)
	next := fetch(t, c, directory.Request{Cursor: first.Cursor, Known: known})
	if got := sourceIDs(next.Cards); !slices.Equal(got, f.idsOf("b", "d", "a")) {
		t.Errorf("Cards = %v, want b (changed), d (new), a (deactivated)", got)
	}
	if i := slices.IndexFunc(next.Cards, func(c directory.Card) bool { return c.SourceID == f.id("a") }); i < 0 || next.Cards[i].Active {
		t.Errorf("a is not returned inactive")
	}
	if slices.Contains(next.Listed, f.id("a")) || next.Complete {
		t.Errorf("Listed %v, Complete %v: an incremental run lists the active changed cards and is not complete", next.Listed, next.Complete)
	}
	if want := t0.Add(5 * time.Second).Format(time.RFC3339Nano); next.Cursor != want {
		t.Errorf("Cursor = %q, want %q", next.Cursor, want)
	}

	// FullRefresh ignores the cursor and the cache.
	f.ResetRequests()
	full := fetch(t, c, directory.Request{Cursor: next.Cursor, Known: knownFrom(next, known), FullRefresh: true})
	if !full.Complete || len(full.Cards) != 4 || f.sinceParams()[0] != "" {
		t.Errorf("FullRefresh: Complete %v, Cards %v, since %q", full.Complete, sourceIDs(full.Cards), f.sinceParams()[0])
	}
}

func TestFederationWrappedItems(t *testing.T) {
	f := newFake(t, 3, true)
	f.SetFaults(demo.Faults{WrapFederation: true})
	l := fetch(t, newClient(t, v2Registry(f.srv.URL), testOptions()), directory.Request{})
	if len(l.Cards) != 3 || !l.Complete {
		t.Errorf("Cards %d, Complete %v", len(l.Cards), l.Complete)
	}
}

func TestFederationDeadline(t *testing.T) {
	f := newFake(t, 10, true)
	opts := testOptions()
	opts.PageSize = 3
	opts.DeadlineMargin = time.Hour
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := newClient(t, v2Registry(f.srv.URL), opts).Fetch(ctx, directory.Request{})
	if err != nil {
		t.Fatal(err)
	}
	// One page is read whatever the time: it is the unit of progress.
	if l.Pages != 1 || len(l.Cards) != 3 || l.Complete {
		t.Errorf("Pages %d, Cards %d, Complete %v", l.Pages, len(l.Cards), l.Complete)
	}
	third, _ := f.Get(f.ids[2])
	if want := third.UpdatedAt.Format(time.RFC3339Nano); l.Cursor != want {
		t.Errorf("Cursor = %q, want the newest of the page read, %q", l.Cursor, want)
	}
}

func TestFederationUnorderedPage(t *testing.T) {
	f := newFake(t, 0, true)
	f.SetFaults(demo.Faults{Intercept: func(w http.ResponseWriter, r *http.Request) bool {
		fmt.Fprint(w, `[{"id": "b", "card_data": {"name": "b"}, "updated_at": "2026-03-01T12:00:02"},
			{"id": "a", "card_data": {"name": "a"}, "updated_at": "2026-03-01T12:00:01"}]`)
		return true
	}})
	opts := testOptions()
	opts.PageSize = 2
	_, err := newClient(t, v2Registry(f.srv.URL), opts).Fetch(context.Background(), directory.Request{})
	wantCode(t, err, federation.EUNAVAILABLE, "not ordered by updated_at")
}

func TestFederationMalformed(t *testing.T) {
	for _, body := range []string{`[{"id": "a"`, `{"cards": []}`, `"hello"`, `null`} {
		t.Run(body, func(t *testing.T) {
			f := newFake(t, 0, true)
			f.SetFaults(demo.Faults{Intercept: func(w http.ResponseWriter, r *http.Request) bool {
				fmt.Fprint(w, body)
				return true
			}})
			_, err := newClient(t, v2Registry(f.srv.URL), testOptions()).Fetch(context.Background(), directory.Request{})
			wantCode(t, err, federation.EUNAVAILABLE, `"av-two"`, "/api/v1/federation/agent-cards")
		})
	}
}

func TestFederationCredential(t *testing.T) {
	f := newFake(t, 1, true)
	opts := testOptions()
	opts.Credential = "s3cret"
	fetch(t, newClient(t, v2Registry(f.srv.URL), opts), directory.Request{})
	if got := f.Requests()[0].Header.Get("Authorization"); got != "Bearer s3cret" {
		t.Errorf("Authorization = %q", got)
	}
	if got := f.Requests()[0].Header.Get("X-Api-Key"); got != "" {
		t.Errorf("X-Api-Key = %q", got)
	}
}

func TestFederationLookupDID(t *testing.T) {
	f := newFake(t, 2, true)
	id := f.add("summarizer", "Summarizer")
	c := newClient(t, v2Registry(f.srv.URL), testOptions())
	card, err := c.LookupDID(context.Background(), "did:agentvault:acme/summarizer")
	if err != nil || card.SourceID != id || !strings.Contains(string(card.Data), "acme/summarizer") {
		t.Fatalf("LookupDID = %+v, %v", card, err)
	}
	_, err = c.LookupDID(context.Background(), "did:agentvault:acme/nope")
	wantCode(t, err, federation.ENOTFOUND, `"av-two"`, "acme/nope")
}

func TestFederationCardChangedWhileListed(t *testing.T) {
	f := newFake(t, 0, true)
	f.at(t, "a", 1, "b", 2, "c", 3, "d", 4)
	var v2Pages atomic.Int64
	f.SetFaults(demo.Faults{Intercept: func(w http.ResponseWriter, r *http.Request) bool {
		if v2Pages.Add(1) == 2 { // between the first and the second page
			f.add("a", "a2")
			_ = f.SetUpdatedAt(f.id("a"), t0.Add(10*time.Second))
		}
		return false
	}})
	opts := testOptions()
	opts.PageSize = 2
	l := fetch(t, newClient(t, v2Registry(f.srv.URL), opts), directory.Request{})

	if !slices.Equal(l.Listed, f.idsOf("a", "b", "c", "d")) {
		t.Errorf("Listed = %v", l.Listed)
	}
	i := slices.IndexFunc(l.Cards, func(c directory.Card) bool { return c.SourceID == f.id("a") })
	if i < 0 || !strings.Contains(string(l.Cards[i].Data), `"name":"a2"`) || !l.Cards[i].UpdatedAt.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("card a = %+v: want its version changed during the run", l.Cards[i])
	}
	if len(l.Cards) != 4 {
		t.Errorf("%d cards", len(l.Cards))
	}
	if want := t0.Add(10 * time.Second).Format(time.RFC3339Nano); l.Cursor != want {
		t.Errorf("Cursor = %q, want %q", l.Cursor, want)
	}
}
