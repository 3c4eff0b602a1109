package registry_test

import (
	"context"
	"encoding/json"
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

func avRegistry(url string) federation.Registry {
	return federation.Registry{ID: "av-one", URL: url, Kind: federation.KindAgentVault}
}

func TestAgentVaultPaging(t *testing.T) {
	tests := []struct {
		name         string
		cards        int
		pageSize     int
		maxLimit     int // the registry's own page limit
		noPagination bool
		wantPages    int
	}{
		{name: "empty registry", cards: 0, pageSize: 3, wantPages: 1},
		{name: "one short page", cards: 2, pageSize: 3, wantPages: 1},
		{name: "exact multiple of the page size", cards: 6, pageSize: 3, wantPages: 2},
		{name: "exact multiple without pagination", cards: 6, pageSize: 3, noPagination: true, wantPages: 3},
		{name: "short last page", cards: 7, pageSize: 3, wantPages: 3},
		{name: "short last page without pagination", cards: 7, pageSize: 3, noPagination: true, wantPages: 3},
		{name: "registry serves smaller pages than asked", cards: 7, pageSize: 5, maxLimit: 2, wantPages: 4},
		{name: "default page size", cards: 251, wantPages: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, tt.cards, false)
			f.SetFaults(demo.Faults{MaxLimit: tt.maxLimit, NoPagination: tt.noPagination})
			opts := testOptions()
			opts.PageSize = tt.pageSize
			l := fetch(t, newClient(t, avRegistry(f.srv.URL), opts), directory.Request{})

			want := f.activeIDs()
			if !slices.Equal(l.Listed, want) {
				t.Errorf("Listed = %v, want %v", l.Listed, want)
			}
			if !slices.Equal(sourceIDs(l.Cards), want) {
				t.Errorf("Cards = %v, want %v", sourceIDs(l.Cards), want)
			}
			if !l.Complete {
				t.Errorf("Complete = false (problems %q)", l.Problems)
			}
			if l.Pages != tt.wantPages || l.Requests != tt.wantPages+tt.cards {
				t.Errorf("Pages, Requests = %d, %d; want %d, %d", l.Pages, l.Requests, tt.wantPages, tt.wantPages+tt.cards)
			}
		})
	}
}

func TestAgentVaultCard(t *testing.T) {
	f := newFake(t, 1, false)
	l := fetch(t, newClient(t, avRegistry(f.srv.URL), testOptions()), directory.Request{})
	if len(l.Cards) != 1 {
		t.Fatalf("Cards = %v", l.Cards)
	}
	c := l.Cards[0]
	var doc map[string]any
	if err := json.Unmarshal(c.Data, &doc); err != nil || doc["humanReadableId"] != "acme/card-000" {
		t.Errorf("Data = %s (%v): want the record's card_data", c.Data, err)
	}
	rec, _ := f.Get(f.ids[0])
	if c.SourceID != f.ids[0] || !c.Active || !c.UpdatedAt.Equal(rec.UpdatedAt) || c.Version == "" {
		t.Errorf("card = %+v", c)
	}
}

func TestAgentVaultListingChangesMidSync(t *testing.T) {
	tests := []struct {
		name   string
		change func(r *demo.Registry, f *fake)
	}{
		// AgentVault lists the newest first: a new card goes in front of the offset.
		{"an entry inserted at the front", func(_ *demo.Registry, f *fake) {
			f.add("card-new", "New")
		}},
		{"the first entry deleted", func(r *demo.Registry, f *fake) {
			_ = r.Delete(f.activeIDs()[0])
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, 6, false)
			original := f.activeIDs()
			f.SetFaults(demo.Faults{NewestFirst: true, AfterListPage: func(r *demo.Registry, page int) {
				if page == 1 {
					tt.change(r, f)
				}
			}})
			opts := testOptions()
			opts.PageSize = 2
			l := fetch(t, newClient(t, avRegistry(f.srv.URL), opts), directory.Request{})

			if l.Complete {
				t.Errorf("Complete = true for a listing that changed while it was read")
			}
			if !hasProblem(l, "changed while it was read") {
				t.Errorf("Problems = %q: want the reason it is incomplete", l.Problems)
			}
			seen := map[string]bool{}
			for _, id := range l.Listed {
				if seen[id] {
					t.Errorf("%s listed twice", id)
				}
				seen[id] = true
			}
			if len(l.Cards) != len(l.Listed) {
				t.Errorf("%d cards for %d listed", len(l.Cards), len(l.Listed))
			}
			missing := 0
			for _, id := range original {
				if !seen[id] && slices.Contains(f.activeIDs(), id) {
					missing++
				}
			}
			// An insertion only repeats an entry; a deletion before the offset hides one,
			// which is why the listing is not Complete.
			if missing > 1 {
				t.Errorf("Listed = %v: %d of %v missing", l.Listed, missing, original)
			}
			if l.Pages > 5 {
				t.Errorf("%d pages for 6 entries of 2 a page", l.Pages)
			}
		})
	}
}

