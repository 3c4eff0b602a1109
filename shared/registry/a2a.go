package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/federation-gateway/gateway/shared/federation"
)

// a2aAgents is a registry made of configured A2A agents, each serving its own card at
// /.well-known/agent-card.json. The configuration is the membership; conditional GETs keep
// an unchanged card from being transferred again.
type a2aAgents struct {
	g      *getter
	agents []a2aAgent
	byID   map[string]int
}

type a2aAgent struct {
	id   string   // the configured base URL without a trailing slash: the card's SourceID
	card *url.URL // its agent card
}

// a2aVersion is the protocol version the gateway speaks (DESIGN §6); A2A v1.0 agents may
// serve a different card to a client that does not send it.
const a2aVersion = "1.0"

var a2aHeader = http.Header{"A2a-Version": {a2aVersion}}

// Fetch implements Client. The listing is always Complete: an agent stays listed when its
// card could not be fetched (it is deferred, not gone), and only an agent whose card is
// not found is left out.
func (a *a2aAgents) Fetch(ctx context.Context, req Request) (Listing, error) {
	s := &session{}
	var l Listing
	n := len(a.agents)
	cards := make([]*Card, n)
	gone := make([]bool, n)
	errs := make([]error, n)
	started := a.g.fetchEach(ctx, n, func(ctx context.Context, i int) bool {
		ag := a.agents[i]
		etag := ""
		if !req.FullRefresh {
			etag = req.Known[ag.id].ETag
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
func (a *a2aAgents) fetchCard(ctx context.Context, s *session, ag a2aAgent, etag string) (Card, int, error) {
	var h http.Header
	if etag != "" {
		h = http.Header{"If-None-Match": {etag}}
	}
	resp, err := a.g.get(ctx, s, ag.card, h, a.g.opts.MaxCardBytes)
	if err != nil {
		return Card{}, 0, err
	}
	if resp.status != http.StatusOK {
		return Card{}, resp.status, nil
	}
	if err := decodeJSON(resp.body, new(json.RawMessage)); err != nil {
		return Card{}, 0, a.g.decodeError(ag.card, "an A2A agent card", err)
	}
	c := Card{SourceID: ag.id, Data: compact(resp.body), Active: true, ETag: resp.header.Get("ETag")}
	if lm, err := http.ParseTime(resp.header.Get("Last-Modified")); err == nil {
		c.UpdatedAt = lm.UTC().Truncate(time.Second)
	}
	return c, http.StatusOK, nil
}

// Lookup implements Client. Only configured agents are looked up: sourceID may come from
// a caller, and fetching any URL it names would make Lookup an open proxy.
func (a *a2aAgents) Lookup(ctx context.Context, sourceID string) (Card, error) {
	i, ok := a.byID[sourceID]
	if !ok {
		return Card{}, federation.Errorf(federation.ENOTFOUND, "registry %q: no agent %q", a.g.registry, sourceID)
	}
	ag := a.agents[i]
	c, status, err := a.fetchCard(ctx, &session{}, ag, "")
	switch {
	case err != nil:
		return Card{}, err
	case status == http.StatusNotFound:
		return Card{}, federation.Errorf(federation.ENOTFOUND, "registry %q: agent %s has no agent card", a.g.registry, ag.id)
	case status != http.StatusOK:
		return Card{}, a.g.unexpected(ag.card, status)
	case !isObject(c.Data):
		return Card{}, federation.Errorf(federation.EUNAVAILABLE, "registry %q: agent %s: the agent card is not a JSON object", a.g.registry, ag.id)
	}
	return c, nil
}
