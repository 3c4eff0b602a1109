package directory_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/federation-gateway/gateway/infra/localtest"
	"github.com/federation-gateway/gateway/shared/directory"
	"github.com/federation-gateway/gateway/shared/dynamo"
	"github.com/federation-gateway/gateway/shared/federation"
)

var cursorKey = []byte(strings.Repeat("k", 32))

var testRegistries = []federation.Registry{{ID: "alpha"}, {ID: "beta"}}

// seed writes n synthetic agents as the sync would, with their facet counts.
func seed(t *testing.T, store *dynamo.Store, n int, rng *rand.Rand) []federation.Agent {
	t.Helper()
	ctx := context.Background()
	types := []string{"weather", "math", "text"}
	caps := []string{"echo", "sum", "translate", "forecast"}
	counts := map[string]map[string]int{}
	var agents []federation.Agent
	for i := range n {
		a := federation.Agent{
			DID: fmt.Sprintf("did:agentvault:test/agent-%04d", i), Name: fmt.Sprintf("Agent %d", i),
			Description: []string{"fast", "accurate", "cheap"}[i%3] + " helper", Registry: testRegistries[i%2].ID,
			SourceID: fmt.Sprint(i), Endpoint: "https://a.example/" + fmt.Sprint(i), Protocol: "JSONRPC",
			ServiceType: types[rng.IntN(len(types))], Status: federation.StatusActive, Signature: federation.SignatureNone,
			Tags: []string{}, Skills: []federation.Skill{}, Identities: []string{},
		}
		for _, c := range caps {
			if rng.IntN(2) == 0 {
				a.Capabilities = append(a.Capabilities, c)
			}
		}
		if i%7 == 0 {
			a.Tags = []string{"rare"}
		}
		if i%11 == 0 {
			a.Status = federation.StatusStale
		}
		if _, err := store.PutAgent(ctx, a, "", nil); err != nil {
			t.Fatal(err)
		}
		for _, f := range directory.Facets(a) {
			if counts[a.Registry] == nil {
				counts[a.Registry] = map[string]int{}
			}
			counts[a.Registry][f]++
		}
		agents = append(agents, a)
	}
	for reg, c := range counts {
		if err := store.SaveFacetCounts(ctx, reg, c); err != nil {
			t.Fatal(err)
		}
	}
	return agents
}