// One card deleted before the offset and one added after it while the listing is read:
// the total stays the same and no entry repeats, yet the entry that moved onto the page
// already read is missed. A complete listing's absences are checked by ID, so the missed
// card stays listed, and the deleted one goes at the next listing that does not name it.
func TestAgentVaultListingShiftKeepsTotal(t *testing.T) {
	f := newFake(t, 6, false)
	opts := testOptions()
	opts.PageSize = 2
	c := newClient(t, avRegistry(f.srv.URL), opts)
	known := knownFrom(fetch(t, c, directory.Request{}), nil)

	f.SetFaults(demo.Faults{AfterListPage: func(r *demo.Registry, page int) {
		if page == 1 { // the first page named card 0, deleted now; card 2 moves onto it
			_ = r.Delete(f.ids[0])
			f.add("card-new", "New")
		}
	}})
	l := fetch(t, c, directory.Request{Known: known})
	if !l.Complete {
		t.Fatalf("Complete = false (%q): the shift leaves every sign of completeness intact", l.Problems)
	}
	for _, id := range append(slices.Clone(f.ids[1:6]), f.id("card-new")) {
		if !slices.Contains(l.Listed, id) {
			t.Errorf("%s is not listed (%v): a complete listing's absence makes it gone", id, l.Listed)
		}
	}
	if !hasProblem(l, "missed 1 active card") {
		t.Errorf("Problems = %q", l.Problems)
	}
	f.SetFaults(demo.Faults{})
	known = knownFrom(l, known)
	if l := fetch(t, c, directory.Request{Known: known}); slices.Contains(l.Listed, f.ids[0]) || !l.Complete || len(l.Listed) != 6 {
		t.Errorf("the next listing: Listed %v, Complete %v; want the deleted card gone", l.Listed, l.Complete)
	}

	// A card that cannot be checked stays listed: it goes on evidence, not on a guess.
	known = knownFrom(l, known)
	f.SetFaults(demo.Faults{Intercept: func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/api/v1/agent-cards/"+f.ids[1] {
			w.WriteHeader(http.StatusBadGateway)
			return true
		}
		return false
	}})
	if err := f.Delete(f.ids[1]); err != nil {
		t.Fatal(err)
	}
	opts.Retries = -1
	l = fetch(t, newClient(t, avRegistry(f.srv.URL), opts), directory.Request{Known: known})
	if !slices.Contains(l.Listed, f.ids[1]) || !hasProblem(l, "could not be checked") {
		t.Errorf("an unchecked absence: Listed %v, Problems %q", l.Listed, l.Problems)
	}
}

func TestAgentVaultListingIgnoresSkip(t *testing.T) {
	f := newFake(t, 4, false)
	f.SetFaults(demo.Faults{NoPagination: true, Intercept: func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/api/v1/agent-cards/" {
			q := r.URL.Query()
			q.Set("skip", "0")
			r.URL.RawQuery = q.Encode()
		}
		return false
	}})
	opts := testOptions()
	opts.PageSize = 2
	l := fetch(t, newClient(t, avRegistry(f.srv.URL), opts), directory.Request{})
	if l.Complete || l.Pages != 2 || len(l.Listed) != 2 {
		t.Errorf("Complete, Pages, Listed = %v, %d, %v: want an incomplete listing that stopped after 2 pages", l.Complete, l.Pages, l.Listed)
	}
}

