package directory_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/federation-gateway/gateway/infra/localtest"
	"github.com/federation-gateway/gateway/shared/directory"
	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/registry"
)

// integrityScenario is a sync to break: a federation synced once (setup), then changed
// (change), so that the next sync makes every kind of write.
type integrityScenario struct {
	name   string
	opts   directory.SyncOptions
	setup  func(alpha, beta *liveRegistry)
	change func(t *testing.T, alpha, beta *liveRegistry)
}

var integrityScenarios = []integrityScenario{
	{
		name: "changes",
		setup: func(alpha, beta *liveRegistry) {
			for _, n := range []string{"a1", "a2", "a3", "a4", "a5"} {
				alpha.Put(sampleCard(n, "echo"))
			}
			alpha.Put(sampleCard("shared", "echo"))
			beta.Put(sampleCard("b1", "sum"))
			c := sampleCard("shared", "sum")
			c.Description = "Beta's view."
			beta.Put(c) // a shadow of alpha's record
		},
		change: func(t *testing.T, alpha, beta *liveRegistry) {
			alpha.Put(sampleCard("a6", "echo"))        // new
			alpha.Put(sampleCard("a2", "echo", "sum")) // its index changes
			c := sampleCard("a3", "echo")              // only its description changes
			c.Description = "Faster now."
			alpha.Put(c)
			deactivate(t, alpha, "test/a4") // gone: listed no more, inactive when asked
			rec, _ := alpha.Find("test/a5") // gone: deleted for good
			if err := alpha.Delete(rec.ID); err != nil {
				t.Fatal(err)
			}
			deactivate(t, alpha, "test/shared")       // beta's shadow takes over
			beta.Put(sampleCard("b1", "sum", "echo")) // its index changes
			beta.Put(sampleCard("b2", "sum"))         // new
		},
	},
	{
		name: "stale",
		opts: directory.SyncOptions{StaleAfter: 1},
		setup: func(alpha, beta *liveRegistry) {
			for _, n := range []string{"a1", "a2", "a3"} {
				alpha.Put(sampleCard(n, "echo"))
			}
			beta.Put(sampleCard("b1", "sum"))
		},
		change: func(t *testing.T, alpha, _ *liveRegistry) {
			alpha.fail.Store(true) // its agents become stale
		},
	},
}

func deactivate(t *testing.T, r *liveRegistry, humanReadableID string) {
	t.Helper()
	rec, ok := r.Find(humanReadableID)
	if !ok {
		t.Fatalf("no card %s", humanReadableID)
	}
	if _, err := r.SetActive(rec.ID, false); err != nil {
		t.Fatal(err)
	}
}

// A failure between any two writes of a sync, whether the write failed before it was
// applied or after (its answer lost), leaves nothing the next successful sync does not
// put right: every record's index entries are its facets, no entry is left without its
// record, no agent a registry lists is hidden, and the registries' counts are what their
// records add up to. Each case runs against the local endpoint, the store's calls going
// through a client that fails the chosen one.
func TestSyncIntegrityUnderFailures(t *testing.T) {
	for _, sc := range integrityScenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			// The run to break, without a failure: how many writes it makes.
			probe := newIntegrityCase(t, sc)
			probe.faults.Arm(0, false)
			probe.run(t)
			writes := probe.faults.Writes()
			if writes < 10 {
				t.Fatalf("the sync to break makes only %d writes", writes)
			}
			probe.finish(t)
			for n := 1; n <= writes; n++ {
				for _, after := range []bool{false, true} {
					name := fmt.Sprintf("write %02d of %d fails", n, writes)
					if after {
						name = fmt.Sprintf("write %02d of %d is lost", n, writes)
					}
					t.Run(name, func(t *testing.T) {
						t.Parallel()
						c := newIntegrityCase(t, sc)
						c.faults.Arm(n, after)
						c.run(t)
						if !c.faults.Fired() {
							t.Fatalf("the sync made fewer than %d writes", n)
						}
						c.faults.Arm(0, false)
						c.finish(t)
					})
				}
			}
		})
	}
}

// integrityCase is one federation, synced once and changed, whose next sync is to fail.
type integrityCase struct {
	*syncFixture
	sc          integrityScenario
	faults      *localtest.Faults
	raw         *dynamodb.Client
	alpha, beta *liveRegistry
}

func newIntegrityCase(t *testing.T, sc integrityScenario) *integrityCase {
	t.Helper()
	c := &integrityCase{sc: sc, faults: &localtest.Faults{}, raw: localtest.DynamoDB(t)}
	c.alpha, c.beta = newLiveRegistry(t, "alpha", false), newLiveRegistry(t, "beta", true)
	sc.setup(c.alpha, c.beta)
	c.syncFixture = newSyncFixtureOn(t, localtest.InjectFaults(localtest.DynamoDB(t), c.faults),
		registry.Options{Retries: -1}, sc.opts, c.alpha, c.beta)
	c.run(t)
	c.check(t)
	sc.change(t, c.alpha, c.beta)
	return c
}

// run syncs, whatever becomes of it.
func (c *integrityCase) run(t *testing.T) {
	t.Helper()
	_, _ = c.syncer.Run(context.Background(), "test")
}

// finish runs the next sync, which must succeed for every registry that answers, and
// checks what it leaves.
func (c *integrityCase) finish(t *testing.T) {
	t.Helper()
	rep, err := c.syncer.Run(context.Background(), "test")
	if err != nil {
		t.Fatalf("the next sync: %v", err)
	}
	for i, r := range rep.Registries {
		if up := !c.regs[i].fail.Load(); r.OK != up {
			t.Errorf("the next sync: %s ok = %v: %+v", r.ID, r.OK, r)
		}
	}
	c.check(t)
}

