package registry_test

import (
	"context"
	"encoding/json"
	"fmt"
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

// fake is the AgentVault registry the demo federation runs (infra/demo), behind an
// httptest server: the same implementation of the contract the demo and `make run`
// use, with its failure modes (demo.Faults) for the ways real registries misbehave.
type fake struct {
	*demo.Registry
	srv    *httptest.Server
	ids    []string          // the registry's card IDs, in the order they were added
	bySlug map[string]string // the card ID of acme/<slug>
}

// newFake serves a registry holding n cards, acme/card-000 to acme/card-<n-1>, named
// "Agent 0" and so on. federationAPI adds the v2 federation endpoint.
func newFake(t *testing.T, n int, federationAPI bool) *fake {
	t.Helper()
	f := &fake{Registry: demo.NewRegistry("test", federationAPI), bySlug: map[string]string{}}
	for i := range n {
		f.add(fmt.Sprintf("card-%03d", i), fmt.Sprintf("Agent %d", i))
	}
	f.srv = httptest.NewServer(f.Handler())
	t.Cleanup(f.srv.Close)
	return f
}

// add puts a card acme/<slug> named name and returns its registry ID.
func (f *fake) add(slug, name string) string {
	rec := f.Put(demoCard("acme/"+slug, name))
	if _, ok := f.bySlug[slug]; !ok {
		f.ids = append(f.ids, rec.ID)
		f.bySlug[slug] = rec.ID
	}
	return rec.ID
}

// id is the card ID of acme/<slug>; idsOf maps id over slugs.
func (f *fake) id(slug string) string { return f.bySlug[slug] }

func (f *fake) idsOf(slugs ...string) []string {
	ids := make([]string, len(slugs))
	for i, s := range slugs {
		ids[i] = f.id(s)
	}
	return ids
}

// at adds a card per slug with updated_at t0 + seconds: (slug, seconds) pairs.
func (f *fake) at(t *testing.T, spec ...any) {
	t.Helper()
	for i := 0; i < len(spec); i += 2 {
		slug, secs := spec[i].(string), spec[i+1].(int)
		if err := f.SetUpdatedAt(f.add(slug, slug), t0.Add(time.Duration(secs)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
}

func demoCard(humanReadableID, name string) demo.Card {
	return demo.Card{
		SchemaVersion: "1.0", HumanReadableID: humanReadableID, Name: name, Description: "does things",
		URL: "https://agents.example.com/" + humanReadableID, Provider: demo.Provider{Name: "Acme"},
		Capabilities: demo.Capabilities{A2AVersion: "1.0"}, AuthSchemes: []demo.AuthScheme{{Scheme: "none"}},
	}
}

// activeIDs are the IDs of the active cards, in listing order.
func (f *fake) activeIDs() []string {
	var ids []string
	for _, r := range f.Records() {
		if r.Active {
			ids = append(ids, r.ID)
		}
	}
	return ids
}

// sinceParams are the since parameters of the v2 requests received.
func (f *fake) sinceParams() []string {
	var out []string
	for _, r := range f.Requests() {
		if r.Path == "/api/v1/federation/agent-cards" {
			q, _ := url.ParseQuery(r.Query)
			out = append(out, q.Get("since"))
		}
	}
	return out
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// testOptions keeps retries and margins short so the whole package tests in seconds.
func testOptions() registry.Options {
	return registry.Options{
		RetryBase:      time.Millisecond,
		RequestTimeout: 2 * time.Second,
		DeadlineMargin: 10 * time.Millisecond,
	}
}

// newClient returns the registry's Client through an outbound client that allows the
// loopback test servers.
func newClient(t *testing.T, reg federation.Registry, opts registry.Options) directory.Source {
	t.Helper()
	c, err := registry.New(reg, outbound.NewClient(outbound.Options{AllowPrivate: true, Timeout: 10 * time.Second}), opts)
	if err != nil {
		t.Fatalf("registry.New: %v", err)
	}
	return c
}

func fetch(t *testing.T, c directory.Source, req directory.Request) directory.Listing {
	t.Helper()
	l, err := c.Fetch(context.Background(), req)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	return l
}

// knownFrom is what the sync would store of a listing's cards.
func knownFrom(l directory.Listing, into map[string]string) map[string]string {
	if into == nil {
		into = map[string]string{}
	}
	for _, c := range l.Cards {
		into[c.SourceID] = c.Version
	}
	return into
}

func sourceIDs(cards []directory.Card) []string {
	ids := make([]string, len(cards))
	for i, c := range cards {
		ids[i] = c.SourceID
	}
	return ids
}

// wantCode asserts err's code and that its message names every one of want.
func wantCode(t *testing.T, err error, code string, want ...string) {
	t.Helper()
	if got := federation.ErrorCode(err); got != code {
		t.Fatalf("error %v: code %q, want %q", err, got, code)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err.Error(), w)
		}
	}
}

func hasProblem(l directory.Listing, substr string) bool {
	return slices.ContainsFunc(l.Problems, func(p string) bool { return strings.Contains(p, substr) })
}
