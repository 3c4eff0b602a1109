package demo_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/federation-gateway/gateway/infra/demo"
)

type listPage struct {
	Items []struct {
		ID          string `json:"id"`
		Name        string `json:"name"`
		Description string `json:"description"`
	} `json:"items"`
	Pagination struct {
		TotalItems  int `json:"total_items"`
		Limit       int `json:"limit"`
		Offset      int `json:"offset"`
		TotalPages  int `json:"total_pages"`
		CurrentPage int `json:"current_page"`
	} `json:"pagination"`
}

type details struct {
	ID        string    `json:"id"`
	CardData  demo.Card `json:"card_data"`
	IsActive  bool      `json:"is_active"`
	UpdatedAt string    `json:"updated_at"`
	CreatedAt string    `json:"created_at"`
	Developer int       `json:"developer_id"`
}

type federated struct {
	ID             string    `json:"id"`
	CardData       demo.Card `json:"card_data"`
	IsActive       bool      `json:"is_active"`
	UpdatedAt      string    `json:"updated_at"`
	SourceRegistry string    `json:"source_registry"`
}

// newRegistry serves a registry holding n cards named card-00, card-01, ...
func newRegistry(t *testing.T, n int, federationAPI bool) (*demo.Registry, string) {
	t.Helper()
	r := demo.NewRegistry("test", federationAPI)
	for i := range n {
		r.Put(card(fmt.Sprintf("acme/card-%02d", i), "weather"))
	}
	srv := httptest.NewServer(r.Handler())
	t.Cleanup(srv.Close)
	return r, srv.URL
}

func card(id string, tags ...string) demo.Card {
	return demo.Card{
		SchemaVersion: "1.0", HumanReadableID: id, Name: "Card " + id, Description: "about " + id,
		URL: "http://127.0.0.1:1/agents/" + id, Provider: demo.Provider{Name: "Acme"},
		Capabilities: demo.Capabilities{A2AVersion: "1.0", Type: "weather"},
		AuthSchemes:  []demo.AuthScheme{{Scheme: "none"}}, Tags: tags,
	}
}

// getJSON GETs url and decodes a 200 answer into v; it returns the status.
func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK && v != nil {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("GET %s: decode: %v", url, err)
		}
	}
	return resp.StatusCode
}

func TestListPaging(t *testing.T) {
	t.Parallel()
	_, base := newRegistry(t, 7, false)
	tests := []struct {
		query                          string
		ids, total, pages, page, limit int
	}{
		{"?skip=0&limit=3", 3, 7, 3, 1, 3},
		{"?skip=3&limit=3", 3, 7, 3, 2, 3},
		{"?skip=6&limit=3", 1, 7, 3, 3, 3},
		{"?skip=9&limit=3", 0, 7, 3, 4, 3},
		{"?limit=250", 7, 7, 1, 1, 250},
		{"", 7, 7, 1, 1, 100},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		var p listPage
		if code := getJSON(t, base+"/api/v1/agent-cards/"+tt.query, &p); code != http.StatusOK {
			t.Fatalf("%s: status %d", tt.query, code)
		}
		pg := p.Pagination
		if len(p.Items) != tt.ids || pg.TotalItems != tt.total || pg.TotalPages != tt.pages || pg.CurrentPage != tt.page || pg.Limit != tt.limit {
			t.Errorf("%s: %d items, pagination %+v; want %d items, total %d, pages %d, page %d, limit %d",
				tt.query, len(p.Items), pg, tt.ids, tt.total, tt.pages, tt.page, tt.limit)
		}
		if tt.limit == 3 {
			for _, it := range p.Items {
				if seen[it.ID] {
					t.Errorf("%s: %s on two pages", tt.query, it.ID)
				}
				seen[it.ID] = true
			}
		}
	}
	if len(seen) != 7 {
		t.Errorf("paging by 3 saw %d cards, want 7", len(seen))
	}
}

func TestListRejectsBadParameters(t *testing.T) {
	t.Parallel()
	_, base := newRegistry(t, 1, false)
	for _, q := range []string{"limit=251", "limit=0", "skip=-1", "limit=x", "active_only=maybe"} {
		if code := getJSON(t, base+"/api/v1/agent-cards/?"+q, nil); code != http.StatusUnprocessableEntity {
			t.Errorf("?%s: status %d, want 422", q, code)
		}
	}
}

func TestListFilters(t *testing.T) {
	t.Parallel()
	r := demo.NewRegistry("test", false)
	r.Put(card("acme/a", "weather", "forecast"))
	r.Put(card("acme/b", "weather"))
	r.Put(card("lingua/c", "translation"))
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	tests := []struct {
		query string
		want  int
	}{
		{"tags=weather", 2},
		{"tags=weather&tags=forecast", 1},
		{"tags=nope", 0},
		{"search=LINGUA", 1},
		{"search=card", 3},
		{"has_tee=true", 0},
	}
	for _, tt := range tests {
		var p listPage
		getJSON(t, srv.URL+"/api/v1/agent-cards/?"+tt.query, &p)
		if p.Pagination.TotalItems != tt.want || len(p.Items) != tt.want {
			t.Errorf("?%s: %d items (total %d), want %d", tt.query, len(p.Items), p.Pagination.TotalItems, tt.want)
		}
	}
}

