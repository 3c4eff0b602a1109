package registry

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/federation-gateway/gateway/shared/directory"
	"github.com/federation-gateway/gateway/shared/federation"
)

// agentVault speaks the AgentVault registry v1 API: a paged listing of {id, name,
// description} and a details endpoint per card. The listing is cheap and the details are
// not, so a card's details are fetched only when its listing entry changed; a card's
// version is the hash of its listing entry.
type agentVault struct {
	g        *getter
	base     *url.URL
	pageSize int
}

// cardsPath is the v1 listing; a card's details are under it (docs/architecture.md,
// "External contracts").
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

// Fetch implements directory.Source: the listing, the details of the entries that are
// new or changed, and, when the listing is complete, a check of every known card it no
// longer names.
func (a *agentVault) Fetch(ctx context.Context, req directory.Request) (l directory.Listing, err error) {
	s := &session{}
	defer s.finish(&l)
	items, complete, err := a.list(ctx, s)
	if err != nil {
		return l, err
	}
	todo := changedItems(items, req)
	details, err := a.fetchDetails(ctx, s, todo)
	if err != nil {
		return l, err
	}
	drop := map[string]bool{}
	for i, it := range todo {
		d := details[i]
		switch {
		case !d.started:
			l.Deferred++
		case d.err != nil:
			l.Deferred++
			s.problem("card %s deferred: %s", it.id, federation.ErrorMessage(d.err))
		case d.gone:
			drop[it.id] = true
		case d.card != nil:
			l.Cards = append(l.Cards, *d.card)
			if !d.card.Active {
				drop[it.id] = true
			}
		}
	}
	if n := len(todo) - countStarted(details); n > 0 {
		s.problem("%d cards deferred: the run's deadline is near or the registry keeps failing", n)
	}
	l.Listed = make([]string, 0, len(items))
	for _, it := range items {
		if !drop[it.id] {
			l.Listed = append(l.Listed, it.id)
		}
	}
	if complete {
		kept, err := a.confirmAbsent(ctx, s, absentKnown(items, req.Known))
		if err != nil {
			return l, err
		}
		l.Listed = append(l.Listed, kept...)
	}
	l.Complete = complete
	return l, nil
}

// changedItems are the listing entries whose details are to be fetched: new ones, changed
// ones, or all of them on a full refresh.
func changedItems(items []listItem, req directory.Request) []listItem {
	var todo []listItem
	for _, it := range items {
		if v, known := req.Known[it.id]; req.FullRefresh || !known || v != it.hash {
			todo = append(todo, it)
		}
	}
	return todo
}

// detail is the outcome of one card's details request.
type detail struct {
	started bool
	card    *directory.Card // fetched and usable
	gone    bool            // deleted since it was listed
	err     error           // failed: the card is deferred
}

func countStarted(ds []detail) int {
	n := 0
	for _, d := range ds {
		if d.started {
			n++
		}
	}
	return n
}

// fetchDetails fetches the details of the entries, Concurrency at a time, within the
// deadline. An entry whose details are unusable is skipped and counted; one the guard
// refuses fails the whole run.
func (a *agentVault) fetchDetails(ctx context.Context, s *session, todo []listItem) ([]detail, error) {
	out := make([]detail, len(todo))
	started := a.g.fetchEach(ctx, len(todo), func(ctx context.Context, i int) bool {
		c, err := lookupAV(ctx, a.g, s, a.base, todo[i].id)
		switch {
		case federation.ErrorCode(err) == federation.ENOTFOUND:
			out[i].gone = true
		case isUnusable(err):
			s.skip("card %s: %s", todo[i].id, federation.ErrorMessage(err))
		case err != nil:
			out[i].err = err
			return true
		case !isObject(c.Data):
			s.skip("card %s: card_data is not a JSON object", todo[i].id)
		default:
			c.Version = todo[i].hash
			out[i].card = &c
		}
		return false
	})
	errs := make([]error, len(out))
	for i := range out {
		out[i].started = started[i]
		errs[i] = out[i].err
	}
	return out, refused(errs)
}

