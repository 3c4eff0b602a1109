package directory

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/federation-gateway/gateway/shared/federation"
)

// Discovery limits.
const (
	DefaultLimit   = 50
	MaxLimit       = 200
	maxFilterLen   = 100
	maxTextLen     = 200
	maxCapabilites = 10
	// maxReadPerPage bounds the items one page may read when post-filters (q, a second
	// capability) reject most candidates: the page then ends early with a cursor.
	maxReadPerPage = 2000
)

// Query is a discovery request. Every filter given must match.
type Query struct {
	ServiceType  string   `json:"service_type,omitempty"`
	Capabilities []string `json:"capability,omitempty"`
	Tag          string   `json:"tag,omitempty"`
	Registry     string   `json:"registry,omitempty"`
	Text         string   `json:"q,omitempty"`      // case-insensitive substring of name or description
	Status       string   `json:"status,omitempty"` // default active
	Limit        int      `json:"-"`                // default 50, at most 200
	Cursor       string   `json:"-"`                // from the previous page
}

// Page is one page of discovery results, in DID order within the index the query uses.
type Page struct {
	Results    []federation.Agent
	NextCursor string // "" on the last page
	// Registries are the registries searched: all configured ones, or the one asked for.
	Registries []string
	// ItemsRead counts the table items read for the page.
	ItemsRead int
}

// DiscoverStore is the storage discovery reads.
type DiscoverStore interface {
	// FacetCounts returns how many agents of the registries each facet key indexes.
	// Errors: EINTERNAL, EUNAVAILABLE.
	FacetCounts(ctx context.Context, registries, keys []string) (map[string]int, error)
	// QueryFacet returns up to limit DIDs indexed under facet after the DID after, in DID
	// order, and the number of items read. Errors: EINTERNAL, EUNAVAILABLE.
	QueryFacet(ctx context.Context, facet, after string, limit int) ([]string, int, error)
	// Agents returns the records of those DIDs that exist. Errors: EINTERNAL, EUNAVAILABLE.
	Agents(ctx context.Context, dids []string) ([]federation.Agent, error)
}

// Discoverer answers discovery queries with indexed reads only: it queries the facet
// index of the query's most selective filter and checks the other filters on the records
// it reads.
type Discoverer struct {
	store      DiscoverStore
	registries []string
	key        []byte
	now        func() time.Time

	// The facet counts only steer the choice of index, so a warm function reuses them
	// for countsTTL instead of reading them for every query.
	mu       sync.Mutex
	counts   map[string]int
	countsAt time.Time
}

// countsTTL is how long facet counts are reused: about a sync interval.
const countsTTL = time.Minute

// NewDiscoverer returns a Discoverer. cursorKey signs cursors (at least 32 bytes).
func NewDiscoverer(store DiscoverStore, registries []federation.Registry, cursorKey []byte) (*Discoverer, error) {
	if len(cursorKey) < 32 {
		return nil, fmt.Errorf("discovery: the cursor key has %d bytes, want at least 32", len(cursorKey))
	}
	ids := make([]string, len(registries))
	for i, r := range registries {
		ids[i] = r.ID
	}
	return &Discoverer{store: store, registries: ids, key: cursorKey, now: time.Now}, nil
}

// cursor is what a next_cursor carries: the facet the query walks, the last DID examined
// and a hash of the filters, so a cursor is not replayed with other filters.
type cursor struct {
	Facet   string `json:"f"`
	After   string `json:"a"`
	Filters string `json:"h"`
}

