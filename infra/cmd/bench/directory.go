package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"

	"github.com/federation-gateway/gateway/infra/demo"
	"github.com/federation-gateway/gateway/infra/devstack"
	"github.com/federation-gateway/gateway/infra/localtest"
	"github.com/federation-gateway/gateway/shared/directory"
	"github.com/federation-gateway/gateway/shared/dynamo"
	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/logs"
	"github.com/federation-gateway/gateway/shared/outbound"
	"github.com/federation-gateway/gateway/shared/registry"
)

// syncOverhead is what every sync run writes whatever changed: the lease (PutItem), the
// registry's sync state (PutItem) and the lease's release (DeleteItem).
const syncOverhead = 3

// discoverPages is how many pages of each discovery query are walked, at most.
const discoverPages = 4

// dynamoOps are the DynamoDB data-plane operations the tables report, in this order.
var dynamoOps = []string{"GetItem", "BatchGetItem", "Query", "Scan", "PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactGetItems", "TransactWriteItems"}

// directoryResults is what the directory section measured.
type directoryResults struct {
	Registries []registryRun
	Agents     int // in the directory the discovery queries ran over
	Walks      []discoveryWalk
	Phases     []phase
}

// registryRun is one registry synced again and again as its cards change.
type registryRun struct {
	ID       string
	Kind     string
	Agents   int
	PageSize int
	Rounds   []syncRound
}

// syncRound is one sync run and what it cost.
type syncRound struct {
	Name     string
	Changed  int // cards new or changed in the registry since the previous run
	Report   directory.RegistryReport
	Writes   int            // DynamoDB items written
	Read     int            // DynamoDB items returned by reads
	Calls    map[string]int // DynamoDB calls by operation
	Served   served         // requests the registry answered
	Duration time.Duration
}

// served counts the requests a registry answered, by what they asked for.
type served struct {
	Listing int // listing pages (v1 list, v2 federation)
	Cards   int // card documents
}

// discoveryWalk is the first pages of one discovery query.
type discoveryWalk struct {
	Label    string  // short, for the table
	Filters  string  // what it asks for
	Matching int     // agents in the directory that match
	Goal     float64 // most items read per result returned; 0 for none
	Pages    []discoveryPage
}

type discoveryPage struct {
	Results   int
	ItemsRead int // as the page reports it
	Returned  int // items DynamoDB returned, as counted at the client
	Calls     map[string]int
}

// phase is how long a part of the section took, so a slow run shows where time went.
type phase struct {
	Name string
	Took time.Duration
}

// directoryBench measures the sync and discovery of the directory: the real registry
// adapters against in-process AgentVault registries, the real Syncer and Discoverer, the
// real store on a fresh table of the template at the local endpoint, its DynamoDB client
// counting every operation.
type directoryBench struct {
	store   *dynamo.Store
	ops     *localtest.Ops
	reads   *readCounter
	http    *http.Client
	agents  int // per registry
	results directoryResults
}

// benchDirectory runs the section on a fresh copy of table, agents cards per registry.
func benchDirectory(ctx context.Context, endpointURL string, table devstack.Table, agents int) (directoryResults, error) {
	table.Name = fmt.Sprintf("bench-directory-%d", time.Now().UnixNano())
	if err := devstack.NewCloud(endpointURL).CreateTable(ctx, table); err != nil {
		return directoryResults{}, err
	}
	ops, reads := &localtest.Ops{}, &readCounter{}
	db := localtest.CountOps(reads.wrap(dynamo.NewClient(devstack.LocalAWSConfig(endpointURL), true)), ops)
	b := &directoryBench{
		store:  dynamo.NewStore(db, table.Name),
		ops:    ops,
		reads:  reads,
		http:   outbound.NewClient(outbound.Options{AllowPrivate: true}),
		agents: agents,
	}
	// Both registries sync into the one table: together they are the directory the
	// discovery queries search.
	for _, r := range []struct {
		id   string
		kind string
	}{{"alpha", federation.KindAgentVault}, {"beta", federation.KindAgentVaultFederation}} {
		run, err := b.syncRegistry(ctx, r.id, r.kind)
		if err != nil {
			return directoryResults{}, err
		}
		b.results.Registries = append(b.results.Registries, run)
	}
	b.results.Agents = len(b.results.Registries) * agents
	start := time.Now()
	if err := b.discover(ctx); err != nil {
		return directoryResults{}, err
	}
	b.phase("discovery: walk the queries' pages (not a figure)", start)
	return b.results, nil
}

func (b *directoryBench) phase(name string, start time.Time) {
	b.results.Phases = append(b.results.Phases, phase{Name: name, Took: time.Since(start)})
}

