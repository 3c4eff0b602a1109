package directory_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/federation-gateway/gateway/infra/demo"
	"github.com/federation-gateway/gateway/infra/localtest"
	"github.com/federation-gateway/gateway/shared/directory"
	"github.com/federation-gateway/gateway/shared/dynamo"
	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/logs"
	"github.com/federation-gateway/gateway/shared/outbound"
	"github.com/federation-gateway/gateway/shared/registry"
)

// liveRegistry is an AgentVault registry (the demo's implementation of the real contract)
// behind an httptest server that can be made to fail.
type liveRegistry struct {
	*demo.Registry
	srv   *httptest.Server
	fail  atomic.Bool  // answer 503 to everything
	delay atomic.Int64 // nanoseconds each card request waits
}

func newLiveRegistry(t *testing.T, id string, federationAPI bool) *liveRegistry {
	t.Helper()
	l := &liveRegistry{Registry: demo.NewRegistry(id, federationAPI)}
	l.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if l.fail.Load() {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return
		}
		if d := time.Duration(l.delay.Load()); d > 0 && len(r.URL.Path) > len("/api/v1/agent-cards/") {
			time.Sleep(d)
		}
		l.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(l.srv.Close)
	return l
}

func (l *liveRegistry) config() federation.Registry {
	kind := federation.KindAgentVault
	if l.Kind == federation.KindAgentVaultFederation {
		kind = federation.KindAgentVaultFederation
	}
	return federation.Registry{ID: l.ID, URL: l.srv.URL, Kind: kind}
}

func sampleCard(name string, skills ...string) demo.Card {
	c := demo.Card{
		HumanReadableID: "test/" + name, Name: name, Description: "The " + name + " agent.",
		URL: "https://agents.example/" + name, Capabilities: demo.Capabilities{A2AVersion: "1.0", Type: "text"},
		Tags: []string{"test"},
	}
	for _, s := range skills {
		c.Skills = append(c.Skills, demo.CardSkill{ID: s, Name: s})
	}
	return c
}

type syncFixture struct {
	store  *dynamo.Store
	table  string
	ops    *localtest.Ops
	syncer *directory.Syncer
	regs   []*liveRegistry
}

func newSyncFixture(t *testing.T, regs ...*liveRegistry) *syncFixture {
	t.Helper()
	return newSyncFixtureWith(t, registry.Options{Retries: -1}, directory.SyncOptions{StaleAfter: 2}, regs...)
}

func newSyncFixtureWith(t *testing.T, ropts registry.Options, sopts directory.SyncOptions, regs ...*liveRegistry) *syncFixture {
	t.Helper()
	return newSyncFixtureOn(t, localtest.DynamoDB(t), ropts, sopts, regs...)
}

// newSyncFixtureOn is a sync fixture whose store goes through db (counted).
func newSyncFixtureOn(t *testing.T, db *dynamodb.Client, ropts registry.Options, sopts directory.SyncOptions, regs ...*liveRegistry) *syncFixture {
	t.Helper()
	ops := &localtest.Ops{}
	db = localtest.CountOps(db, ops)
	table := localtest.Table(t)
	f := &syncFixture{store: dynamo.NewStore(db, table), table: table, ops: ops, regs: regs}
	httpClient := outbound.NewClient(outbound.Options{AllowPrivate: true, Timeout: 5 * time.Second})
	clients := map[string]directory.Source{}
	var configs []federation.Registry
	for _, r := range regs {
		c, err := registry.New(r.config(), httpClient, ropts)
		if err != nil {
			t.Fatal(err)
		}
		clients[r.ID] = c
		configs = append(configs, r.config())
	}
	f.syncer = directory.NewSyncer(f.store, configs, clients, sopts, logs.New(&bytes.Buffer{}, "error"))
	return f
}

