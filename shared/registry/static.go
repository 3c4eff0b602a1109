package registry

import (
	"context"
	"net/http"
	"net/url"
	"slices"

	"github.com/federation-gateway/gateway/shared/federation"
)

// staticDocument is a registry published as one JSON document of cards at a URL. The
// document is the unit of change: one conditional GET says whether anything changed.
type staticDocument struct {
	g   *getter
	url *url.URL
}

// Fetch implements Client. A changed document returns every card, each carrying the
// document's ETag, so that the next run can send it back whichever card it reads it from.
func (d *staticDocument) Fetch(ctx context.Context, req Request) (Listing, error) {
	s := &session{}
	var l Listing
	etag := ""
	if !req.FullRefresh {
		etag = documentETag(req.Known)
	}
	var h http.Header
	if etag != "" {
		h = http.Header{"If-None-Match": {etag}}
	}
	resp, err := d.g.get(ctx, s, d.url, h, d.g.opts.MaxPageBytes)
	if err != nil {
		s.finish(&l)
		return l, err
	}
	s.pages = 1
	switch resp.status {
	case http.StatusOK:
	case http.StatusNotModified:
		l.Listed = make([]string, 0, len(req.Known))
		for id := range req.Known {
			l.Listed = append(l.Listed, id)
		}
		slices.Sort(l.Listed)
		l.Complete = true
		s.finish(&l)
		return l, nil
	default:
		s.finish(&l)
		return l, d.g.unexpected(d.url, resp.status)
	}

	cards, err := d.cards(s, resp.body)
	if err != nil {
		s.finish(&l)
		return l, err
	}
	docETag := resp.header.Get("ETag")
	for _, c := range cards {
		c.ETag = docETag
		l.Cards = append(l.Cards, c)
		l.Listed = append(l.Listed, c.SourceID)
	}
	l.Complete = true
	s.finish(&l)
	return l, nil
}

// cards decodes the document, skipping (and counting) the entries that are not usable
// cards; the first of two cards with one ID wins, as a reader of the document would see.
func (d *staticDocument) cards(s *session, body []byte) ([]Card, error) {
	entries, err := decodeStatic(body)
	if err != nil {
		return nil, d.g.decodeError(d.url, `a JSON list of cards, or an object with "agents" or "cards"`, err)
	}
	seen := map[string]bool{}
	cards := make([]Card, 0, len(entries))
	for i, raw := range entries {
		if !isObject(raw) {
			s.skip("entry %d is not a JSON object", i)
			continue
		}
		if int64(len(raw)) > d.g.opts.MaxCardBytes {
			s.skip("entry %d is larger than the limit of %s", i, byteSize(d.g.opts.MaxCardBytes))
			continue
		}
		id, err := staticSourceID(raw)
		if err != nil {
			s.skip("entry %d: %v", i, err)
			continue
		}
		if seen[id] {
			s.skip("entry %d: a second card %q", i, id)
			continue
		}
		seen[id] = true
		data := compact(raw)
		cards = append(cards, Card{SourceID: id, Data: data, Active: true, ListHash: hashFields(id, string(data))})
	}
	return cards, nil
}

// documentETag is the ETag to send back: the one most known cards carry. They all carry
// the same one after a complete run; a card stored from an older document must not make
// every later run download the document again.
func documentETag(known map[string]Known) string {
	counts := map[string]int{}
	for _, k := range known {
		if k.ETag != "" {
			counts[k.ETag]++
		}
	}
	best, n := "", 0
	for etag, c := range counts {
		if c > n || (c == n && etag < best) {
			best, n = etag, c
		}
	}
	return best
}

// Lookup implements Client: the card of that ID in the current document.
func (d *staticDocument) Lookup(ctx context.Context, sourceID string) (Card, error) {
	s := &session{}
	resp, err := d.g.get(ctx, s, d.url, nil, d.g.opts.MaxPageBytes)
	if err != nil {
		return Card{}, err
	}
	if resp.status != http.StatusOK {
		return Card{}, d.g.unexpected(d.url, resp.status)
	}
	cards, err := d.cards(s, resp.body)
	if err != nil {
		return Card{}, err
	}
	for _, c := range cards {
		if c.SourceID == sourceID {
			c.ETag = resp.header.Get("ETag")
			return c, nil
		}
	}
	return Card{}, federation.Errorf(federation.ENOTFOUND, "registry %q: no card %q", d.g.registry, sourceID)
}

// Compile-time checks that every kind is a Client.
var (
	_ Client = (*agentVault)(nil)
	_ Client = (*agentVaultFederation)(nil)
	_ Client = (*a2aAgents)(nil)
	_ Client = (*staticDocument)(nil)
)