// syncRegistry fills a registry of the kind with b.agents cards, syncs it, and syncs it
// again after changing none, 1 % and all of its cards.
func (b *directoryBench) syncRegistry(ctx context.Context, id, kind string) (registryRun, error) {
	run := registryRun{ID: id, Kind: kind, Agents: b.agents, PageSize: registry.MaxPageSizeV1}
	if kind == federation.KindAgentVaultFederation {
		run.PageSize = registry.MaxPageSizeV2
	}
	start := time.Now()
	reg := demo.NewRegistry(id, kind == federation.KindAgentVaultFederation)
	for i := range b.agents {
		reg.Put(benchCard(id, i, 0))
	}
	var counted requestCounter
	srv := httptest.NewServer(counted.wrap(reg.Handler()))
	defer srv.Close()
	cfg := federation.Registry{ID: id, URL: srv.URL, Kind: kind}
	client, err := registry.New(cfg, b.http, registry.Options{})
	if err != nil {
		return run, err
	}
	// Failures show in the report's registry entry; the log would only repeat them.
	syncer := directory.NewSyncer(b.store, []federation.Registry{cfg}, map[string]directory.Source{id: client},
		directory.SyncOptions{}, logs.New(io.Discard, "error"))
	b.phase(fmt.Sprintf("%s: put %d cards in the registry", id, b.agents), start)

	rounds := []struct {
		name    string
		changed int
	}{
		{"initial", b.agents},
		{"resync, 0 % changed", 0},
		{"resync, 1 % changed", b.agents / 100},
		{"resync, 100 % changed", b.agents},
	}
	for revision, r := range rounds {
		if revision > 0 {
			for _, i := range spread(b.agents, r.changed) {
				reg.Put(benchCard(id, i, revision))
			}
		}
		progress("directory: sync %s (%s), %s", id, kind, r.name)
		b.ops.Reset()
		b.reads.reset()
		counted.reset()
		start := time.Now()
		rep, err := syncer.Run(ctx, "bench")
		took := time.Since(start)
		if err != nil {
			return run, fmt.Errorf("sync %s, %s: %w", id, r.name, err)
		}
		if rep.Skipped != "" || len(rep.Registries) != 1 || !rep.Registries[0].OK {
			return run, fmt.Errorf("sync %s, %s: %+v", id, r.name, rep)
		}
		round := syncRound{
			Name: r.name, Changed: r.changed, Report: rep.Registries[0], Writes: b.ops.Writes(), Read: b.reads.count(),
			Calls: snapshot(b.ops), Served: counted.served(), Duration: took,
		}
		run.Rounds = append(run.Rounds, round)
		progress("directory: %s %s: %d items written, %d registry requests, %s", id, r.name, round.Writes,
			round.Report.Requests, took.Round(time.Millisecond))
		b.phase(fmt.Sprintf("%s: sync, %s", id, r.name), start)
	}
	return run, nil
}

// discover walks the first pages of a selective query, a broad one, and a broad one whose
// second filter rejects half of what the index yields.
func (b *directoryBench) discover(ctx context.Context) error {
	var registries []federation.Registry
	for _, r := range b.results.Registries {
		registries = append(registries, federation.Registry{ID: r.ID})
	}
	queries := []struct {
		label, filters string
		q              directory.Query
		match          func(i int) bool
		goal           float64
	}{
		{"selective", "tag " + rareTag, directory.Query{Tag: rareTag}, isRare, 2},
		{"broad", "capability " + broadSkill, directory.Query{Capabilities: []string{broadSkill}}, hasBroadSkill, 0},
		{"post-filtered", "type " + serviceTypes[0] + " and capability " + broadSkill + " (the type's index is walked, half of it passes)",
			directory.Query{ServiceType: serviceTypes[0], Capabilities: []string{broadSkill}},
			func(i int) bool { return hasBroadSkill(i) && serviceType(i) == serviceTypes[0] }, 0},
	}
	for _, qq := range queries {
		progress("directory: discover, %s: %s", qq.label, qq.filters)
		walk := discoveryWalk{Label: qq.label, Filters: qq.filters, Goal: qq.goal}
		for i := range b.agents { // every registry holds cards 0 to agents-1
			if qq.match(i) {
				walk.Matching += len(registries)
			}
		}
		// A fresh Discoverer per query, as a cold function has: its first page reads the
		// facet counts to choose the index.
		d, err := directory.NewDiscoverer(b.store, registries, []byte(strings.Repeat("k", 32)))
		if err != nil {
			return err
		}
		q := qq.q
		for range discoverPages {
			b.ops.Reset()
			b.reads.reset()
			page, err := d.Discover(ctx, q)
			if err != nil {
				return fmt.Errorf("discover %s: %w", qq.filters, err)
			}
			walk.Pages = append(walk.Pages, discoveryPage{
				Results: len(page.Results), ItemsRead: page.ItemsRead, Returned: b.reads.count(), Calls: snapshot(b.ops),
			})
			if page.NextCursor == "" {
				break
			}
			q.Cursor = page.NextCursor
		}
		b.results.Walks = append(b.results.Walks, walk)
	}
	return nil
}

