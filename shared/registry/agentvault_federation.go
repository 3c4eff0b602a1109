package registry

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/federation-gateway/gateway/shared/federation"
)

// agentVaultFederation speaks the AgentVault v2 federation API: the cards changed since a
// timestamp, whole records included, so one request per page is all a run costs.
type agentVaultFederation struct {
	g        *getter
	base     *url.URL
	pageSize int
}

const federationPath = "/api/v1/federation/agent-cards"

// cursorOverlap is how far before the newest timestamp seen the next page starts. The API
// does not say whether since is inclusive; starting just before it makes it so either way,
// so cards sharing the boundary timestamp are never lost when a page ends among them, and
// the overlap is removed by ID.
const cursorOverlap = time.Microsecond

// Where a page starts, in units of cursorOverlap from the newest timestamp seen.
const (
	overlap = -1
	at      = 0
	past    = 1
)

// Fetch implements Client. An empty cursor or FullRefresh lists every card and the
// listing is Complete; otherwise only cards changed since the cursor come back.
func (f *agentVaultFederation) Fetch(ctx context.Context, req Request) (Listing, error) {
	s := &session{}
	var l Listing

	var since time.Time
	if req.Cursor != "" && !req.FullRefresh {
		t, err := time.Parse(time.RFC3339Nano, req.Cursor)
		if err != nil {
			s.problem("cursor %q is not a timestamp: listing everything", req.Cursor)
		} else {
			since = t
		}
	}
	full := since.IsZero()
	newest := since
	// A card changed while the listing is read comes back later, newer: its last version
	// is the one kept, or its change would fall behind the cursor and be lost.
	seen := map[string]*seenCard{}
	var order []string
	end := false
	// skip says how the next page starts relative to newest: overlapping it (the rule),
	// at it, or past it. The last two are the ways out when a page's worth of cards share
	// newest, which the overlap would bring back forever, whether since is exclusive (at
	// it moves on) or inclusive (only past it does).
	skip, lossy := overlap, false

	for !end {
		if s.pages >= f.g.opts.MaxPages {
			s.problem("listing stopped after %d pages; the next run continues from the cursor", s.pages)
			break
		}
		// Each page is a unit of progress the cursor keeps, so paging stops, with what it
		// got, when the deadline nears: the next run resumes there.
		if s.pages > 0 && f.g.nearDeadline(ctx) {
			s.problem("listing stopped after %d pages: the run's deadline is near; the next run continues from the cursor", s.pages)
			break
		}
		q := url.Values{"limit": {strconv.Itoa(f.pageSize)}}
		if !newest.IsZero() {
			q.Set("since", newest.Add(time.Duration(skip)*cursorOverlap).Format(time.RFC3339Nano))
		}
		u := endpoint(f.base, federationPath, q)
		resp, err := f.g.get(ctx, s, u, nil, f.g.opts.MaxPageBytes)
		if err != nil {
			s.finish(&l)
			return l, err
		}
		if resp.status != http.StatusOK {
			s.finish(&l)
			return l, f.g.unexpected(u, resp.status)
		}
		records, err := decodeV2Page(resp.body)
		if err != nil {
			s.finish(&l)
			return l, f.g.decodeError(u, "an AgentVault v2 federation page", err)
		}
		s.pages++

		fresh := 0
		before := newest
		ordered := true
		var prev time.Time
		for _, rec := range records {
			if !validID(rec.ID) {
				s.skip("federation record without a usable id (page %d)", s.pages)
				continue
			}
			var updated time.Time
			if rec.UpdatedAt != "" {
				t, err := parseTime(rec.UpdatedAt)
				if err != nil {
					s.problem("card %s: %v", rec.ID, err)
				} else {
					updated = t
				}
			}
			if !updated.IsZero() {
				if updated.Before(prev) {
					ordered = false
				}
				prev = updated
			}
			st := seen[rec.ID]
			if st != nil && !updated.After(st.updated) {
				continue // the overlap, or the same version again
			}
			if st == nil {
				st = &seenCard{}
				seen[rec.ID] = st
				order = append(order, rec.ID)
			}
			fresh++
			if updated.After(newest) {
				newest = updated
			}
			st.updated, st.active, st.card = updated, rec.active(), nil
			if int64(len(rec.CardData)) > f.g.opts.MaxCardBytes {
				s.skip("card %s: card_data is larger than the limit of %s", rec.ID, byteSize(f.g.opts.MaxCardBytes))
				continue
			}
			if !isObject(rec.CardData) {
				if rec.active() {
					s.skip("card %s: card_data is not a JSON object", rec.ID)
					continue
				}
				rec.CardData = nil // an inactive card's record only says it is gone
			}
			data := compact(rec.CardData)
			c := Card{
				SourceID:  rec.ID,
				Data:      data,
				Active:    rec.active(),
				UpdatedAt: updated,
				ListHash:  hashFields(rec.ID, rec.UpdatedAt, strconv.FormatBool(rec.active()), string(data)),
			}
			// The overlap and full refreshes bring back cards the directory already has
			// as they are: only changed ones are returned.
			if k, ok := req.Known[rec.ID]; ok && k.ListHash == c.ListHash && !req.FullRefresh {
				continue
			}
			st.card = &c
		}

		switch {
		case len(records) < f.pageSize:
			end = true
		case !ordered:
			// Paging by since skips cards unless pages come oldest first.
			s.finish(&l)
			return l, federation.Errorf(federation.EUNAVAILABLE, "registry %q: %s: a full page is not ordered by updated_at, so it cannot be paged by since", f.g.registry, f.g.what(u))
		case fresh == 0 && skip < past && !newest.IsZero():
			// The rest of the cards sharing newest cannot be reached by since: they are
			// given up, said so, and the listing goes on after them.
			if skip == overlap {
				s.problem("at least %d cards share updated_at %s: some of them may be missed", f.pageSize, newest.Format(time.RFC3339Nano))
			}
			skip++
			lossy = true
		case fresh == 0:
			// The registry ignores since: asking again would bring the same page.
			s.problem("a full page brought no new cards after %s; listing stopped", newest.Format(time.RFC3339Nano))
			lossy = true
			end = true
		case newest.After(before):
			skip = overlap
		}
	}

	for _, id := range order {
		st := seen[id]
		if st.active {
			l.Listed = append(l.Listed, id)
		}
		if st.card != nil {
			l.Cards = append(l.Cards, *st.card)
		}
	}
	l.Complete = full && end && !lossy
	l.Cursor = cursor(newest, req.Cursor, since)
	s.finish(&l)
	return l, nil
}

// seenCard is the last version of a card read in this run.
type seenCard struct {
	updated time.Time
	active  bool
	card    *Card // nil when not returned: unchanged, or unusable
}

// cursor keeps the caller's cursor text when nothing newer was seen, so a run with no
// changes stores what it was given.
func cursor(newest time.Time, given string, since time.Time) string {
	switch {
	case newest.IsZero():
		return given
	case newest.Equal(since):
		return given
	default:
		return newest.UTC().Format(time.RFC3339Nano)
	}
}

// Lookup implements Client through the v1 details endpoint, which an AgentVault v2
// registry serves as well.
func (f *agentVaultFederation) Lookup(ctx context.Context, sourceID string) (Card, error) {
	return lookupAVCard(ctx, f.g, f.base, sourceID)
}
