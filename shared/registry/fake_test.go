package registry_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/outbound"
	"github.com/federation-gateway/gateway/shared/registry"
)

// record is a card as the fake AgentVault registry stores it.
type record struct {
	ID, Name, Description string
	CardData              json.RawMessage // nil: a card document made from the name
	Active                bool
	UpdatedAt             time.Time
}

// fakeAgentVault is an AgentVault registry as DESIGN §6 describes it: the v1 listing and
// details endpoints and the v2 federation listing, over an ordered set of cards, with
// knobs for the ways real registries misbehave.
type fakeAgentVault struct {
	t *testing.T

	mu      sync.Mutex
	records []record

	maxLimit       int  // the largest limit it serves (250 when zero)
	noPagination   bool // v1 pages carry no "pagination" object
	sinceInclusive bool // v2: updated_at >= since instead of >
	wrapV2         bool // v2: {"items": [...]} instead of a bare list
	// afterList runs after the v1 listing page n (1-based) is computed, under the lock:
	// a registry that changes while it is read.
	afterList func(f *fakeAgentVault, page int)
	// intercept answers a request itself when it returns true.
	intercept func(w http.ResponseWriter, r *http.Request) bool

	listPages int
	details   []string
	v2Since   []string
	headers   []http.Header
}

func newFakeAgentVault(t *testing.T, n int) *fakeAgentVault {
	f := &fakeAgentVault{t: t}
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range n {
		f.records = append(f.records, record{
			ID:          fmt.Sprintf("card-%03d", i),
			Name:        fmt.Sprintf("Agent %d", i),
			Description: "does things",
			Active:      true,
			UpdatedAt:   base.Add(time.Duration(i) * time.Second),
		})
	}
	return f
}

func (f *fakeAgentVault) start() *httptest.Server {
	srv := httptest.NewServer(f)
	f.t.Cleanup(srv.Close)
	return srv
}

func (f *fakeAgentVault) ids() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for _, r := range f.records {
		if r.Active {
			ids = append(ids, r.ID)
		}
	}
	return ids
}

func (r record) cardData() json.RawMessage {
	if r.CardData != nil {
		return r.CardData
	}
	b, _ := json.Marshal(map[string]any{
		"humanReadableId": "acme/" + r.ID, "name": r.Name, "description": r.Description,
		"url": "https://agents.example.com/" + r.ID, "skills": []any{},
	})
	return b
}

func (r record) json() map[string]any {
	return map[string]any{
		"id":              r.ID,
		"name":            r.Name,
		"card_data":       r.cardData(),
		"is_active":       r.Active,
		"updated_at":      r.UpdatedAt.Format("2006-01-02T15:04:05.999999"), // Python isoformat, naive UTC
		"source_registry": "spiffe://agentvault.example/registry",
	}
}

func (f *fakeAgentVault) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.headers = append(f.headers, r.Header.Clone())
	intercept := f.intercept
	f.mu.Unlock()
	if intercept != nil && intercept(w, r) {
		return
	}
	switch {
	case r.URL.Path == "/api/v1/agent-cards/":
		f.list(w, r)
	case strings.HasPrefix(r.URL.Path, "/api/v1/agent-cards/"):
		f.detail(w, r, strings.TrimPrefix(r.URL.Path, "/api/v1/agent-cards/"))
	case r.URL.Path == "/api/v1/federation/agent-cards":
		f.federation(w, r)
	default:
		http.NotFound(w, r)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeAgentVault) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	skip, err1 := strconv.Atoi(q.Get("skip"))
	limit, err2 := strconv.Atoi(q.Get("limit"))
	maxLimit := f.maxLimit
	if maxLimit == 0 {
		maxLimit = 250
	}
	if err1 != nil || err2 != nil || skip < 0 || limit < 1 || limit > 250 || q.Get("active_only") != "true" {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"detail": "bad query " + r.URL.RawQuery})
		return
	}
	limit = min(limit, maxLimit)

	f.mu.Lock()
	f.listPages++
	var active []record
	for _, rec := range f.records {
		if rec.Active {
			active = append(active, rec)
		}
	}
	items := []map[string]any{}
	for i := skip; i < len(active) && i < skip+limit; i++ {
		items = append(items, map[string]any{"id": active[i].ID, "name": active[i].Name, "description": active[i].Description})
	}
	if f.afterList != nil {
		f.afterList(f, f.listPages)
	}
	f.mu.Unlock()

	body := map[string]any{"items": items}
	if !f.noPagination {
		body["pagination"] = map[string]any{
			"total_items": len(active), "limit": limit, "offset": skip,
			"total_pages": (len(active) + limit - 1) / limit, "current_page": skip/limit + 1,
		}
	}
	writeJSON(w, http.StatusOK, body)
}

