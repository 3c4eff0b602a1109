package registry

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/federation-gateway/gateway/shared/federation"
)

// agentVault speaks the AgentVault registry v1 API: a paged listing of {id, name,
// description} and a details endpoint per card. The listing is cheap and the details are
// not, so a card's details are fetched only when its listing entry changed.
type agentVault struct {
	g        *getter
	base     *url.URL
	pageSize int
}

// cardsPath is the v1 listing; a card's details are under it (DESIGN §6).
const cardsPath = "/api/v1/agent-cards/"

func endpoint(base *url.URL, escapedPath string, query url.Values) *url.URL {
	u := *base
	u.RawPath = strings.TrimRight(base.EscapedPath(), "/") + escapedPath
	u.Path, _ = url.PathUnescape(u.RawPath)
	u.RawQuery = query.Encode()
	return &u
}

// listItem is a listing entry with the hash the detail cache compares.
type listItem struct {
	id, hash string
}

// Fetch implements Client.
func (a *agentVault) Fetch(ctx context.Context, req Request) (Listing, error) {
	s := &session{}
	var l Listing
	items, complete, err := a.list(ctx, s)
	if err != nil {
		s.finish(&l)
		return l, err
	}

	var todo []listItem
	for _, it := range items {
		k, known := req.Known[it.id]
		if req.FullRefresh || !known || k.ListHash != it.hash {
			todo = append(todo, it)
		}
	}
	cards := make([]*Card, len(todo))
	gone := make([]bool, len(todo))
	errs := make([]error, len(todo))
	started := a.g.fetchEach(ctx, len(todo), func(ctx context.Context, i int) bool {
		c, err := lookupAV(ctx, a.g, s, a.base, todo[i].id)
		switch {
		case federation.ErrorCode(err) == federation.ENOTFOUND:
			gone[i] = true // deleted since it was listed
		case isUnusable(err):
			s.skip("card %s: %s", todo[i].id, federation.ErrorMessage(err))
		case err != nil:
			errs[i] = err
			return true
		case !isObject(c.Data):
			s.skip("card %s: card_data is not a JSON object", todo[i].id)
		default:
			c.ListHash = todo[i].hash
			cards[i] = &c
		}
		return false
	})
	if err := refused(errs); err != nil {
		s.finish(&l)
		return l, err
	}

	drop := map[string]bool{}
	for i, it := range todo {
		switch {
		case !started[i]:
			l.Deferred++
		case errs[i] != nil:
			l.Deferred++
			s.problem("card %s deferred: %s", it.id, federation.ErrorMessage(errs[i]))
		case gone[i]:
			drop[it.id] = true
		case cards[i] != nil:
			l.Cards = append(l.Cards, *cards[i])
			if !cards[i].Active {
				drop[it.id] = true
			}
		}
	}
	if n := len(todo) - countTrue(started); n > 0 {
		s.problem("%d cards deferred: the run's deadline is near or the registry keeps failing", n)
	}
	l.Listed = make([]string, 0, len(items))
	for _, it := range items {
		if !drop[it.id] {
			l.Listed = append(l.Listed, it.id)
		}
	}
	l.Complete = complete
	s.finish(&l)
	return l, nil
}

