package registry

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/federation-gateway/gateway/shared/directory"
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

// Fetch implements directory.Source. An empty cursor or FullRefresh lists every card and
// the listing is Complete; otherwise only cards changed since the cursor come back. A
// card's version is the hash of its record.
func (f *agentVaultFederation) Fetch(ctx context.Context, req directory.Request) (l directory.Listing, err error) {
	s := &session{}
	defer s.finish(&l)
	p := newPaging(s, req)
	for !p.end {
		if !f.mayReadPage(ctx, s) {
			break
		}
		u := endpoint(f.base, federationPath, p.query(f.pageSize))
		records, err := f.readPage(ctx, s, u)
		if err != nil {
			return l, err
		}
		fresh, ordered := p.take(records, req, f.g.opts.MaxCardBytes)
		if err := p.advance(len(records) < f.pageSize, fresh, ordered); err != nil {
			return l, federation.Errorf(federation.EUNAVAILABLE, "registry %q: %s: %v", f.g.registry, f.g.what(u), err)
		}
	}
	p.result(&l, req.Cursor)
	return l, nil
}

// mayReadPage says whether another page is to be read: not past MaxPages, and, after the
// first, not when the deadline is near. Each page is a unit of progress the cursor keeps,
// so paging stops with what it got and the next run resumes there.
func (f *agentVaultFederation) mayReadPage(ctx context.Context, s *session) bool {
	switch {
	case s.pages >= f.g.opts.MaxPages:
		s.problem("listing stopped after %d pages; the next run continues from the cursor", s.pages)
		return false
	case s.pages > 0 && f.g.nearDeadline(ctx):
		s.problem("listing stopped after %d pages: the run's deadline is near; the next run continues from the cursor", s.pages)
		return false
	}
	return true
}

// readPage GETs and decodes one page of the federation listing.
func (f *agentVaultFederation) readPage(ctx context.Context, s *session, u *url.URL) ([]avCard, error) {
	resp, err := f.g.get(ctx, s, u, nil, f.g.opts.MaxPageBytes)
	if err != nil {
		return nil, err
	}
	if resp.status != http.StatusOK {
		return nil, f.g.unexpected(u, resp.status)
	}
	records, err := decodeV2Page(resp.body)
	if err != nil {
		return nil, f.g.decodeError(u, "an AgentVault v2 federation page", err)
	}
	s.pages++
	return records, nil
}

// paging is the state of one Fetch's walk through the federation listing by since.
type paging struct {
	s    *session
	full bool // listing everything, not what changed since a cursor
	// since is the cursor the run started from; newest the newest updated_at seen.
	since, newest time.Time
	// seen holds the last version of each card read, in first-seen order: a card changed
	// while the listing is read comes back later, newer, and that version is the one
	// kept, or its change would fall behind the cursor and be lost.
	seen  map[string]*seenCard
	order []string
	// skip says how the next page starts relative to newest: overlapping it (the rule),
	// at it, or past it. The last two are the ways out when a page's worth of cards share
	// newest, which the overlap would bring back forever, whether since is exclusive (at
	// it moves on) or inclusive (only past it does).
	skip  int
	lossy bool // cards may have been given up
	end   bool
}

func newPaging(s *session, req directory.Request) *paging {
	p := &paging{s: s, seen: map[string]*seenCard{}, skip: overlap}
	if req.Cursor != "" && !req.FullRefresh {
		t, err := time.Parse(time.RFC3339Nano, req.Cursor)
		if err != nil {
			s.problem("cursor %q is not a timestamp: listing everything", req.Cursor)
		} else {
			p.since = t
		}
	}
	p.full, p.newest = p.since.IsZero(), p.since
	return p
}

// query is the next page's query.
func (p *paging) query(pageSize int) url.Values {
	q := url.Values{"limit": {strconv.Itoa(pageSize)}}
	if !p.newest.IsZero() {
		q.Set("since", p.newest.Add(time.Duration(p.skip)*cursorOverlap).Format(time.RFC3339Nano))
	}
	return q
}