func newDiscoverer(t *testing.T, store *dynamo.Store) *directory.Discoverer {
	t.Helper()
	d, err := directory.NewDiscoverer(store, testRegistries, cursorKey)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Walking every page of any query returns each matching agent exactly once, in DID order.
func TestDiscoverPagination(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	store := dynamo.NewStore(localtest.DynamoDB(t), localtest.Table(t))
	agents := seed(t, store, 120, rng)
	d := newDiscoverer(t, store)

	queries := []directory.Query{
		{},
		{Status: federation.StatusStale},
		{ServiceType: "math"},
		{Capabilities: []string{"echo"}},
		{Capabilities: []string{"Echo", "sum"}},
		{Tag: "rare"},
		{Registry: "beta", ServiceType: "text"},
		{Text: "CHEAP"},
		{Capabilities: []string{"translate"}, Text: "fast", Registry: "alpha"},
		{ServiceType: "none-such"},
	}
	rounds := 4 * len(queries)
	if localtest.Engine(t) == localtest.EngineMoto {
		rounds = len(queries) // moto scans the whole table for every Query: each shape once
	}
	for i := range rounds {
		q := queries[i%len(queries)]
		q.Capabilities = slices.Clone(q.Capabilities)
		q.Limit = 1 + rng.IntN(30)
		var want []string
		for _, a := range agents {
			if matches(a, q) {
				want = append(want, a.DID)
			}
		}
		var got []string
		pages := 0
		for {
			page, err := d.Discover(context.Background(), q)
			if err != nil {
				t.Fatalf("query %+v: %v", q, err)
			}
			pages++
			if len(page.Results) > q.Limit {
				t.Fatalf("query %+v: %d results on a page", q, len(page.Results))
			}
			for _, a := range page.Results {
				got = append(got, a.DID)
			}
			if page.NextCursor == "" {
				break
			}
			if pages > 200 {
				t.Fatalf("query %+v: no end", q)
			}
			q.Cursor = page.NextCursor
		}
		if !slices.Equal(got, want) {
			t.Errorf("query %+v: got %d agents, want %d\n got %v\nwant %v", q, len(got), len(want), got, want)
		}
	}
}

func matches(a federation.Agent, q directory.Query) bool {
	status := q.Status
	if status == "" {
		status = federation.StatusActive
	}
	if a.Status != status || (q.ServiceType != "" && a.ServiceType != q.ServiceType) || (q.Registry != "" && a.Registry != q.Registry) ||
		(q.Tag != "" && !slices.Contains(a.Tags, q.Tag)) {
		return false
	}
	for _, c := range q.Capabilities {
		if !slices.Contains(a.Capabilities, strings.ToLower(c)) {
			return false
		}
	}
	return q.Text == "" || strings.Contains(strings.ToLower(a.Name+"\n"+a.Description), strings.ToLower(q.Text))
}

func TestDiscoverRejects(t *testing.T) {
	store := dynamo.NewStore(localtest.DynamoDB(t), localtest.Table(t))
	seed(t, store, 30, rand.New(rand.NewPCG(3, 4)))
	d := newDiscoverer(t, store)
	first, err := d.Discover(context.Background(), directory.Query{Limit: 5})
	if err != nil || first.NextCursor == "" {
		t.Fatalf("first page: %v %q", err, first.NextCursor)
	}
	other, _ := directory.NewDiscoverer(store, testRegistries, []byte(strings.Repeat("o", 32)))
	tests := []struct {
		name    string
		q       directory.Query
		d       *directory.Discoverer
		mention string
	}{
		{"limit too large", directory.Query{Limit: 201}, d, "limit 201"},
		{"limit negative", directory.Query{Limit: -1}, d, "limit -1"},
		{"bad status", directory.Query{Status: "deleted"}, d, `status "deleted"`},
		{"unknown registry", directory.Query{Registry: "gamma"}, d, `registry "gamma"`},
		{"too many capabilities", directory.Query{Capabilities: strings.Split("a,b,c,d,e,f,g,h,i,j,k", ",")}, d, "at most 10"},
		{"empty capability", directory.Query{Capabilities: []string{" "}}, d, "capability"},
		{"hash in a filter", directory.Query{Tag: "a#b"}, d, "no '#'"},
		{"long text", directory.Query{Text: strings.Repeat("x", 201)}, d, "q: at most"},
		{"tampered cursor", directory.Query{Limit: 5, Cursor: first.NextCursor[:len(first.NextCursor)-2] + "xx"}, d, "not one this gateway issued"},
		{"garbage cursor", directory.Query{Cursor: "%%%"}, d, "not one this gateway issued"},
		{"cursor of other filters", directory.Query{Limit: 5, ServiceType: "math", Cursor: first.NextCursor}, d, "other filters"},
		{"cursor of another key", directory.Query{Limit: 5, Cursor: first.NextCursor}, other, "not one this gateway issued"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.d.Discover(context.Background(), tt.q)
			if federation.ErrorCode(err) != federation.EINVALID || !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("err = %v, want invalid mentioning %q", err, tt.mention)
			}
		})
	}
	if _, err := directory.NewDiscoverer(store, testRegistries, []byte("short")); err == nil {
		t.Error("a short cursor key was accepted")
	}
}

// A selective filter reads about two items per result: the index entry and the record,
// and the facet counts (one item per registry) to choose that index.
func TestDiscoverReadsByIndex(t *testing.T) {
	store := dynamo.NewStore(localtest.DynamoDB(t), localtest.Table(t))
	seed(t, store, 200, rand.New(rand.NewPCG(5, 6)))
	d := newDiscoverer(t, store)
	page, err := d.Discover(context.Background(), directory.Query{Tag: "rare", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Results) != 10 || page.ItemsRead > 2*len(page.Results)+len(testRegistries) {
		t.Errorf("%d results read %d items", len(page.Results), page.ItemsRead)
	}
}