func TestAgentVaultDetailCache(t *testing.T) {
	f := newFake(t, 5, false)
	opts := testOptions()
	opts.PageSize = 2
	c := newClient(t, avRegistry(f.srv.URL), opts)

	first := fetch(t, c, directory.Request{})
	known := knownFrom(first, nil)
	if len(known) != 5 || first.Requests != 3+5 {
		t.Fatalf("first run: %d cards, %d requests", len(known), first.Requests)
	}

	f.ResetRequests()
	second := fetch(t, c, directory.Request{Known: known})
	if len(second.Cards) != 0 || !second.Complete || len(second.Listed) != 5 {
		t.Errorf("second run: Cards %v, Complete %v, Listed %v", sourceIDs(second.Cards), second.Complete, second.Listed)
	}
	if pages, details := f.Counts(); details != 0 || second.Requests != pages || pages != 3 {
		t.Errorf("second run: %d listing and %d detail requests (Requests %d); want 3 and 0", pages, details, second.Requests)
	}

	f.add("card-003", "Renamed")
	added := f.add("card-new", "New")
	f.ResetRequests()
	third := fetch(t, c, directory.Request{Known: known})
	if got := sourceIDs(third.Cards); !slices.Equal(got, []string{f.ids[3], added}) {
		t.Errorf("after a rename and an addition: fetched %v", got)
	}
	if _, details := f.Counts(); details != 2 {
		t.Errorf("%d detail requests; want 2", details)
	}
	knownFrom(third, known)

	full := fetch(t, c, directory.Request{Known: known, FullRefresh: true})
	if len(full.Cards) != 6 {
		t.Errorf("FullRefresh fetched %d cards; want 6", len(full.Cards))
	}
}

func TestAgentVaultDetailGoneOrInactive(t *testing.T) {
	f := newFake(t, 3, false)
	// Between the listing and the details, one card is deleted and one deactivated.
	f.SetFaults(demo.Faults{AfterListPage: func(r *demo.Registry, _ int) {
		_ = r.Delete(f.ids[1])
		_, _ = r.SetActive(f.ids[2], false)
	}})
	l := fetch(t, newClient(t, avRegistry(f.srv.URL), testOptions()), directory.Request{})
	if !slices.Equal(l.Listed, f.ids[:1]) {
		t.Errorf("Listed = %v; want only %s", l.Listed, f.ids[0])
	}
	if got := sourceIDs(l.Cards); !slices.Equal(got, []string{f.ids[0], f.ids[2]}) || l.Cards[1].Active {
		t.Errorf("Cards = %v: want the first and an inactive third", l.Cards)
	}
}

func TestAgentVaultDeferral(t *testing.T) {
	t.Run("no time for any card", func(t *testing.T) {
		f := newFake(t, 5, false)
		opts := testOptions()
		opts.DeadlineMargin = time.Hour
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		l, err := newClient(t, avRegistry(f.srv.URL), opts).Fetch(ctx, directory.Request{})
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Cards) != 0 || l.Deferred != 5 || len(l.Listed) != 5 || !l.Complete {
			t.Errorf("Cards %d, Deferred %d, Listed %d, Complete %v; want 0, 5, 5, true", len(l.Cards), l.Deferred, len(l.Listed), l.Complete)
		}
		if _, details := f.Counts(); details != 0 {
			t.Errorf("%d detail requests; want none", details)
		}
	})

	t.Run("time for some cards", func(t *testing.T) {
		f := newFake(t, 20, false)
		f.SetFaults(demo.Faults{Intercept: func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path != "/api/v1/agent-cards/" {
				time.Sleep(100 * time.Millisecond)
			}
			return false
		}})
		opts := testOptions()
		opts.Concurrency = 2
		// A window of about 500ms for 20 cards that take 100ms each, two at a time.
		opts.DeadlineMargin = time.Second
		ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		defer cancel()
		l, err := newClient(t, avRegistry(f.srv.URL), opts).Fetch(ctx, directory.Request{})
		if err != nil {
			t.Fatal(err)
		}
		if l.Deferred == 0 || l.Deferred == 20 || len(l.Cards)+l.Deferred != 20 {
			t.Errorf("Cards %d, Deferred %d: want some of 20 fetched and the rest deferred", len(l.Cards), l.Deferred)
		}
		if len(l.Listed) != 20 || !l.Complete {
			t.Errorf("Listed %d, Complete %v", len(l.Listed), l.Complete)
		}
	})
}

