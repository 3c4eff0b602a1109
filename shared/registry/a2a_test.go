package registry_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/federation-gateway/gateway/shared/directory"
	"github.com/federation-gateway/gateway/shared/federation"
)

// fakeAgent is an A2A agent serving its card at /.well-known/agent-card.json with an ETag.
type fakeAgent struct {
	mu       sync.Mutex
	status   int    // answered instead of the card when set
	body     string // the card
	etag     string
	requests []http.Header
}

func (a *fakeAgent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.requests = append(a.requests, r.Header.Clone())
	switch {
	case r.URL.Path != "/.well-known/agent-card.json":
		http.NotFound(w, r)
	case a.status != 0:
		w.WriteHeader(a.status)
	case a.etag != "" && r.Header.Get("If-None-Match") == a.etag:
		w.WriteHeader(http.StatusNotModified)
	default:
		w.Header().Set("ETag", a.etag)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, a.body)
	}
}

func (a *fakeAgent) seen() []http.Header {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.requests)
}

func startAgent(t *testing.T, a *fakeAgent) string {
	t.Helper()
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	return srv.URL
}

func agentCard(name string) string {
	return fmt.Sprintf(`{"name": %q, "description": "an agent", "version": "1.0.0",
		"supportedInterfaces": [{"url": "https://agents.example.com/a2a", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}],
		"capabilities": {}, "skills": [{"id": "s", "name": "S", "description": "d", "tags": ["t"]}]}`, name)
}

func a2aRegistry(agents ...string) federation.Registry {
	return federation.Registry{ID: "agents", Kind: federation.KindA2A, Agents: agents}
}

func TestA2AFetch(t *testing.T) {
	one := &fakeAgent{body: agentCard("one"), etag: `"v1"`}
	two := &fakeAgent{body: agentCard("two"), etag: `"w1"`}
	urlOne, urlTwo := startAgent(t, one), startAgent(t, two)
	c := newClient(t, a2aRegistry(urlOne+"/", urlTwo), testOptions())

	first := fetch(t, c, directory.Request{})
	if got := sourceIDs(first.Cards); !slices.Equal(got, []string{urlOne, urlTwo}) {
		t.Fatalf("Cards = %v", got)
	}
	if first.Cards[0].Version != `"v1"` || !first.Cards[0].Active || !first.Complete || first.Requests != 2 || first.Pages != 0 {
		t.Errorf("first run: %+v", first)
	}
	if v := one.seen()[0].Get("A2A-Version"); v != "1.0" {
		t.Errorf("A2A-Version = %q", v)
	}

	// Unchanged cards: 304s, listed but not fetched. The second agent's card changed.
	two.mu.Lock()
	two.body, two.etag = agentCard("two, renamed"), `"w2"`
	two.mu.Unlock()
	second := fetch(t, c, directory.Request{Known: knownFrom(first, nil)})
	if got := sourceIDs(second.Cards); !slices.Equal(got, []string{urlTwo}) || second.Cards[0].Version != `"w2"` {
		t.Errorf("second run: Cards %v", second.Cards)
	}
	if !slices.Equal(second.Listed, []string{urlOne, urlTwo}) || !second.Complete {
		t.Errorf("second run: Listed %v, Complete %v", second.Listed, second.Complete)
	}
	if got := one.seen()[1].Get("If-None-Match"); got != `"v1"` {
		t.Errorf("If-None-Match = %q", got)
	}

	full := fetch(t, c, directory.Request{Known: knownFrom(second, knownFrom(first, nil)), FullRefresh: true})
	if len(full.Cards) != 2 {
		t.Errorf("FullRefresh fetched %d cards", len(full.Cards))
	}
}