// take records a page's cards, and says how many were new to this run and whether the
// page came oldest first.
func (p *paging) take(records []avCard, req directory.Request, maxCardBytes int64) (fresh int, ordered bool) {
	ordered = true
	var prev time.Time
	for _, rec := range records {
		if !validID(rec.ID) {
			p.s.skip("federation record without a usable id (page %d)", p.s.pages)
			continue
		}
		updated := p.updatedAt(rec)
		if !updated.IsZero() {
			if updated.Before(prev) {
				ordered = false
			}
			prev = updated
		}
		st := p.seen[rec.ID]
		if st != nil && !updated.After(st.updated) {
			continue // the overlap, or the same version again
		}
		if st == nil {
			st = &seenCard{}
			p.seen[rec.ID] = st
			p.order = append(p.order, rec.ID)
		}
		fresh++
		if updated.After(p.newest) {
			p.newest = updated
		}
		st.updated, st.active, st.card = updated, rec.active(), p.card(rec, updated, maxCardBytes)
		// The overlap and full refreshes bring back cards the directory already has as
		// they are: only changed ones are returned.
		if v, known := req.Known[rec.ID]; known && st.card != nil && !req.FullRefresh && v == st.card.Version {
			st.card = nil
		}
	}
	return fresh, ordered
}

// updatedAt is the record's updated_at, zero when it has none or an unreadable one.
func (p *paging) updatedAt(rec avCard) time.Time {
	if rec.UpdatedAt == "" {
		return time.Time{}
	}
	t, err := parseTime(rec.UpdatedAt)
	if err != nil {
		p.s.problem("card %s: %v", rec.ID, err)
		return time.Time{}
	}
	return t
}

// card is the record as a card, nil when it is unusable (skipped and counted).
func (p *paging) card(rec avCard, updated time.Time, maxCardBytes int64) *directory.Card {
	if int64(len(rec.CardData)) > maxCardBytes {
		p.s.skip("card %s: card_data is larger than the limit of %s", rec.ID, byteSize(maxCardBytes))
		return nil
	}
	if !isObject(rec.CardData) {
		if rec.active() {
			p.s.skip("card %s: card_data is not a JSON object", rec.ID)
			return nil
		}
		rec.CardData = nil // an inactive card's record only says it is gone
	}
	data := compact(rec.CardData)
	return &directory.Card{
		SourceID:  rec.ID,
		Data:      data,
		Active:    rec.active(),
		UpdatedAt: updated,
		Version:   hashFields(rec.ID, rec.UpdatedAt, strconv.FormatBool(rec.active()), string(data)),
	}
}

// advance decides where the next page starts, or that the listing ended. A full page out
// of updated_at order cannot be paged by since: that is an error.
func (p *paging) advance(short bool, fresh int, ordered bool) error {
	switch {
	case short:
		p.end = true
	case !ordered:
		return errors.New("a full page is not ordered by updated_at, so it cannot be paged by since")
	case fresh == 0 && p.skip < past && !p.newest.IsZero():
		// The rest of the cards sharing newest cannot be reached by since: they are given
		// up, said so, and the listing goes on after them.
		if p.skip == overlap {
			p.s.problem("at least a page of cards share updated_at %s: some of them may be missed", p.newest.Format(time.RFC3339Nano))
		}
		p.skip++
		p.lossy = true
	case fresh == 0:
		// The registry ignores since: asking again would bring the same page.
		p.s.problem("a full page brought no new cards after %s; listing stopped", p.newest.Format(time.RFC3339Nano))
		p.lossy, p.end = true, true
	default:
		p.skip = overlap
	}
	return nil
}

// result fills the listing from what was read.
func (p *paging) result(l *directory.Listing, givenCursor string) {
	for _, id := range p.order {
		st := p.seen[id]
		if st.active {
			l.Listed = append(l.Listed, id)
		}
		if st.card != nil {
			l.Cards = append(l.Cards, *st.card)
		}
	}
	l.Complete = p.full && p.end && !p.lossy
	l.Cursor = cursor(p.newest, givenCursor, p.since)
}

// seenCard is the last version of a card read in this run.
type seenCard struct {
	updated time.Time
	active  bool
	card    *directory.Card // nil when not returned: unchanged, or unusable
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

// LookupDID implements directory.Source through the v1 API, which an AgentVault v2
// registry serves as well: see agentVault.LookupDID.
func (f *agentVaultFederation) LookupDID(ctx context.Context, did string) (directory.Card, error) {
	return lookupByHumanReadableID(ctx, f.g, f.base, did)
}
