package main

import (
	"reflect"
	"slices"
	"testing"

	"github.com/federation-gateway/gateway/shared/federation"
)

func TestSpread(t *testing.T) {
	tests := []struct {
		n, k int
		want []int
	}{
		{10, 0, nil},
		{0, 3, nil},
		{10, 1, []int{0}},
		{10, 5, []int{0, 2, 4, 6, 8}},
		{10, 3, []int{0, 3, 6}},
		{4, 9, []int{0, 1, 2, 3}},
	}
	for _, tt := range tests {
		if got := spread(tt.n, tt.k); !slices.Equal(got, tt.want) {
			t.Errorf("spread(%d, %d) = %v, want %v", tt.n, tt.k, got, tt.want)
		}
	}
	if got := spread(5000, 50); len(got) != 50 || got[1] != 100 || got[49] != 4900 {
		t.Errorf("spread(5000, 50) = %v", got)
	}
}

func TestRequestGoal(t *testing.T) {
	tests := []struct {
		name                      string
		kind                      string
		agents, changed, pageSize int
		want                      int
	}{
		{"v1, nothing changed: the listing", federation.KindAgentVault, 5000, 0, 250, 20},
		{"v1, a short last page", federation.KindAgentVault, 5001, 0, 250, 21},
		{"v1, changes: a card request each", federation.KindAgentVault, 5000, 50, 250, 70},
		{"v2, nothing changed: the page with the overlapped card", federation.KindAgentVaultFederation, 5000, 0, 1000, 1},
		{"v2, a few changes", federation.KindAgentVaultFederation, 5000, 50, 1000, 1},
		{"v2, the overlap fills a page", federation.KindAgentVaultFederation, 5000, 999, 1000, 2},
		{"v2, all changed: full pages and the short one", federation.KindAgentVaultFederation, 5000, 5000, 1000, 6},
	}
	for _, tt := range tests {
		if got := requestGoal(tt.kind, tt.agents, tt.changed, tt.pageSize); got != tt.want {
			t.Errorf("%s: requestGoal = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestUsedOps(t *testing.T) {
	got := usedOps(map[string]int{"Query": 2, "PutItem": 0}, map[string]int{"GetItem": 1}, nil)
	if want := []string{"GetItem", "Query"}; !slices.Equal(got, want) {
		t.Errorf("usedOps = %v, want %v (dynamoOps order, no zero counts)", got, want)
	}
	if got := opCounts([]string{"GetItem", "Query"}, map[string]int{"Query": 3}); got != "0\t3" {
		t.Errorf("opCounts = %q", got)
	}
}

// The cards hold the shares the discovery queries are named for.
func TestBenchCardShares(t *testing.T) {
	const n = 6400
	rare, broad := 0, 0
	for i := range n {
		c := benchCard("alpha", i, 0)
		if slices.Contains(c.Tags, rareTag) {
			rare++
		}
		if c.Skills[0].ID == broadSkill {
			broad++
		}
	}
	if rare != n/rareEvery || broad != n/2 {
		t.Errorf("%d cards: %d tagged %s, %d with %s", n, rare, rareTag, broad, broadSkill)
	}
	a, b := benchCard("alpha", 7, 0), benchCard("alpha", 7, 1)
	changed := a.Description != b.Description
	b.Description = a.Description
	if !changed || !reflect.DeepEqual(a, b) {
		t.Errorf("a revision must change the description only: %+v, %+v", a, b)
	}
}