func TestA2AAgentFailures(t *testing.T) {
	ok := &fakeAgent{body: agentCard("ok")}
	gone := &fakeAgent{status: http.StatusNotFound}
	down := &fakeAgent{status: http.StatusServiceUnavailable}
	notObject := &fakeAgent{body: `["a", "list"]`}
	urls := []string{startAgent(t, ok), startAgent(t, gone), startAgent(t, down), startAgent(t, notObject)}
	opts := testOptions()
	opts.Retries = 1
	l := fetch(t, newClient(t, a2aRegistry(urls...), opts), directory.Request{})

	if got := sourceIDs(l.Cards); !slices.Equal(got, urls[:1]) {
		t.Errorf("Cards = %v", got)
	}
	// The agent without a card is gone; the failing one is deferred and stays listed.
	if !slices.Equal(l.Listed, []string{urls[0], urls[2], urls[3]}) || !l.Complete {
		t.Errorf("Listed %v, Complete %v", l.Listed, l.Complete)
	}
	if l.Deferred != 1 || l.Skipped != 1 || len(down.seen()) != 2 {
		t.Errorf("Deferred %d, Skipped %d, %d requests to the failing agent", l.Deferred, l.Skipped, len(down.seen()))
	}
	if !hasProblem(l, urls[2]) || !hasProblem(l, "503") {
		t.Errorf("Problems = %q", l.Problems)
	}
}

func TestA2ANoAgentAnswers(t *testing.T) {
	down := &fakeAgent{status: http.StatusBadGateway}
	opts := testOptions()
	opts.Retries = -1
	_, err := newClient(t, a2aRegistry(startAgent(t, down), startAgent(t, down)), opts).Fetch(context.Background(), directory.Request{})
	wantCode(t, err, federation.EUNAVAILABLE, `"agents"`, "no agent answered", "502")
}

func TestA2AMalformedCard(t *testing.T) {
	bad := &fakeAgent{body: `{"name": "cut`}
	u := startAgent(t, bad)
	c := newClient(t, a2aRegistry(u), testOptions())
	l := fetch(t, c, directory.Request{})
	if l.Skipped != 1 || len(l.Cards) != 0 || !slices.Equal(l.Listed, []string{u}) {
		t.Errorf("Skipped %d, Cards %d, Listed %v", l.Skipped, len(l.Cards), l.Listed)
	}
	_, err := c.LookupDID(context.Background(), webDIDOf(t, u))
	wantCode(t, err, federation.EUNAVAILABLE, `"agents"`, u+"/.well-known/agent-card.json", "not an A2A agent card")
}

// webDIDOf is the did:web of a test server's base URL.
func webDIDOf(t *testing.T, base string) string {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	return "did:web:" + strings.ReplaceAll(u.Host, ":", "%3A") + strings.ReplaceAll(strings.TrimRight(u.Path, "/"), "/", ":")
}

func TestA2ALookupDID(t *testing.T) {
	ok := &fakeAgent{body: agentCard("ok"), etag: `"x"`}
	gone := &fakeAgent{status: http.StatusNotFound}
	declared := &fakeAgent{body: `{"name": "declared", "did": "did:key:z6MkDeclared", "url": "https://agents.example.com/d"}`}
	urlOK, urlGone, urlDeclared := startAgent(t, ok), startAgent(t, gone), startAgent(t, declared)
	c := newClient(t, a2aRegistry(urlOK, urlGone, urlDeclared), testOptions())

	// A did:web under a configured agent's base URL (its card's endpoint is the DID).
	card, err := c.LookupDID(context.Background(), webDIDOf(t, urlOK)+":a2a")
	if err != nil || card.SourceID != urlOK || card.Version != `"x"` {
		t.Fatalf("LookupDID(did:web) = %+v, %v", card, err)
	}
	_, err = c.LookupDID(context.Background(), webDIDOf(t, urlGone))
	wantCode(t, err, federation.ENOTFOUND)
	// A DID the card declares.
	card, err = c.LookupDID(context.Background(), "did:key:z6MkDeclared")
	if err != nil || card.SourceID != urlDeclared {
		t.Fatalf("LookupDID(declared did) = %+v, %v", card, err)
	}

	// An agent that is not configured is not fetched, whatever its did:web.
	stranger := &fakeAgent{body: agentCard("stranger")}
	urlStranger := startAgent(t, stranger)
	_, err = c.LookupDID(context.Background(), webDIDOf(t, urlStranger))
	wantCode(t, err, federation.ENOTFOUND)
	if len(stranger.seen()) != 0 {
		t.Errorf("LookupDID fetched an agent that is not configured")
	}
}