func (f *syncFixture) run(t *testing.T) directory.SyncReport {
	t.Helper()
	f.ops.Reset()
	rep, err := f.syncer.Run(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// active is the number of active agents the status reports, summed over the registries.
func (f *syncFixture) active(t *testing.T) int {
	t.Helper()
	var configs []federation.Registry
	for _, r := range f.regs {
		configs = append(configs, r.config())
	}
	s, err := directory.NewReporter(f.store, configs, "test", "test").Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s.TotalAgents
}

func (f *syncFixture) agent(t *testing.T, did string) federation.Agent {
	t.Helper()
	a, err := f.store.Agent(context.Background(), did)
	if err != nil {
		t.Fatalf("agent %s: %v", did, err)
	}
	return a
}

func (f *syncFixture) discover(t *testing.T, q directory.Query) []string {
	t.Helper()
	d, err := directory.NewDiscoverer(f.store, []federation.Registry{{ID: "alpha"}, {ID: "beta"}}, cursorKey)
	if err != nil {
		t.Fatal(err)
	}
	page, err := d.Discover(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	var dids []string
	for _, a := range page.Results {
		dids = append(dids, a.DID)
	}
	return dids
}

func TestSyncWritesOnlyWhatChanged(t *testing.T) {
	alpha := newLiveRegistry(t, "alpha", false)
	for i := range 12 {
		alpha.Put(sampleCard(fmt.Sprintf("agent-%02d", i), "echo"))
	}
	f := newSyncFixture(t, alpha)

	rep := f.run(t)
	if r := rep.Registries[0]; !r.OK || r.Listed != 12 || r.Fetched != 12 || r.New != 12 {
		t.Fatalf("first sync: %+v", r)
	}
	if got := f.discover(t, directory.Query{Capabilities: []string{"echo"}}); len(got) != 12 {
		t.Fatalf("discover after the first sync: %d agents", len(got))
	}
	if n := f.active(t); n != 12 {
		t.Errorf("agent count = %d", n)
	}

	// An unchanged registry: one listing request, no card fetched, nothing written but
	// the registry's own state.
	rep = f.run(t)
	if r := rep.Registries[0]; r.Fetched != 0 || r.Written != 0 || r.Requests != 1 {
		t.Errorf("unchanged resync: %+v", r)
	}
	if w := f.ops.Writes(); w != 3 { // lease, registry state, lease release
		t.Errorf("unchanged resync wrote %d items, want 3 (lease, registry state, release)", w)
	}

	// One changed description (the listing shows it): one card fetched, one record written,
	// no index entry rewritten.
	c := sampleCard("agent-03", "echo")
	c.Description = "Now faster."
	alpha.Put(c)
	rep = f.run(t)
	if r := rep.Registries[0]; r.Fetched != 1 || r.Written != 1 {
		t.Errorf("one change: %+v", r)
	}
	if w := f.ops.Writes(); w != 4 {
		t.Errorf("one change wrote %d items, want 4 (the record, lease, state, release)", w)
	}
	if a := f.agent(t, "did:agentvault:test/agent-03"); a.Description != "Now faster." {
		t.Errorf("agent-03 = %+v", a)
	}
}

func TestSyncGoneAndBack(t *testing.T) {
	alpha := newLiveRegistry(t, "alpha", false)
	var ids []string
	for i := range 3 {
		ids = append(ids, alpha.Put(sampleCard(fmt.Sprintf("agent-%d", i), "echo")).ID)
	}
	f := newSyncFixture(t, alpha)
	f.run(t)
	did := "did:agentvault:test/agent-1"

	if _, err := alpha.SetActive(ids[1], false); err != nil {
		t.Fatal(err)
	}
	rep := f.run(t)
	if rep.Registries[0].Gone != 1 || f.agent(t, did).Status != federation.StatusGone {
		t.Fatalf("deactivated card: %+v, status %s", rep.Registries[0], f.agent(t, did).Status)
	}
	if got := f.discover(t, directory.Query{}); slices.Contains(got, did) || len(got) != 2 {
		t.Errorf("active agents after gone: %v", got)
	}
	if got := f.discover(t, directory.Query{Status: federation.StatusGone}); !slices.Equal(got, []string{did}) {
		t.Errorf("gone agents: %v", got)
	}
	if n := f.active(t); n != 2 {
		t.Errorf("agent count = %d, want 2", n)
	}

	if _, err := alpha.SetActive(ids[1], true); err != nil {
		t.Fatal(err)
	}
	f.run(t)
	if s := f.agent(t, did).Status; s != federation.StatusActive {
		t.Errorf("reappeared agent is %s", s)
	}
	if got := f.discover(t, directory.Query{}); len(got) != 3 {
		t.Errorf("active agents after reappearance: %v", got)
	}
	if n := f.active(t); n != 3 {
		t.Errorf("agent count = %d, want 3", n)
	}
}

// A failing registry is unhealthy at once and stale after StaleAfter failures; its agents
// stay discoverable, the other registry is untouched, and recovery makes them active.
func TestSyncRegistryFailure(t *testing.T) {
	alpha, beta := newLiveRegistry(t, "alpha", false), newLiveRegistry(t, "beta", true)
	alpha.Put(sampleCard("a1", "echo"))
	beta.Put(sampleCard("b1", "echo"))
	f := newSyncFixture(t, alpha, beta)
	f.run(t)

	alpha.fail.Store(true)
	rep := f.run(t)
	if rep.Registries[0].OK || !rep.Registries[1].OK {
		t.Fatalf("one failing registry: %+v", rep.Registries)
	}
	states, _ := f.store.RegistryStates(context.Background(), []string{"alpha", "beta"})
	if states["alpha"].Healthy || states["alpha"].LastError == "" || !states["beta"].Healthy {
		t.Errorf("states after one failure: %+v", states)
	}
	if s := f.agent(t, "did:agentvault:test/a1").Status; s != federation.StatusActive {
		t.Errorf("after one failure a1 is %s", s)
	}

	since := rep.Registries[0].UnhealthySince
	if since == nil || !states["alpha"].UnhealthySince.Equal(*since) || rep.Registries[1].UnhealthySince != nil {
		t.Errorf("unhealthy since %v, state %v", since, states["alpha"].UnhealthySince)
	}
	rep = f.run(t)
	if rep.Registries[0].Staled != 1 {
		t.Errorf("second failure: %+v", rep.Registries[0])
	}
	// A second failure leaves the time it turned unhealthy as it was.
	if again := rep.Registries[0].UnhealthySince; since == nil || again == nil || !again.Equal(*since) {
		t.Errorf("unhealthy since %v, then %v", since, again)
	}
	if s := f.agent(t, "did:agentvault:test/a1").Status; s != federation.StatusStale {
		t.Errorf("after two failures a1 is %s", s)
	}
	if got := f.discover(t, directory.Query{Status: federation.StatusStale}); !slices.Equal(got, []string{"did:agentvault:test/a1"}) {
		t.Errorf("stale agents: %v", got)
	}
	if s := f.agent(t, "did:agentvault:test/b1").Status; s != federation.StatusActive {
		t.Errorf("the healthy registry's agent is %s", s)
	}

	alpha.fail.Store(false)
	if rep := f.run(t); rep.Registries[0].UnhealthySince != nil {
		t.Errorf("healthy again, unhealthy since %v", rep.Registries[0].UnhealthySince)
	}
	if s := f.agent(t, "did:agentvault:test/a1").Status; s != federation.StatusActive {
		t.Errorf("after recovery a1 is %s", s)
	}
	if states, _ := f.store.RegistryStates(context.Background(), []string{"alpha"}); !states["alpha"].UnhealthySince.IsZero() {
		t.Errorf("healthy again, the state says unhealthy since %v", states["alpha"].UnhealthySince)
	}
	if got := f.discover(t, directory.Query{Capabilities: []string{"echo"}}); len(got) != 2 {
		t.Errorf("after recovery: %v", got)
	}
}

// The same DID in two registries: the first registry to list it keeps the record, the
// other's view becomes a shadow, and the conflict is reported, never overwritten.
func TestSyncDuplicateDID(t *testing.T) {
	alpha, beta := newLiveRegistry(t, "alpha", false), newLiveRegistry(t, "beta", true)
	alpha.Put(sampleCard("shared", "echo"))
	c := sampleCard("shared", "sum")
	c.Description = "Beta's version."
	beta.Put(c)
	f := newSyncFixture(t, alpha, beta)

	rep := f.run(t)
	if rep.Registries[1].Conflicts != 1 {
		t.Fatalf("report: %+v", rep.Registries)
	}
	a := f.agent(t, "did:agentvault:test/shared")
	if a.Registry != "alpha" || a.Description != "The shared agent." || !slices.Equal(a.AlsoListedBy, []string{"beta"}) {
		t.Errorf("record: %+v", a)
	}
	// Resyncs are quiet: the shadow remembers beta's card.
	rep = f.run(t)
	if rep.Registries[1].Written != 0 || rep.Registries[1].Fetched != 0 {
		t.Errorf("resync: %+v", rep.Registries[1])
	}

	// When alpha drops it, beta's view takes over in the same run, its card unchanged,
	// and both registries' counts follow.
	rec, _ := alpha.Find("test/shared")
	if _, err := alpha.SetActive(rec.ID, false); err != nil {
		t.Fatal(err)
	}
	rep = f.run(t)
	if a := f.agent(t, "did:agentvault:test/shared"); a.Registry != "beta" || a.Status != federation.StatusActive || a.Description != c.Description {
		t.Errorf("after alpha dropped it: %+v", a)
	}
	if got := f.discover(t, directory.Query{Capabilities: []string{"sum"}}); !slices.Equal(got, []string{"did:agentvault:test/shared"}) {
		t.Errorf("discover sum after the takeover: %v", got)
	}
	states, _ := f.store.RegistryStates(context.Background(), []string{"alpha", "beta"})
	if states["alpha"].Agents != (federation.AgentCounts{}) || states["beta"].Agents != (federation.AgentCounts{Active: 1}) {
		t.Errorf("counts after the takeover: alpha %+v, beta %+v", states["alpha"].Agents, states["beta"].Agents)
	}

	// Beta's later change is its own record's.
	c.Description = "Beta's version, updated."
	beta.Put(c)
	f.run(t)
	if a := f.agent(t, "did:agentvault:test/shared"); a.Registry != "beta" || a.Description != c.Description {
		t.Errorf("after beta changed it: %+v", a)
	}
}

func TestSyncLease(t *testing.T) {
	alpha := newLiveRegistry(t, "alpha", false)
	alpha.Put(sampleCard("a1"))
	f := newSyncFixture(t, alpha)
	if err := f.store.Lease(context.Background(), "sync", "someone-else", time.Minute); err != nil {
		t.Fatal(err)
	}
	rep := f.run(t)
	if rep.Skipped == "" || len(rep.Registries) != 0 {
		t.Fatalf("a run while the lease is held: %+v", rep)
	}
	if _, err := f.store.Agent(context.Background(), "did:agentvault:test/a1"); federation.ErrorCode(err) != federation.ENOTFOUND {
		t.Errorf("the skipped run wrote: %v", err)
	}
	if err := f.store.ReleaseLease(context.Background(), "sync", "someone-else"); err != nil {
		t.Fatal(err)
	}
	if rep := f.run(t); rep.Skipped != "" || !rep.Registries[0].OK {
		t.Errorf("after release: %+v", rep)
	}
}

// A run stops fetching cards when its time budget is spent and the next run fetches the
// rest: nothing is lost, nothing fetched twice.
func TestSyncTimeBudget(t *testing.T) {
	alpha := newLiveRegistry(t, "alpha", false)
	for i := range 40 {
		alpha.Put(sampleCard(fmt.Sprintf("agent-%02d", i), "echo"))
	}
	// About 400 ms to fetch cards that take 50 ms each, two at a time, and a second kept
	// back to record them: a loaded machine (tests run with -race, beside others) must
	// not turn the margin into a failure.
	alpha.delay.Store(int64(50 * time.Millisecond))
	f := newSyncFixtureWith(t, registry.Options{Retries: -1, Concurrency: 2, DeadlineMargin: 100 * time.Millisecond},
		directory.SyncOptions{Margin: time.Second}, alpha)

	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	f.ops.Reset()
	rep, err := f.syncer.Run(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	first := rep.Registries[0]
	if !first.OK || first.Deferred == 0 || first.Fetched == 0 || first.Fetched+first.Deferred != 40 {
		t.Fatalf("budgeted run: %+v", first)
	}
	if got := f.discover(t, directory.Query{Limit: 200}); len(got) != first.Fetched {
		t.Errorf("after the budgeted run %d agents are listed, %d were fetched", len(got), first.Fetched)
	}
	alpha.delay.Store(0)
	rep = f.run(t)
	if second := rep.Registries[0]; second.Fetched != first.Deferred || second.Deferred != 0 {
		t.Errorf("the next run fetched %d of the %d deferred: %+v", second.Fetched, first.Deferred, second)
	}
	if got := f.discover(t, directory.Query{Limit: 200}); len(got) != 40 {
		t.Errorf("after the second run: %d agents", len(got))
	}
}

// A registry's warnings (entries that are not usable cards, cards deferred) reach the
// run's report and the registry's status; the status counts its agents by status.
func TestSyncReportsProblems(t *testing.T) {
	alpha := newLiveRegistry(t, "alpha", false)
	alpha.Put(sampleCard("good", "echo"))
	bad := alpha.Put(sampleCard("bad", "echo"))
	if err := alpha.SetRawCardData(bad.ID, []byte(`["not", "a", "card"]`)); err != nil {
		t.Fatal(err)
	}
	f := newSyncFixture(t, alpha)
	rep := f.run(t)
	r := rep.Registries[0]
	if !r.OK || r.Skipped != 1 || len(r.Problems) != 1 || !strings.Contains(r.Problems[0], "card_data is not a JSON object") {
		t.Fatalf("report: %+v", r)
	}
	status, err := directory.NewReporter(f.store, []federation.Registry{alpha.config()}, "test", "test").Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s := status.Registries[0]; s.Skipped != 1 || !slices.Equal(s.Problems, r.Problems) || s.Agents.Active != 1 {
		t.Errorf("status: %+v", s)
	}

	// Stale agents are counted as stale, not as the registry's agents.
	alpha.fail.Store(true)
	f.run(t)
	f.run(t)
	status, err = directory.NewReporter(f.store, []federation.Registry{alpha.config()}, "test", "test").Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s := status.Registries[0]; s.AgentCount != 0 || s.Agents != (federation.AgentCounts{Stale: 1}) || status.TotalAgents != 0 || status.TotalStale != 1 {
		t.Errorf("status while stale: %+v, totals %d active %d stale", s, status.TotalAgents, status.TotalStale)
	}
}