// list reads the whole listing. complete says it can be trusted as the registry's
// membership: offset paging of a listing that changes while it is read can skip entries
// (a deletion before the offset shifts one past it), so any sign of change (a different
// total, an entry seen twice, fewer entries than the total) makes it incomplete, and the
// sync then removes nothing on its strength.
func (a *agentVault) list(ctx context.Context, s *session) (items []listItem, complete bool, err error) {
	seen := map[string]bool{}
	maxPages := a.g.opts.MaxPages
	total := -1
	changed := false
	dups := 0
	for skip := 0; ; {
		if s.pages >= maxPages {
			s.problem("listing stopped after %d pages before its end", s.pages)
			return items, false, nil
		}
		u := endpoint(a.base, cardsPath, url.Values{
			"skip":        {strconv.Itoa(skip)},
			"limit":       {strconv.Itoa(a.pageSize)},
			"active_only": {"true"},
		})
		resp, err := a.g.get(ctx, s, u, nil, a.g.opts.MaxPageBytes)
		if err != nil {
			return nil, false, err
		}
		if resp.status != http.StatusOK {
			return nil, false, a.g.unexpected(u, resp.status)
		}
		page, err := decodeV1Page(resp.body)
		if err != nil {
			return nil, false, a.g.decodeError(u, "an AgentVault v1 listing page", err)
		}
		s.pages++

		limit := a.pageSize
		if p := page.Pagination; p != nil {
			if p.Limit != nil && *p.Limit > 0 && *p.Limit < limit {
				limit = *p.Limit // the registry serves smaller pages than asked
			}
			if p.TotalItems != nil {
				if total >= 0 && *p.TotalItems != total {
					changed = true
				}
				total = *p.TotalItems
			}
			if s.pages == 1 {
				// A listing whose end keeps moving must still end: a few pages past the
				// announced end are allowed for entries added meanwhile, no more.
				switch {
				case p.TotalPages != nil && *p.TotalPages >= 0 && *p.TotalPages < maxPages:
					maxPages = *p.TotalPages + 2
				case p.TotalItems != nil && *p.TotalItems >= 0:
					maxPages = min(maxPages, *p.TotalItems/limit+3) // ceil, +2, without overflow
				}
			}
		}

		fresh := 0
		for _, it := range page.Items {
			if !validID(it.ID) {
				s.skip("listing entry without a usable id (page %d)", s.pages)
				continue
			}
			if seen[it.ID] {
				dups++
				continue
			}
			seen[it.ID] = true
			fresh++
			items = append(items, listItem{id: it.ID, hash: hashFields(it.ID, it.Name, it.Description)})
		}

		end := len(page.Items) < limit || // an empty or short page
			(total >= 0 && skip+len(page.Items) >= total) // the announced total: the next page would be empty
		if end {
			break
		}
		if fresh == 0 {
			s.problem("a full listing page brought no new entries at skip=%d; the registry may ignore skip", skip)
			return items, false, nil
		}
		skip += len(page.Items)
	}

	switch {
	case changed:
		s.problem("the listing changed while it was read (total_items moved); nothing is removed this run")
	case dups > 0:
		s.problem("the listing shifted while it was read (%d entries seen twice); nothing is removed this run", dups)
	case total >= 0 && len(seen) < total:
		s.problem("the listing named %d entries of the %d it announced; nothing is removed this run", len(seen), total)
	default:
		return items, true, nil
	}
	return items, false, nil
}

// Lookup implements Client.
func (a *agentVault) Lookup(ctx context.Context, sourceID string) (Card, error) {
	return lookupAVCard(ctx, a.g, a.base, sourceID)
}

// lookupAVCard is Lookup for both AgentVault kinds: a card whose document is not an
// object is the registry breaking its contract.
func lookupAVCard(ctx context.Context, g *getter, base *url.URL, id string) (Card, error) {
	c, err := lookupAV(ctx, g, &session{}, base, id)
	if err != nil {
		return Card{}, err
	}
	if !isObject(c.Data) {
		return Card{}, federation.Errorf(federation.EUNAVAILABLE, "registry %q: card %q: card_data is not a JSON object", g.registry, id)
	}
	return c, nil
}

// lookupAV fetches a card's details from the v1 endpoint, which AgentVault v2 serves too.
func lookupAV(ctx context.Context, g *getter, s *session, base *url.URL, id string) (Card, error) {
	if !validID(id) {
		return Card{}, federation.Errorf(federation.ENOTFOUND, "registry %q: no card %q", g.registry, id)
	}
	u := endpoint(base, cardsPath+url.PathEscape(id), nil)
	resp, err := g.get(ctx, s, u, nil, g.opts.MaxCardBytes)
	if err != nil {
		return Card{}, err
	}
	if resp.status == http.StatusNotFound {
		return Card{}, federation.Errorf(federation.ENOTFOUND, "registry %q: no card %q", g.registry, id)
	}
	if resp.status != http.StatusOK {
		return Card{}, g.unexpected(u, resp.status)
	}
	rec, err := decodeAVCard(resp.body)
	if err != nil {
		return Card{}, g.decodeError(u, "an AgentVault card record", err)
	}
	if rec.ID != "" && rec.ID != id {
		return Card{}, g.decodeError(u, "the card asked for", fmt.Errorf("it is card %q", rec.ID))
	}
	c := Card{SourceID: id, Data: compact(rec.CardData), Active: rec.active(), ETag: resp.header.Get("ETag")}
	if rec.UpdatedAt != "" {
		if t, err := parseTime(rec.UpdatedAt); err == nil {
			c.UpdatedAt = t
		}
	}
	return c, nil
}

func countTrue(bs []bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}
