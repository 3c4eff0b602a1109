package registry

import (
	"context"
	"net/http"
	"net/url"
	"slices"

	"github.com/federation-gateway/gateway/shared/directory"
	"github.com/federation-gateway/gateway/shared/federation"
)

// staticDocument is a registry published as one JSON document of cards at a URL. The
// document is the unit of change: one conditional GET says whether anything changed.
type staticDocument struct {
	g   *getter
	url *url.URL
}

// Fetch implements directory.Source. A changed document returns every card, each carrying
// the document's ETag as its version, so that the next run can send it back whichever
// card it reads it from.
func (d *staticDocument) Fetch(ctx context.Context, req directory.Request) (directory.Listing, error) {
	s := &session{}
	var l directory.Listing
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
		c.Version = docETag
		l.Cards = append(l.Cards, c.Card)
		l.Listed = append(l.Listed, c.SourceID)
	}
	l.Complete = true
	s.finish(&l)
	return l, nil
}

// cards decodes the document, skipping (and counting) the entries that are not usable
// cards; the first of two cards with one ID wins, as a reader of the document would see.
func (d *staticDocument) cards(s *session, body []byte) ([]staticCard, error) {
	entries, err := decodeStatic(body)
	if err != nil {
		return nil, d.g.decodeError(d.url, `a JSON list of cards, or an object with "agents" or "cards"`, err)
	}
	seen := map[string]bool{}
	cards := make([]staticCard, 0, len(entries))
	for i, raw := range entries {
		if !isObject(raw) {
			s.skip("entry %d is not a JSON object", i)
			continue
		}
		if int64(len(raw)) > d.g.opts.MaxCardBytes {
			s.skip("entry %d is larger than the limit of %s", i, byteSize(d.g.opts.MaxCardBytes))
			continue
		}
		ids, err := decodeCardIDs(raw)
		if err != nil {
			s.skip("entry %d: %v", i, err)
			continue
		}
		id, err := ids.staticSourceID()
		if err != nil {
			s.skip("entry %d: %v", i, err)
			continue
		}
		if seen[id] {
			s.skip("entry %d: a second card %q", i, id)
			continue
		}
		seen[id] = true
		cards = append(cards, staticCard{Card: directory.Card{SourceID: id, Data: compact(raw), Active: true}, ids: ids})
	}
	return cards, nil
}

// staticCard is a card of the document with the IDs it names.
type staticCard struct {
	directory.Card
	ids cardIDs
}

// documentETag is the ETag to send back: the version most known cards carry. They all
// carry the same one after a complete run; a card stored from an older document must not
// make every later run download the document again.
func documentETag(known map[string]string) string {
	counts := map[string]int{}
	for _, etag := range known {
		if etag != "" {
			counts[etag]++
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

// LookupDID implements directory.Source: the card of the current document that names did
// as its did, or as the did:agentvault of its humanReadableId.
func (d *staticDocument) LookupDID(ctx context.Context, did string) (directory.Card, error) {
	s := &session{}
	resp, err := d.g.get(ctx, s, d.url, nil, d.g.opts.MaxPageBytes)
	if err != nil {
		return directory.Card{}, err
	}
	if resp.status != http.StatusOK {
		return directory.Card{}, d.g.unexpected(d.url, resp.status)
	}
	cards, err := d.cards(s, resp.body)
	if err != nil {
		return directory.Card{}, err
	}
	for _, c := range cards {
		if c.ids.names(did) {
			c.Version = resp.header.Get("ETag")
			return c.Card, nil
		}
	}
	return directory.Card{}, federation.Errorf(federation.ENOTFOUND, "registry %q: no card names %s", d.g.registry, did)
}