// Discover returns one page of the agents that match q. Errors: EINVALID for a bad filter,
// limit or cursor; EINTERNAL, EUNAVAILABLE.
func (d *Discoverer) Discover(ctx context.Context, q Query) (Page, error) {
	q, err := d.validate(q)
	if err != nil {
		return Page{}, err
	}
	page := Page{Results: []federation.Agent{}, Registries: d.registries}
	if q.Registry != "" {
		page.Registries = []string{q.Registry}
	}
	filters := q.filterHash()

	var c cursor
	if q.Cursor != "" {
		if c, err = d.decodeCursor(q.Cursor); err != nil {
			return Page{}, err
		}
		if c.Filters != filters {
			return Page{}, federation.Errorf(federation.EINVALID, "the cursor belongs to a query with other filters")
		}
	} else {
		candidates := q.facets()
		counts, read, err := d.facetCounts(ctx, candidates)
		if err != nil {
			return Page{}, fmt.Errorf("discover: %w", err)
		}
		page.ItemsRead += read
		c = cursor{Facet: candidates[0], Filters: filters}
		for _, k := range candidates {
			if counts[k] < counts[c.Facet] {
				c.Facet = k
			}
		}
	}

	batch, examined := q.Limit, 0
	for page.ItemsRead < maxReadPerPage {
		dids, read, err := d.store.QueryFacet(ctx, c.Facet, c.After, batch)
		if err != nil {
			return Page{}, fmt.Errorf("discover: %w", err)
		}
		page.ItemsRead += read
		if len(dids) == 0 {
			return page, nil
		}
		agents, err := d.store.Agents(ctx, dids)
		if err != nil {
			return Page{}, fmt.Errorf("discover: %w", err)
		}
		page.ItemsRead += len(agents)
		byDID := make(map[string]federation.Agent, len(agents))
		for _, a := range agents {
			byDID[a.DID] = a
		}
		for _, did := range dids {
			c.After = did
			if a, ok := byDID[did]; ok && q.matches(a) {
				page.Results = append(page.Results, a)
				if len(page.Results) == q.Limit {
					page.NextCursor = d.encodeCursor(c)
					return page, nil
				}
			}
		}
		if len(dids) < batch {
			return page, nil // the index has no more
		}
		// Size the next batch by the share of candidates that passed so far, so a
		// post-filtered query reads about what the rest of the page needs.
		examined += len(dids)
		need := q.Limit - len(page.Results)
		batch = need * 2
		if len(page.Results) > 0 {
			batch = need*examined/len(page.Results) + 1
		}
		batch = min(MaxLimit, max(need, batch))
	}
	page.NextCursor = d.encodeCursor(c)
	return page, nil
}

// facetCounts returns the counts of the keys, from the cache while it is fresh and holds
// them all, and the number of items read.
func (d *Discoverer) facetCounts(ctx context.Context, keys []string) (map[string]int, int, error) {
	d.mu.Lock()
	fresh := d.now().Sub(d.countsAt) < countsTTL
	cached := d.counts
	d.mu.Unlock()
	if fresh {
		hit := true
		for _, k := range keys {
			if _, ok := cached[k]; !ok {
				hit = false
			}
		}
		if hit {
			return cached, 0, nil
		}
	}
	counts, err := d.store.FacetCounts(ctx, d.registries, keys)
	if err != nil {
		return nil, 0, err
	}
	d.mu.Lock()
	if !fresh || d.counts == nil {
		d.counts, d.countsAt = map[string]int{}, d.now()
	}
	for k, n := range counts {
		d.counts[k] = n
	}
	d.mu.Unlock()
	return counts, len(d.registries), nil // one item per registry
}

