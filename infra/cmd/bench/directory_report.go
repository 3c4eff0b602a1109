package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/federation-gateway/gateway/shared/directory"
	"github.com/federation-gateway/gateway/shared/federation"
)

// reportDirectory prints the sync tables of each registry, the discovery table and how
// long each phase took.
func reportDirectory(w io.Writer, res directoryResults) {
	fmt.Fprintf(w, `
Directory sync: the registry adapter, the Syncer and the store, against in-process AgentVault registries and the
local endpoint; each registry synced once, then again after none, 1 %% and all of its cards changed (their description)
  all writes    DynamoDB items written: PutItem, UpdateItem, DeleteItem, each request of a BatchWriteItem
  agent writes  all writes − the %d every run makes: the lease, the registry's sync state, the lease's release;
                goal for a resync: ≤ 1 item per changed card
  per card      agent writes per changed card; the first sync writes each agent's record, one discovery index
                entry per filter value, and removes the mark that covers them (an UpdateItem), and
                the registry's counts (its state, its facet counts)
  items read    items DynamoDB returned to GetItem, BatchGetItem and Query (no goal)
  requests      registry HTTP requests: listing pages + card documents
  duration      wall time against the emulator, which is no model of DynamoDB's speed
`, syncOverhead)
	for _, run := range res.Registries {
		syncTable(w, run)
	}
	fmt.Fprintln(w, "(the emulator answers a Query in one page whatever its size; DynamoDB ends a page at 1 MB, so there reading all")
	fmt.Fprintln(w, " of a registry's records takes several Query calls)")
	discoveryTable(w, res)
	phasesTable(w, "Directory", res.Phases)
}

// syncTable prints what each sync of a registry wrote and requested, then its DynamoDB
// calls by operation.
func syncTable(w io.Writer, run registryRun) {
	api := "AgentVault v1 (list + a card request each)"
	if run.Kind == federation.KindAgentVaultFederation {
		api = "AgentVault v2 federation (cards changed since a cursor)"
	}
	fmt.Fprintf(w, "\nRegistry %s: %s, %d agents, listing pages of %d\n", run.ID, api, run.Agents, run.PageSize)
	names := make([]string, len(run.Rounds))
	for i, r := range run.Rounds {
		names[i] = r.Name
	}
	width := maxLen("DynamoDB calls", names)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-*s\tchanged\tall writes\tagent writes\tper card\tgoal\t\titems read\trequests\tpages + cards\tgoal\t\tfetched\twritten\tduration\t\n", width, "sync")
	for i, r := range run.Rounds {
		agentWrites := r.Writes - syncOverhead
		perCard, writeGoal, writeVerdict := "—", "—", ""
		if r.Changed > 0 {
			perCard = fmt.Sprintf("%.2f", float64(agentWrites)/float64(r.Changed))
		}
		if i > 0 { // the first sync writes each agent's index entries too: no goal
			writeGoal, writeVerdict = fmt.Sprintf("≤ %d", r.Changed), pass(agentWrites <= r.Changed)
		}
		reqGoal := requestGoal(run.Kind, run.Agents, r.Changed, run.PageSize)
		fmt.Fprintf(tw, "%-*s\t%d\t%d\t%d\t%s\t%s\t%s\t%d\t%d\t%d + %d\t≤ %d\t%s\t%d\t%d\t%s\t\n", width, r.Name,
			r.Changed, r.Writes, agentWrites, perCard, writeGoal, writeVerdict, r.Read,
			r.Report.Requests, r.Report.Pages, r.Report.Requests-r.Report.Pages, reqGoal, pass(r.Report.Requests <= reqGoal),
			r.Report.Fetched, r.Report.Written, seconds(r.Duration))
	}
	tw.Flush()
	if run.Kind == federation.KindAgentVaultFederation {
		fmt.Fprintf(w, "(requests goal: a listing page per %d changed cards, the card the cursor overlaps included, and the short page\n that ends the listing; no card requests)\n", run.PageSize)
	} else {
		fmt.Fprintf(w, "(requests goal: the %d listing pages, plus one card request per changed card)\n", ceilDiv(run.Agents, run.PageSize))
	}
	for _, r := range run.Rounds {
		if r.Served.Listing+r.Served.Cards != r.Report.Requests || r.Served.Listing != r.Report.Pages {
			fmt.Fprintf(w, "  note: %s: the registry served %d listing and %d card requests; the sync reported %d requests, %d pages\n",
				r.Name, r.Served.Listing, r.Served.Cards, r.Report.Requests, r.Report.Pages)
		}
	}

	calls := make([]map[string]int, len(run.Rounds))
	for i, r := range run.Rounds {
		calls[i] = r.Calls
	}
	ops := usedOps(calls...)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-*s\t%s\t\n", width, "DynamoDB calls", strings.Join(ops, "\t"))
	for _, r := range run.Rounds {
		fmt.Fprintf(tw, "%-*s\t%s\t\n", width, r.Name, opCounts(ops, r.Calls))
	}
	tw.Flush()
}

