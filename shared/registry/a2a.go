package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/federation-gateway/gateway/shared/directory"
	"github.com/federation-gateway/gateway/shared/federation"
)

// a2aAgents is a registry made of configured A2A agents, each serving its own card at
// /.well-known/agent-card.json. The configuration is the membership; conditional GETs keep
// an unchanged card from being transferred again.
type a2aAgents struct {
	g      *getter
	agents []a2aAgent
}

type a2aAgent struct {
	id   string   // the configured base URL without a trailing slash: the card's SourceID
	card *url.URL // its agent card
	web  string   // the did:web of the base URL
}

// a2aVersion is the protocol version the gateway speaks (docs/architecture.md, "External
// contracts"); A2A v1.0 agents may serve a different card to a client that does not send
// it.
const a2aVersion = "1.0"

var a2aHeader = http.Header{"A2a-Version": {a2aVersion}}

// Fetch implements directory.Source. The listing is always Complete: an agent stays listed
// when its card could not be fetched (it is deferred, not gone), and only an agent whose
// card is not found is left out. A card's version is its ETag.
func (a *a2aAgents) Fetch(ctx context.Context, req directory.Request) (directory.Listing, error) {
	s := &session{}
	var l directory.Listing
	n := len(a.agents)
	cards := make([]*directory.Card, n)
	gone := make([]bool, n)
	errs := make([]error, n)
	started := a.g.fetchEach(ctx, n, func(ctx context.Context, i int) bool {
		ag := a.agents[i]
		etag := ""
		if !req.FullRefresh {
			etag = req.Known[ag.id]
		}
		c, status, err := a.fetchCard(ctx, s, ag, etag)
		switch {
		case isUnusable(err):
			s.skip("agent %s: %s", ag.id, federation.ErrorMessage(err))
		case err != nil:
			errs[i] = err
			return true
		case status == http.StatusNotFound:
			gone[i] = true
		case status == http.StatusNotModified:
		case !isObject(c.Data):
			s.skip("agent %s: the agent card is not a JSON object", ag.id)
		default:
			cards[i] = &c
		}
		return false
	})
	if err := refused(errs); err != nil {
		s.finish(&l)
		return l, err
	}

	failed := 0
	for i, ag := range a.agents {
		switch {
		case !started[i]:
			l.Deferred++
		case errs[i] != nil:
			failed++
			l.Deferred++
			s.problem("agent %s deferred: %s", ag.id, federation.ErrorMessage(errs[i]))
		case gone[i]:
			s.problem("agent %s: no agent card at %s", ag.id, ag.card.Redacted())
			continue
		case cards[i] != nil:
			l.Cards = append(l.Cards, *cards[i])
		}
		l.Listed = append(l.Listed, ag.id)
	}
	// When no agent answers, the registry is unavailable, not degraded: the sync marks
	// it unhealthy rather than reporting a run that fetched nothing.
	if failed > 0 && failed == countTrue(started) {
		s.finish(&l)
		return l, federation.Wrap(federation.EUNAVAILABLE, errors.Join(errs...), fmt.Sprintf("registry %q: no agent answered", a.g.registry))
	}
	if d := l.Deferred - failed; d > 0 {
		s.problem("%d agents deferred: the run's deadline is near or agents keep failing", d)
	}
	l.Complete = true
	s.finish(&l)
	return l, nil
}

// fetchCard GETs an agent's card, conditionally when etag is set. status is 200, 304 or 404.
func (a *a2aAgents) fetchCard(ctx context.Context, s *session, ag a2aAgent, etag string) (directory.Card, int, error) {
	var h http.Header
	if etag != "" {
		h = http.Header{"If-None-Match": {etag}}
	}
	resp, err := a.g.get(ctx, s, ag.card, h, a.g.opts.MaxCardBytes)
	if err != nil {
		return directory.Card{}, 0, err
	}
	if resp.status != http.StatusOK {
		return directory.Card{}, resp.status, nil
	}
	if err := decodeJSON(resp.body, new(json.RawMessage)); err != nil {
		return directory.Card{}, 0, a.g.decodeError(ag.card, "an A2A agent card", err)
	}
	c := directory.Card{SourceID: ag.id, Data: compact(resp.body), Active: true, Version: resp.header.Get("ETag")}
	if lm, err := http.ParseTime(resp.header.Get("Last-Modified")); err == nil {
		c.UpdatedAt = lm.UTC().Truncate(time.Second)
	}
	return c, http.StatusOK, nil
}

// LookupDID implements directory.Source. Only configured agents are looked up: did comes
// from a caller, and fetching any URL it names would make the lookup an open proxy. A
// did:web is looked for at the configured agents whose base URL it lies under (the
// did:web of a card without a did is its endpoint's); any other DID among the cards of a
// registry of at most maxLookupAgents agents, by the did the card declares.
func (a *a2aAgents) LookupDID(ctx context.Context, did string) (directory.Card, error) {
	var candidates []a2aAgent
	for _, ag := range a.agents {
		if did == ag.web || strings.HasPrefix(did, ag.web+":") {
			candidates = append(candidates, ag)
		}
	}
	// The agent whose base URL is deepest under the DID first.
	slices.SortStableFunc(candidates, func(x, y a2aAgent) int { return len(y.web) - len(x.web) })
	web := len(candidates) > 0
	if !web && !strings.HasPrefix(did, "did:web:") && len(a.agents) <= maxLookupAgents {
		candidates = a.agents
	}
	var errs []error
	for _, ag := range candidates {
		c, status, err := a.fetchCard(ctx, &session{}, ag, "")
		switch {
		case err != nil:
			errs = append(errs, err)
			continue
		case status != http.StatusOK || !isObject(c.Data):
			continue
		}
		ids, err := decodeCardIDs(c.Data)
		if err != nil {
			continue
		}
		if ids.names(did) || (web && ids.DID == "") {
			return c, nil
		}
	}
	if len(errs) > 0 && len(errs) == len(candidates) {
		return directory.Card{}, errs[0]
	}
	return directory.Card{}, federation.Errorf(federation.ENOTFOUND, "registry %q: no configured agent is %s", a.g.registry, did)
}

// maxLookupAgents bounds the cards a lookup by a DID that is not a did:web may fetch.
const maxLookupAgents = 16

// webDID is the did:web of a base URL (W3C did:web: the host, its port percent-encoded,
// and the path's segments joined by ':').
func webDID(u *url.URL) string {
	parts := []string{strings.ReplaceAll(strings.ToLower(u.Host), ":", "%3A")}
	for _, seg := range strings.Split(strings.Trim(u.EscapedPath(), "/"), "/") {
		if seg != "" {
			parts = append(parts, seg)
		}
	}
	return "did:web:" + strings.Join(parts, ":")
}