func TestDetails(t *testing.T) {
	t.Parallel()
	r, base := newRegistry(t, 2, false)
	rec, ok := r.Find("acme/card-01")
	if !ok {
		t.Fatal("Find acme/card-01: not found")
	}
	var d details
	if code := getJSON(t, base+"/api/v1/agent-cards/"+rec.ID, &d); code != http.StatusOK {
		t.Fatalf("details: status %d", code)
	}
	if d.ID != rec.ID || d.CardData.HumanReadableID != "acme/card-01" || !d.IsActive || d.UpdatedAt == "" || d.CreatedAt == "" {
		t.Errorf("details = %+v", d)
	}
	tests := []struct {
		id   string
		want int
	}{
		{"00000000-0000-5000-8000-000000000000", http.StatusNotFound},
		{"not-a-uuid", http.StatusUnprocessableEntity},
	}
	for _, tt := range tests {
		if code := getJSON(t, base+"/api/v1/agent-cards/"+tt.id, nil); code != tt.want {
			t.Errorf("details %s: status %d, want %d", tt.id, code, tt.want)
		}
	}
}

func TestDeactivate(t *testing.T) {
	t.Parallel()
	r, base := newRegistry(t, 3, false)
	rec, _ := r.Find("acme/card-00")
	after, err := r.SetActive(rec.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	if !after.UpdatedAt.After(rec.UpdatedAt) {
		t.Errorf("deactivation kept updated_at %s", after.UpdatedAt)
	}
	var d details
	getJSON(t, base+"/api/v1/agent-cards/"+rec.ID, &d)
	if d.IsActive {
		t.Error("details: is_active = true after deactivation")
	}
	var active, all listPage
	getJSON(t, base+"/api/v1/agent-cards/", &active) // active_only defaults to true
	getJSON(t, base+"/api/v1/agent-cards/?active_only=false", &all)
	if active.Pagination.TotalItems != 2 || all.Pagination.TotalItems != 3 {
		t.Errorf("totals: active %d, all %d; want 2, 3", active.Pagination.TotalItems, all.Pagination.TotalItems)
	}
	for _, it := range active.Items {
		if it.ID == rec.ID {
			t.Error("deactivated card in the active_only listing")
		}
	}
	if _, err := r.SetActive("00000000-0000-5000-8000-000000000000", false); err == nil {
		t.Error("SetActive of an unknown card: no error")
	}
}

func TestFederationSince(t *testing.T) {
	t.Parallel()
	r, base := newRegistry(t, 4, true)
	endpoint := base + "/api/v1/federation/agent-cards"

	var all []federated
	if code := getJSON(t, endpoint, &all); code != http.StatusOK || len(all) != 4 {
		t.Fatalf("no since: status %d, %d cards; want 4", code, len(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i].UpdatedAt <= all[i-1].UpdatedAt {
			t.Errorf("not ordered by updated_at: %s after %s", all[i].UpdatedAt, all[i-1].UpdatedAt)
		}
	}
	cursor := all[len(all)-1].UpdatedAt

	var none []federated
	getJSON(t, endpoint+"?since="+url.QueryEscape(cursor), &none)
	if len(none) != 0 {
		t.Errorf("since the newest updated_at: %d cards, want 0 (since is exclusive)", len(none))
	}

	// One update, one deactivation, one new card: exactly those come back, in that order.
	changed := card("acme/card-01", "weather", "new-tag")
	r.Put(changed)
	rec, _ := r.Find("acme/card-02")
	if _, err := r.SetActive(rec.ID, false); err != nil {
		t.Fatal(err)
	}
	r.Put(card("acme/card-new"))

	var delta []federated
	getJSON(t, endpoint+"?since="+url.QueryEscape(cursor), &delta)
	var got []string
	for _, c := range delta {
		got = append(got, fmt.Sprintf("%s active=%v", c.CardData.HumanReadableID, c.IsActive))
	}
	want := []string{"acme/card-01 active=true", "acme/card-02 active=false", "acme/card-new active=true"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("since cursor: %v, want %v", got, want)
	}
	if delta[0].SourceRegistry != r.Identity {
		t.Errorf("source_registry = %q, want %q", delta[0].SourceRegistry, r.Identity)
	}

	var page []federated
	getJSON(t, endpoint+"?limit=2", &page)
	if len(page) != 2 {
		t.Errorf("limit=2: %d cards", len(page))
	}
	// A since with an offset other than Z means the same instant.
	ts, _ := time.Parse(time.RFC3339Nano, cursor)
	var shifted []federated
	getJSON(t, endpoint+"?since="+url.QueryEscape(ts.In(time.FixedZone("", 2*3600)).Format(time.RFC3339Nano)), &shifted)
	if len(shifted) != 3 {
		t.Errorf("since with +02:00: %d cards, want 3", len(shifted))
	}
	for _, q := range []string{"limit=1001", "limit=0", "since=yesterday"} {
		if code := getJSON(t, endpoint+"?"+q, nil); code != http.StatusUnprocessableEntity {
			t.Errorf("?%s: status %d, want 422", q, code)
		}
	}
}

func TestV1RegistryHasNoFederationAPI(t *testing.T) {
	t.Parallel()
	_, base := newRegistry(t, 1, false)
	if code := getJSON(t, base+"/api/v1/federation/agent-cards", nil); code != http.StatusNotFound {
		t.Errorf("v2 endpoint on a v1 registry: status %d, want 404", code)
	}
}