func (f *fakeAgentVault) detail(w http.ResponseWriter, r *http.Request, id string) {
	f.mu.Lock()
	f.details = append(f.details, id)
	i := slices.IndexFunc(f.records, func(rec record) bool { return rec.ID == id })
	var rec record
	if i >= 0 {
		rec = f.records[i]
	}
	f.mu.Unlock()
	if i < 0 {
		writeJSON(w, http.StatusNotFound, map[string]any{"detail": "Agent card not found"})
		return
	}
	w.Header().Set("ETag", `"`+rec.ID+"-"+strconv.FormatInt(rec.UpdatedAt.Unix(), 10)+`"`)
	writeJSON(w, http.StatusOK, rec.json())
}

func (f *fakeAgentVault) federation(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := strconv.Atoi(q.Get("limit"))
	if err != nil || limit < 1 || limit > 1000 {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"detail": "bad limit"})
		return
	}
	var since time.Time
	if s := q.Get("since"); s != "" {
		if since, err = time.Parse(time.RFC3339Nano, s); err != nil {
			writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"detail": "bad since"})
			return
		}
	}

	f.mu.Lock()
	f.v2Since = append(f.v2Since, q.Get("since"))
	recs := slices.Clone(f.records)
	f.mu.Unlock()
	slices.SortStableFunc(recs, func(a, b record) int {
		if c := a.UpdatedAt.Compare(b.UpdatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	out := []map[string]any{}
	for _, rec := range recs {
		after := rec.UpdatedAt.After(since) || (f.sinceInclusive && rec.UpdatedAt.Equal(since))
		if since.IsZero() || after {
			out = append(out, rec.json())
		}
		if len(out) == limit {
			break
		}
	}
	if f.wrapV2 {
		writeJSON(w, http.StatusOK, map[string]any{"items": out})
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (f *fakeAgentVault) counts() (listPages, details int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.listPages, len(f.details)
}

func (f *fakeAgentVault) sinceParams() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.v2Since)
}

func (f *fakeAgentVault) requestHeaders() []http.Header {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.headers)
}

func (f *fakeAgentVault) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listPages, f.details, f.v2Since, f.headers = 0, nil, nil, nil
}

// testOptions keeps retries and margins short so the whole package tests in seconds.
func testOptions() registry.Options {
	return registry.Options{
		RetryBase:      time.Millisecond,
		RequestTimeout: 2 * time.Second,
		DeadlineMargin: 10 * time.Millisecond,
	}
}

// newClient returns the registry's Client through an outbound client that allows the
// loopback test servers.
func newClient(t *testing.T, reg federation.Registry, opts registry.Options) registry.Client {
	t.Helper()
	c, err := registry.New(reg, outbound.NewClient(outbound.Options{AllowPrivate: true, Timeout: 10 * time.Second}), opts)
	if err != nil {
		t.Fatalf("registry.New: %v", err)
	}
	return c
}

func fetch(t *testing.T, c registry.Client, req registry.Request) registry.Listing {
	t.Helper()
	l, err := c.Fetch(context.Background(), req)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	return l
}

// knownFrom is what the sync would store of a listing's cards.
func knownFrom(l registry.Listing, into map[string]registry.Known) map[string]registry.Known {
	if into == nil {
		into = map[string]registry.Known{}
	}
	for _, c := range l.Cards {
		into[c.SourceID] = registry.Known{ListHash: c.ListHash, ETag: c.ETag}
	}
	return into
}

func sourceIDs(cards []registry.Card) []string {
	ids := make([]string, len(cards))
	for i, c := range cards {
		ids[i] = c.SourceID
	}
	return ids
}

// wantCode asserts err's code and that its message names every one of want.
func wantCode(t *testing.T, err error, code string, want ...string) {
	t.Helper()
	if got := federation.ErrorCode(err); got != code {
		t.Fatalf("error %v: code %q, want %q", err, got, code)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err.Error(), w)
		}
	}
}

func hasProblem(l registry.Listing, substr string) bool {
	return slices.ContainsFunc(l.Problems, func(p string) bool { return strings.Contains(p, substr) })
}