func (d *Discoverer) validate(q Query) (Query, error) {
	q.ServiceType, q.Tag, q.Registry = normal(q.ServiceType), normal(q.Tag), strings.TrimSpace(q.Registry)
	q.Text = strings.ToLower(strings.TrimSpace(q.Text))
	for i, c := range q.Capabilities {
		q.Capabilities[i] = normal(c)
	}
	slices.Sort(q.Capabilities)
	q.Capabilities = slices.Compact(q.Capabilities)
	switch {
	case q.Status == "":
		q.Status = federation.StatusActive
	case q.Status != federation.StatusActive && q.Status != federation.StatusStale && q.Status != federation.StatusGone:
		return q, federation.Errorf(federation.EINVALID, "status %q: want active, stale or gone", q.Status)
	}
	switch {
	case q.Limit == 0:
		q.Limit = DefaultLimit
	case q.Limit < 1 || q.Limit > MaxLimit:
		return q, federation.Errorf(federation.EINVALID, "limit %d: want 1 to %d", q.Limit, MaxLimit)
	}
	if len(q.Capabilities) > maxCapabilites {
		return q, federation.Errorf(federation.EINVALID, "at most %d capability filters", maxCapabilites)
	}
	for name, v := range map[string]string{"service_type": q.ServiceType, "tag": q.Tag, "registry": q.Registry} {
		if len(v) >= maxFilterLen || strings.Contains(v, "#") {
			return q, federation.Errorf(federation.EINVALID, "%s: at most %d characters, no '#'", name, maxFilterLen-1)
		}
	}
	for _, c := range q.Capabilities {
		if c == "" || len(c) >= maxFilterLen || strings.Contains(c, "#") {
			return q, federation.Errorf(federation.EINVALID, "capability %q: 1 to %d characters, no '#'", c, maxFilterLen-1)
		}
	}
	if len(q.Text) > maxTextLen {
		return q, federation.Errorf(federation.EINVALID, "q: at most %d characters", maxTextLen)
	}
	if q.Registry != "" && !slices.Contains(d.registries, q.Registry) {
		return q, federation.Errorf(federation.EINVALID, "registry %q is not federated here; registries: %s", q.Registry, strings.Join(d.registries, ", "))
	}
	return q, nil
}

// facets are the index keys that could serve the query, the whole directory's last.
func (q Query) facets() []string {
	var keys []string
	for _, c := range q.Capabilities {
		keys = append(keys, FacetKey("capability", c, q.Status))
	}
	if q.Tag != "" {
		keys = append(keys, FacetKey("tag", q.Tag, q.Status))
	}
	if q.ServiceType != "" {
		keys = append(keys, FacetKey("type", q.ServiceType, q.Status))
	}
	if q.Registry != "" {
		keys = append(keys, FacetKey("registry", q.Registry, q.Status))
	}
	return append(keys, FacetKey("all", "*", q.Status))
}

func (q Query) matches(a federation.Agent) bool {
	if a.Status != q.Status || (q.ServiceType != "" && a.ServiceType != q.ServiceType) ||
		(q.Registry != "" && a.Registry != q.Registry) || (q.Tag != "" && !slices.Contains(a.Tags, q.Tag)) {
		return false
	}
	for _, c := range q.Capabilities {
		if !slices.Contains(a.Capabilities, c) {
			return false
		}
	}
	return q.Text == "" || strings.Contains(strings.ToLower(a.Name+"\n"+a.Description), q.Text)
}

func (q Query) filterHash() string {
	b, _ := json.Marshal([]any{q.ServiceType, q.Capabilities, q.Tag, q.Registry, q.Text, q.Status})
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

func (d *Discoverer) encodeCursor(c cursor) string {
	body, _ := json.Marshal(c)
	payload := base64.RawURLEncoding.EncodeToString(body)
	return payload + "." + base64.RawURLEncoding.EncodeToString(d.sign(payload))
}

func (d *Discoverer) decodeCursor(s string) (cursor, error) {
	var c cursor
	payload, sig, ok := strings.Cut(s, ".")
	mac, err := base64.RawURLEncoding.DecodeString(sig)
	if !ok || err != nil || len(s) > 2048 || !hmac.Equal(mac, d.sign(payload)) {
		return c, federation.Errorf(federation.EINVALID, "the cursor is not one this gateway issued")
	}
	body, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil || json.Unmarshal(body, &c) != nil || c.Facet == "" {
		return c, federation.Errorf(federation.EINVALID, "the cursor is malformed")
	}
	return c, nil
}

func (d *Discoverer) sign(payload string) []byte {
	m := hmac.New(sha256.New, d.key)
	m.Write([]byte("discover-cursor\x00" + payload))
	return m.Sum(nil)
}