func TestAgentVaultCardFailures(t *testing.T) {
	t.Run("one failing card is deferred", func(t *testing.T) {
		f := newFake(t, 4, false)
		f.SetFaults(demo.Faults{Intercept: func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path == "/api/v1/agent-cards/"+f.ids[2] {
				w.WriteHeader(http.StatusInternalServerError)
				return true
			}
			return false
		}})
		opts := testOptions()
		opts.Retries = 1
		l := fetch(t, newClient(t, avRegistry(f.srv.URL), opts), directory.Request{})
		if len(l.Cards) != 3 || l.Deferred != 1 || len(l.Listed) != 4 || !hasProblem(l, f.ids[2]+" deferred") {
			t.Errorf("Cards %v, Deferred %d, Listed %v, Problems %q", sourceIDs(l.Cards), l.Deferred, l.Listed, l.Problems)
		}
		if l.Requests != 1+3+2 {
			t.Errorf("Requests = %d; want 6 (a page, 3 cards, a card tried twice)", l.Requests)
		}
	})

	t.Run("a registry failing every card is given up on", func(t *testing.T) {
		f := newFake(t, 10, false)
		var cardRequests atomic.Int64
		f.SetFaults(demo.Faults{Intercept: func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path != "/api/v1/agent-cards/" {
				cardRequests.Add(1)
				w.WriteHeader(http.StatusBadGateway)
				return true
			}
			return false
		}})
		opts := testOptions()
		opts.Concurrency, opts.Retries = 1, -1
		l := fetch(t, newClient(t, avRegistry(f.srv.URL), opts), directory.Request{})
		if n := cardRequests.Load(); n != 3 {
			t.Errorf("%d card requests; want 3, then no more", n)
		}
		if l.Deferred != 10 || len(l.Cards) != 0 {
			t.Errorf("Deferred %d, Cards %d", l.Deferred, len(l.Cards))
		}
	})

	t.Run("unusable cards are skipped", func(t *testing.T) {
		f := newFake(t, 4, false)
		if err := f.SetRawCardData(f.ids[1], json.RawMessage(`["not", "an", "object"]`)); err != nil {
			t.Fatal(err)
		}
		if err := f.SetRawCardData(f.ids[2], json.RawMessage(`{"name": "`+strings.Repeat("x", 4096)+`"}`)); err != nil {
			t.Fatal(err)
		}
		f.SetFaults(demo.Faults{Intercept: func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path == "/api/v1/agent-cards/"+f.ids[3] {
				fmt.Fprintf(w, `{"id": %q, "card_data": {`, f.ids[3])
				return true
			}
			return false
		}})
		opts := testOptions()
		opts.MaxCardBytes = 2048
		l := fetch(t, newClient(t, avRegistry(f.srv.URL), opts), directory.Request{})
		if got := sourceIDs(l.Cards); !slices.Equal(got, f.ids[:1]) {
			t.Errorf("Cards = %v; want the first only", got)
		}
		if l.Skipped != 3 || l.Deferred != 0 || len(l.Listed) != 4 {
			t.Errorf("Skipped %d, Deferred %d, Listed %v", l.Skipped, l.Deferred, l.Listed)
		}
		for _, want := range []string{f.ids[1] + ": card_data is not a JSON object", f.ids[2], "limit of 2 KiB", f.ids[3], "not an AgentVault card record"} {
			if !hasProblem(l, want) {
				t.Errorf("Problems %q do not mention %q", l.Problems, want)
			}
		}
	})
}

func TestAgentVaultMalformedListing(t *testing.T) {
	for _, body := range []string{`{"items": [`, `[]`, `{"pagination": {}}`, `{"items": {}}`, `<html>Bad Gateway</html>`, `{"items": []} {"items": []}`} {
		t.Run(body, func(t *testing.T) {
			f := newFake(t, 1, false)
			f.SetFaults(demo.Faults{Intercept: func(w http.ResponseWriter, r *http.Request) bool {
				fmt.Fprint(w, body)
				return true
			}})
			l, err := newClient(t, avRegistry(f.srv.URL), testOptions()).Fetch(context.Background(), directory.Request{})
			wantCode(t, err, federation.EUNAVAILABLE, `"av-one"`, "/api/v1/agent-cards/", "not an AgentVault v1 listing page")
			if l.Requests != 1 {
				t.Errorf("Requests = %d; a malformed answer is not retried", l.Requests)
			}
		})
	}
}