// discoveryTable prints each walked page of each query: items read per result returned
// and the DynamoDB calls it made.
func discoveryTable(w io.Writer, res directoryResults) {
	fmt.Fprintf(w, "\nDiscovery over %d agents (the registries above), pages of %d, the first %d pages of each query\n",
		res.Agents, directory.DefaultLimit, discoverPages)
	fmt.Fprintln(w, "(items read = Page.ItemsRead; calls counted, not timed: the emulator's Query scans the whole table)")
	var calls []map[string]int
	var labels []string
	for _, wk := range res.Walks {
		fmt.Fprintf(w, "  %s: %s; %d agents match (%.1f %%)\n", wk.Label, wk.Filters, wk.Matching,
			100*float64(wk.Matching)/float64(max(res.Agents, 1)))
		labels = append(labels, wk.Label)
		for _, p := range wk.Pages {
			calls = append(calls, p.Calls)
		}
	}
	ops := usedOps(calls...)
	width := maxLen("query", labels)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-*s\tpage\tresults\titems read\titems/result\tgoal\t\t%s\t\n", width, "query", strings.Join(ops, "\t"))
	for _, wk := range res.Walks {
		for i, p := range wk.Pages {
			ratio, goal, verdict := "—", "—", ""
			if p.Results > 0 {
				r := float64(p.ItemsRead) / float64(p.Results)
				ratio = fmt.Sprintf("%.2f", r)
				if wk.Goal > 0 {
					goal, verdict = fmt.Sprintf("≤ %g", wk.Goal), pass(r <= wk.Goal)
				}
			}
			fmt.Fprintf(tw, "%-*s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t\n", width, wk.Label, i+1,
				p.Results, p.ItemsRead, ratio, goal, verdict, opCounts(ops, p.Calls))
		}
	}
	tw.Flush()
	for _, wk := range res.Walks {
		for i, p := range wk.Pages {
			if p.Returned != p.ItemsRead {
				fmt.Fprintf(w, "  note: %s, page %d: DynamoDB returned %d items; the page reports %d\n", wk.Label, i+1, p.Returned, p.ItemsRead)
			}
		}
	}
	fmt.Fprintln(w, "(a first page also reads the facet counts, one item per registry, to choose the index: each query has a fresh\n Discoverer, as a cold function would; a warm one reuses the counts for a minute)")
}

// requestGoal is the most registry requests a sync should make: for AgentVault v1 every
// listing page and one request per changed card; for v2 one listing page per page size
// of changed cards, the last one short, which ends the listing.
func requestGoal(kind string, agents, changed, pageSize int) int {
	if kind == federation.KindAgentVaultFederation {
		// +1 card: the next run's listing starts just before the newest change seen, so
		// it brings that card back once.
		return (changed+1)/pageSize + 1
	}
	return ceilDiv(agents, pageSize) + changed
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// usedOps returns the operations of dynamoOps that any of the counts has, in that order.
func usedOps(counts ...map[string]int) []string {
	var ops []string
	for _, op := range dynamoOps {
		if slices.ContainsFunc(counts, func(c map[string]int) bool { return c[op] > 0 }) {
			ops = append(ops, op)
		}
	}
	return ops
}

// opCounts is the tab-separated counts of ops.
func opCounts(ops []string, calls map[string]int) string {
	s := make([]string, len(ops))
	for i, op := range ops {
		s[i] = fmt.Sprint(calls[op])
	}
	return strings.Join(s, "\t")
}

func maxLen(first string, rest []string) int {
	n := len(first)
	for _, s := range rest {
		n = max(n, len(s))
	}
	return n
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

// phasesTable prints how long each phase of a section took, and the total.
func phasesTable(w io.Writer, section string, phases []phase) {
	fmt.Fprintf(w, "\n%s section, wall time of each phase:\n", section)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	var total time.Duration
	for _, p := range phases {
		fmt.Fprintf(tw, "  %s\t%s\n", p.Name, seconds(p.Took))
		total += p.Took
	}
	fmt.Fprintf(tw, "  total\t%s\n", seconds(total))
	tw.Flush()
}