// requestCounter counts the requests a registry serves.
type requestCounter struct {
	listing, cards atomic.Int64
}

func (c *requestCounter) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch strings.TrimSuffix(r.URL.Path, "/") {
		case "/api/v1/agent-cards", "/api/v1/federation/agent-cards":
			c.listing.Add(1)
		default:
			c.cards.Add(1)
		}
		h.ServeHTTP(w, r)
	})
}

func (c *requestCounter) reset() { c.listing.Store(0); c.cards.Store(0) }

func (c *requestCounter) served() served {
	return served{Listing: int(c.listing.Load()), Cards: int(c.cards.Load())}
}

// readCounter counts the items DynamoDB returns to reads, which localtest.Ops does not.
type readCounter struct {
	items atomic.Int64
}

// wrap returns a copy of client that counts in r.
func (r *readCounter) wrap(client *dynamodb.Client) *dynamodb.Client {
	return dynamodb.New(client.Options(), func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
			return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("countReads",
				func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
					out, md, err := next.HandleInitialize(ctx, in)
					switch v := out.Result.(type) {
					case *dynamodb.GetItemOutput:
						if v.Item != nil {
							r.items.Add(1)
						}
					case *dynamodb.BatchGetItemOutput:
						for _, items := range v.Responses {
							r.items.Add(int64(len(items)))
						}
					case *dynamodb.QueryOutput:
						r.items.Add(int64(len(v.Items)))
					case *dynamodb.ScanOutput:
						r.items.Add(int64(len(v.Items)))
					}
					return out, md, err
				}), middleware.After)
		})
	})
}

func (r *readCounter) reset()     { r.items.Store(0) }
func (r *readCounter) count() int { return int(r.items.Load()) }

// snapshot reads the calls of each operation.
func snapshot(ops *localtest.Ops) map[string]int {
	calls := map[string]int{}
	for _, op := range dynamoOps {
		if n := ops.Calls(op); n > 0 {
			calls[op] = n
		}
	}
	return calls
}

// The cards' make-up: what discovery filters on.
var (
	serviceTypes = []string{"text", "weather", "math"}
	otherSkills  = []string{"forecast", "sum", "search", "classify", "extract"}
	topicTags    = []string{"finance", "travel", "health", "retail"}
)

const (
	broadSkill = "summarize" // every other agent
	rareTag    = "rare"      // one agent in rareEvery
	rareEvery  = 64
)

func serviceType(i int) string { return serviceTypes[i%len(serviceTypes)] }
func hasBroadSkill(i int) bool { return i%2 == 0 }
func isRare(i int) bool        { return i%rareEvery == 0 }

// benchCard is card i of a registry at a revision; a revision changes only the
// description, which the v1 listing shows, so the adapter's cache sees the change.
func benchCard(registryID string, i, revision int) demo.Card {
	first := "translate"
	if hasBroadSkill(i) {
		first = broadSkill
	}
	tags := []string{"bench", topicTags[i%len(topicTags)]}
	if isRare(i) {
		tags = append(tags, rareTag)
	}
	return demo.Card{
		SchemaVersion:   "1.0",
		HumanReadableID: fmt.Sprintf("bench/%s-%05d", registryID, i),
		AgentVersion:    "1.0.0",
		Name:            fmt.Sprintf("Bench agent %s %d", registryID, i),
		Description:     fmt.Sprintf("Benchmark agent %d of registry %s, revision %d.", i, registryID, revision),
		URL:             fmt.Sprintf("https://agents.example/%s/%d", registryID, i),
		Provider:        demo.Provider{Name: "Bench Agents Inc.", URL: "https://agents.example"},
		Capabilities:    demo.Capabilities{A2AVersion: "1.0", Type: serviceType(i)},
		AuthSchemes:     []demo.AuthScheme{{Scheme: "none"}},
		Skills: []demo.CardSkill{
			{ID: first, Name: first, Description: "Does " + first + "."},
			{ID: otherSkills[i%len(otherSkills)], Name: otherSkills[i%len(otherSkills)], Description: "Does " + otherSkills[i%len(otherSkills)] + "."},
		},
		Tags: tags,
	}
}

// spread returns k of the indexes 0 to n-1, evenly spaced from 0.
func spread(n, k int) []int {
	if k <= 0 || n <= 0 {
		return nil
	}
	k = min(k, n)
	out := make([]int, k)
	for j := range k {
		out[j] = j * n / k
	}
	return out
}