func TestAgentVaultBadEntries(t *testing.T) {
	f := newFake(t, 0, false)
	f.SetFaults(demo.Faults{Intercept: func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/api/v1/agent-cards/" {
			fmt.Fprint(w, `{"items": [{"id": "a", "name": "A"}, {"name": "no id"}, 7, {"id": 12}, {"id": ".."}],
				"pagination": {"total_items": 5, "limit": 250, "offset": 0, "total_pages": 1, "current_page": 1}}`)
			return true
		}
		writeJSON(w, http.StatusOK, map[string]any{"id": "a", "card_data": map[string]any{"name": "A"}, "is_active": true})
		return true
	}})
	l := fetch(t, newClient(t, avRegistry(f.srv.URL), testOptions()), directory.Request{})
	if !slices.Equal(l.Listed, []string{"a"}) || len(l.Cards) != 1 || l.Skipped != 4 {
		t.Errorf("Listed %v, Cards %d, Skipped %d (%q)", l.Listed, len(l.Cards), l.Skipped, l.Problems)
	}
	// Four of the five announced entries were unusable: the membership is not trusted.
	if l.Complete {
		t.Errorf("Complete = true with entries the registry announced but did not name")
	}
}

// AgentVault knows a card by its UUID; a DID names its humanReadableId, which the
// registry's search does not match: the lookup searches names and checks the candidates'
// cards for the exact humanReadableId.
func TestAgentVaultLookupDID(t *testing.T) {
	f := newFake(t, 3, false)
	target := f.Put(demoCard("acme/weather-bot", "Weather Bot")).ID
	f.Put(demoCard("acme/weather-bot-2", "Weather Bot 2"))        // a decoy the search also finds
	decoy := demoCard("other/weather-bot", "Weather Bot Classic") // same agent part, other org
	f.Put(decoy)
	inactive := f.Put(demoCard("acme/retired", "Retired")).ID
	if _, err := f.SetActive(inactive, false); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, avRegistry(f.srv.URL), testOptions())

	f.ResetRequests()
	card, err := c.LookupDID(context.Background(), "did:agentvault:acme/weather-bot")
	if err != nil || card.SourceID != target || !card.Active {
		t.Fatalf("LookupDID = %+v, %v; want card %s", card, err, target)
	}
	searched := false
	for _, r := range f.Requests() {
		searched = searched || strings.Contains(r.Query, "search=")
		if r.Path == "/api/v1/agent-cards/acme/weather-bot" || strings.Contains(r.Path, "weather-bot") {
			t.Errorf("asked for the humanReadableId as a card ID: %s", r.Path)
		}
	}
	if !searched {
		t.Error("the registry was not searched")
	}
	// The version is the one a sync gives the card, so the next sync does not fetch it again.
	var listed directory.Card
	for _, lc := range fetch(t, c, directory.Request{}).Cards {
		if lc.SourceID == target {
			listed = lc
		}
	}
	if card.Version != listed.Version {
		t.Errorf("Version %q, the sync's %q", card.Version, listed.Version)
	}

	for _, did := range []string{"did:agentvault:acme/nobody", "did:agentvault:acme/retired", "did:agentvault:acme/weather", "did:agentvault:acme/card"} {
		_, err = c.LookupDID(context.Background(), did)
		wantCode(t, err, federation.ENOTFOUND)
	}
	f.ResetRequests()
	_, err = c.LookupDID(context.Background(), "did:key:z6MkhYc9Ubv6m5Cc2nmuX2Ahk1HEuGNJmpwRmc6JKPjvwgDd")
	wantCode(t, err, federation.ENOTFOUND, "did:agentvault")
	if n := len(f.Requests()); n != 0 {
		t.Errorf("a DID that is not did:agentvault made %d requests", n)
	}

	f.SetFaults(demo.Faults{Intercept: func(w http.ResponseWriter, r *http.Request) bool {
		w.WriteHeader(http.StatusServiceUnavailable)
		return true
	}})
	opts := testOptions()
	opts.Retries = -1
	_, err = newClient(t, avRegistry(f.srv.URL), opts).LookupDID(context.Background(), "did:agentvault:acme/weather-bot")
	wantCode(t, err, federation.EUNAVAILABLE, "503")
}

func TestAgentVaultOversizedListing(t *testing.T) {
	f := newFake(t, 50, false)
	opts := testOptions()
	opts.MaxPageBytes = 1000
	_, err := newClient(t, avRegistry(f.srv.URL), opts).Fetch(context.Background(), directory.Request{})
	wantCode(t, err, federation.EUNAVAILABLE, `"av-one"`, "larger than the limit of 1000 bytes")
}