// check compares the whole table with what the registries list. A test may Scan its own
// small table to see every item; the code never does.
func (c *integrityCase) check(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	records := map[string]map[string]types.AttributeValue{} // by DID
	shadows := map[string][]string{}                        // DID -> registries
	index := map[string]map[string]string{}                 // DID -> facet key -> expires_at
	meta, facets := map[string]map[string]types.AttributeValue{}, map[string]map[string]types.AttributeValue{}
	p := dynamodb.NewScanPaginator(c.raw, &dynamodb.ScanInput{TableName: aws.String(c.table), ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range out.Items {
			pk, sk := s(it, "PK"), s(it, "SK")
			did, isAgent := strings.CutPrefix(pk, "AGENT#")
			switch {
			case isAgent && sk == "ROUTE":
				records[did] = it
			case isAgent && strings.HasPrefix(sk, "SOURCE#"):
				shadows[did] = append(shadows[did], strings.TrimPrefix(sk, "SOURCE#"))
			case isAgent && strings.HasPrefix(sk, "F#"):
				if index[did] == nil {
					index[did] = map[string]string{}
				}
				index[did][strings.TrimPrefix(sk, "F#")] = n(it, "expires_at")
			case strings.HasPrefix(pk, "REGISTRY#") && sk == "META":
				meta[strings.TrimPrefix(pk, "REGISTRY#")] = it
			case strings.HasPrefix(pk, "REGISTRY#") && sk == "FACETS":
				facets[strings.TrimPrefix(pk, "REGISTRY#")] = it
			}
		}
	}

	agents := map[string]federation.AgentCounts{}
	counts := map[string]map[string]int{}
	var active []string
	for did, rec := range records {
		reg, status := s(rec, "registry"), s(rec, "status")
		if v := s(rec, "index_pending"); v != "" {
			t.Errorf("%s is still marked pending (%s)", did, v)
		}
		a, err := c.store.Agent(ctx, did)
		if err != nil {
			t.Fatal(err)
		}
		want := directory.Facets(a)
		if got := l(rec, "facets"); !sameKeys(got, want) {
			t.Errorf("%s: the record's facets %v, its content's %v", did, got, want)
		}
		if got := slices.Collect(maps.Keys(index[did])); !sameKeys(got, want) {
			t.Errorf("%s (%s, %s): index entries %v, want %v", did, reg, status, got, want)
		}
		for k, exp := range index[did] {
			if (exp != "") != (status == federation.StatusGone) || (exp != "" && exp != n(rec, "expires_at")) {
				t.Errorf("%s: entry %s expires at %q, the %s record at %q", did, k, exp, status, n(rec, "expires_at"))
			}
		}
		if slices.Contains(shadows[did], reg) {
			t.Errorf("%s: %s has both the record and a shadow", did, reg)
		}
		ac := agents[reg]
		switch status {
		case federation.StatusActive:
			ac.Active++
			active = append(active, did)
		case federation.StatusStale:
			ac.Stale++
		case federation.StatusGone:
			ac.Gone++
		}
		agents[reg] = ac
		if counts[reg] == nil {
			counts[reg] = map[string]int{}
		}
		for _, k := range want {
			counts[reg][k]++
		}
	}
	for did := range index {
		if records[did] == nil {
			t.Errorf("index entries of %s, which has no record", did)
		}
	}
	for _, r := range c.regs {
		m := meta[r.ID]
		got := federation.AgentCounts{Active: atoi(n(m, "agents_active")), Stale: atoi(n(m, "agents_stale")), Gone: atoi(n(m, "agents_gone"))}
		if got != agents[r.ID] {
			t.Errorf("%s counts %+v; its records add up to %+v", r.ID, got, agents[r.ID])
		}
		gotFacets := map[string]int{}
		for k := range facets[r.ID] {
			if key, ok := strings.CutPrefix(k, "c_"); ok {
				gotFacets[key] = atoi(n(facets[r.ID], k))
			}
		}
		if !maps.Equal(gotFacets, counts[r.ID]) {
			t.Errorf("%s facet counts %v; its records add up to %v", r.ID, gotFacets, counts[r.ID])
		}
		// Every agent a registry that answers lists is an active agent of the directory.
		if r.fail.Load() {
			continue
		}
		for _, rec := range r.Records() {
			did := "did:agentvault:" + rec.Card.HumanReadableID
			if rec.Active && s(records[did], "status") != federation.StatusActive {
				t.Errorf("%s lists %s, which the directory holds as %q", r.ID, did, s(records[did], "status"))
			}
		}
	}
	// Discovery finds exactly the active records.
	found := c.discover(t, directory.Query{Limit: directory.MaxLimit})
	slices.Sort(found)
	slices.Sort(active)
	if !slices.Equal(found, active) {
		t.Errorf("discovery finds %v; the active records are %v", found, active)
	}
}

func s(it map[string]types.AttributeValue, name string) string {
	v, _ := it[name].(*types.AttributeValueMemberS)
	if v == nil {
		return ""
	}
	return v.Value
}

func n(it map[string]types.AttributeValue, name string) string {
	v, _ := it[name].(*types.AttributeValueMemberN)
	if v == nil {
		return ""
	}
	return v.Value
}

func l(it map[string]types.AttributeValue, name string) []string {
	var out []string
	if v, ok := it[name].(*types.AttributeValueMemberL); ok {
		for _, e := range v.Value {
			if s, ok := e.(*types.AttributeValueMemberS); ok {
				out = append(out, s.Value)
			}
		}
	}
	return out
}

func atoi(s string) int {
	i, _ := strconv.Atoi(s)
	return i
}

func sameKeys(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