// absentKnown are the known cards a listing does not name, in a stable order.
func absentKnown(items []listItem, known map[string]string) []string {
	listed := make(map[string]bool, len(items))
	for _, it := range items {
		listed[it.id] = true
	}
	var absent []string
	for id := range known {
		if !listed[id] {
			absent = append(absent, id)
		}
	}
	slices.Sort(absent)
	return absent
}

// confirmAbsent asks for the details of every known card a complete listing does not
// name, and returns those that are to stay listed. Offset paging can miss an entry with
// every sign of completeness intact: one card deleted before the offset and one added
// after it while the listing is read leave the total as it was and shift an entry from
// the next page onto the page already read. Asking for the card by its ID tells a card
// that went (404, or inactive) from one the listing missed (active), which stays listed.
// A card that cannot be asked about within the run stays listed too: it goes next run,
// not on a guess.
func (a *agentVault) confirmAbsent(ctx context.Context, s *session, absent []string) ([]string, error) {
	if len(absent) == 0 {
		return nil, nil
	}
	out := make([]detail, len(absent))
	active := make([]bool, len(absent))
	started := a.g.fetchEach(ctx, len(absent), func(ctx context.Context, i int) bool {
		c, err := lookupAV(ctx, a.g, s, a.base, absent[i])
		switch {
		case federation.ErrorCode(err) == federation.ENOTFOUND, isUnusable(err):
			out[i].gone = true
		case err != nil:
			out[i].err = err
			return true
		default:
			active[i] = c.Active
		}
		return false
	})
	errs := make([]error, len(out))
	for i := range out {
		errs[i] = out[i].err
	}
	if err := refused(errs); err != nil {
		return nil, err
	}
	var kept []string
	missed, unconfirmed := 0, 0
	for i, id := range absent {
		switch {
		case !started[i] || out[i].err != nil:
			unconfirmed++
			kept = append(kept, id)
		case active[i]:
			missed++
			kept = append(kept, id)
		}
	}
	if missed > 0 {
		s.problem("the listing missed %d active cards (it shifted while it was read); they stay listed", missed)
	}
	if unconfirmed > 0 {
		s.problem("%d cards missing from the listing could not be checked; they stay listed until they are", unconfirmed)
	}
	return kept, nil
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

// LookupDID implements directory.Source: AgentVault knows a card by its UUID, and a DID
// names a humanReadableId, so the card is searched for. AgentVault's search matches a
// term in the name or the description (case insensitively), not in the humanReadableId:
// the lookup searches for the whole humanReadableId, then for its agent part ("acme/
// weather-bot": "weather-bot", then "weather bot"), and takes the first candidate whose
// card has exactly that humanReadableId. Only did:agentvault DIDs can be looked up so.
func (a *agentVault) LookupDID(ctx context.Context, did string) (directory.Card, error) {
	return lookupByHumanReadableID(ctx, a.g, a.base, did)
}

// maxLookupCandidates bounds the card details one lookup by DID fetches.
const maxLookupCandidates = 10

// lookupByHumanReadableID is LookupDID for both AgentVault kinds.
func lookupByHumanReadableID(ctx context.Context, g *getter, base *url.URL, did string) (directory.Card, error) {
	hri, ok := strings.CutPrefix(did, agentVaultDID)
	if !ok || hri == "" {
		return directory.Card{}, federation.Errorf(federation.ENOTFOUND, "registry %q: an AgentVault registry is searched by humanReadableId (did:agentvault), not for %s", g.registry, did)
	}
	s := &session{}
	tried := map[string]bool{}
	var failure error
	for _, term := range searchTerms(hri) {
		items, err := search(ctx, g, s, base, term)
		if err != nil {
			if federation.ErrorCode(err) == federation.EINVALID { // refused by the outbound guard
				return directory.Card{}, err
			}
			failure = err
			continue
		}
		for _, it := range rankCandidates(items, hri) {
			if tried[it.ID] || len(tried) == maxLookupCandidates {
				continue
			}
			tried[it.ID] = true
			c, err := lookupAV(ctx, g, s, base, it.ID)
			switch {
			case federation.ErrorCode(err) == federation.ENOTFOUND, isUnusable(err):
				continue
			case err != nil:
				failure = err
				continue
			case !c.Active || !isObject(c.Data):
				continue
			}
			if ids, err := decodeCardIDs(c.Data); err == nil && ids.HumanReadableID == hri {
				c.Version = hashFields(it.ID, it.Name, it.Description) // as Fetch versions it
				return c, nil
			}
		}
	}
	if failure != nil {
		return directory.Card{}, failure
	}
	return directory.Card{}, federation.Errorf(federation.ENOTFOUND, "registry %q: no active card has humanReadableId %q", g.registry, hri)
}

// maxSearchLen is the longest search term AgentVault accepts.
const maxSearchLen = 100

// searchTerms are what a lookup of humanReadableId hri searches for, most specific first.
func searchTerms(hri string) []string {
	agent := hri[strings.LastIndex(hri, "/")+1:]
	spaced := strings.Join(strings.FieldsFunc(agent, func(r rune) bool { return r == '-' || r == '_' || r == '.' }), " ")
	var terms []string
	for _, t := range []string{hri, agent, spaced} {
		if t = strings.TrimSpace(t); t != "" && len(t) <= maxSearchLen && !slices.Contains(terms, t) {
			terms = append(terms, t)
		}
	}
	return terms
}

// rankCandidates puts first the entries whose name, written as a slug, is hri's agent
// part: "Weather Bot" for acme/weather-bot.
func rankCandidates(items []v1Item, hri string) []v1Item {
	agent := strings.ToLower(hri[strings.LastIndex(hri, "/")+1:])
	slug := func(name string) string {
		return strings.Join(strings.FieldsFunc(strings.ToLower(name), func(r rune) bool { return r == ' ' || r == '_' || r == '-' || r == '.' }), "-")
	}
	out := slices.Clone(items)
	slices.SortStableFunc(out, func(x, y v1Item) int {
		xs, ys := slug(x.Name) == agent, slug(y.Name) == agent
		switch {
		case xs && !ys:
			return -1
		case ys && !xs:
			return 1
		}
		return 0
	})
	return out
}

// search returns the first page of the active cards matching term.
func search(ctx context.Context, g *getter, s *session, base *url.URL, term string) ([]v1Item, error) {
	u := endpoint(base, cardsPath, url.Values{
		"skip":        {"0"},
		"limit":       {strconv.Itoa(maxLookupCandidates * 2)},
		"active_only": {"true"},
		"search":      {term},
	})
	resp, err := g.get(ctx, s, u, nil, g.opts.MaxPageBytes)
	if err != nil {
		return nil, err
	}
	if resp.status != http.StatusOK {
		return nil, g.unexpected(u, resp.status)
	}
	page, err := decodeV1Page(resp.body)
	if err != nil {
		return nil, g.decodeError(u, "an AgentVault v1 listing page", err)
	}
	items := page.Items[:0]
	for _, it := range page.Items {
		if validID(it.ID) {
			items = append(items, it)
		}
	}
	return items, nil
}

// lookupAV fetches a card's details from the v1 endpoint, which AgentVault v2 serves too.
func lookupAV(ctx context.Context, g *getter, s *session, base *url.URL, id string) (directory.Card, error) {
	if !validID(id) {
		return directory.Card{}, federation.Errorf(federation.ENOTFOUND, "registry %q: no card %q", g.registry, id)
	}
	u := endpoint(base, cardsPath+url.PathEscape(id), nil)
	resp, err := g.get(ctx, s, u, nil, g.opts.MaxCardBytes)
	if err != nil {
		return directory.Card{}, err
	}
	if resp.status == http.StatusNotFound {
		return directory.Card{}, federation.Errorf(federation.ENOTFOUND, "registry %q: no card %q", g.registry, id)
	}
	if resp.status != http.StatusOK {
		return directory.Card{}, g.unexpected(u, resp.status)
	}
	rec, err := decodeAVCard(resp.body)
	if err != nil {
		return directory.Card{}, g.decodeError(u, "an AgentVault card record", err)
	}
	if rec.ID != "" && rec.ID != id {
		return directory.Card{}, g.decodeError(u, "the card asked for", fmt.Errorf("it is card %q", rec.ID))
	}
	c := directory.Card{SourceID: id, Data: compact(rec.CardData), Active: rec.active()}
	if rec.UpdatedAt != "" {
		if t, err := parseTime(rec.UpdatedAt); err == nil {
			c.UpdatedAt = t
		}
	}
	return c, nil
}
