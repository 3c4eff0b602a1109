package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/federation-gateway/gateway/shared/routing"
)

// Where the routing critical path started (issue 11): the jti's PutItem, the parties'
// BatchGetItem and the admission's transaction before the delivery, the record's after.
const roundTripsBefore, roundTripsBeforeAfter = 3, 1

// Scaling limits of DynamoDB the global-limit figures are computed from.
const (
	itemWritesPerSecond = 1000   // write units a second one item (one partition) takes
	tableQuotaWRU       = 40_000 // the default on-demand table quota of write units a second
	targetWait          = 100 * time.Millisecond
)

// billed is the mean billed duration of the in-process routed messages of the latency
// run: Lambda bills each invocation rounded up to the millisecond.
func billed(paths []pathLatency) time.Duration {
	for _, p := range paths {
		if p.Name != pathInProcess || len(p.Samples) == 0 {
			continue
		}
		var sum time.Duration
		for _, d := range p.Samples {
			sum += (d + time.Millisecond - 1).Truncate(time.Millisecond)
		}
		return sum / time.Duration(len(p.Samples))
	}
	return 0
}

// roundTrips is the mean of a message's requests before and after its delivery began,
// by operation.
func roundTrips(msgs []messageCost) (before, after map[string]float64) {
	before, after = map[string]float64{}, map[string]float64{}
	for _, m := range msgs {
		for _, c := range m.Calls {
			if c.After {
				after[c.Op] += 1 / float64(len(msgs))
			} else {
				before[c.Op] += 1 / float64(len(msgs))
			}
		}
	}
	return before, after
}

func sum(m map[string]float64) float64 {
	t := 0.0
	for _, v := range m {
		t += v
	}
	return t
}

func opList(m map[string]float64) string {
	var parts []string
	for _, op := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %.2f", op, m[op]))
	}
	return strings.Join(parts, ", ")
}

// reportRoundTrips prints the DynamoDB round trips of a routed message, before and after
// its delivery, against the goal of 1 + 1.
func reportRoundTrips(w io.Writer, res routingResults) {
	msgs := res.Cost.Messages
	if len(msgs) < 2 {
		return
	}
	fmt.Fprintf(w, "\nDynamoDB round trips on the routing critical path, per message: %d messages routed one at a time by a Router whose\ncache starts empty, its client recording every request (goal 1 + 1)\n", len(msgs))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  messages\tbefore the delivery\tafter it\tgoal\t\n")
	coldB, coldA := roundTrips(msgs[:1])
	warmB, warmA := roundTrips(msgs[1:])
	fmt.Fprintf(tw, "  the first of a function instance\t%.0f: %s\t%.0f: %s\t\t\n", sum(coldB), opList(coldB), sum(coldA), opList(coldA))
	fmt.Fprintf(tw, "  the next %d (records cached)\t%.2f: %s\t%.2f: %s\t1 + 1\t%s\n", len(msgs)-1, sum(warmB), opList(warmB), sum(warmA), opList(warmA),
		pass(sum(warmB) <= 1 && sum(warmA) <= 1))
	fmt.Fprintf(tw, "  before this work (issue 11)\t%d: PutItem (jti), BatchGetItem (parties), TransactWriteItems (admission)\t%d: TransactWriteItems\t\t\n",
		roundTripsBefore, roundTripsBeforeAfter)
	tw.Flush()
	fmt.Fprintf(w, "  the parties' records are kept %s per instance; every admission re-asserts the sender's (ConditionCheck)\n", routing.DefaultDirectoryCacheTTL)
}

// costLine is one component of a routed message's DynamoDB cost.
type costLine struct {
	Name, Kind, Op string
	Bytes          float64 // mean size
	WRU, RRU       float64 // per message
}

// costLines sums the items of msgs by component, per message.
func costLines(msgs []messageCost) []costLine {
	byName := map[string]*costLine{}
	var order []string
	counts := map[string]int{}
	for _, m := range msgs {
		for _, c := range m.Calls {
			for _, u := range c.Items {
				name := u.component()
				l, ok := byName[name]
				if !ok {
					l = &costLine{Name: name, Kind: u.Kind, Op: c.Op}
					byName[name] = l
					order = append(order, name)
				}
				wru, rru := u.units()
				l.WRU += wru / float64(len(msgs))
				l.RRU += rru / float64(len(msgs))
				l.Bytes += float64(u.Size)
				counts[name]++
			}
		}
	}
	out := make([]costLine, len(order))
	for i, name := range order {
		out[i] = *byName[name]
		out[i].Bytes /= float64(counts[name])
	}
	return out
}

// perMillion is the dollars of 1 million messages of what one costs.
func perMillion(oneMessage float64) float64 { return oneMessage * 1e6 }

// reportCost prints what 1 million routed messages cost at AWS list prices, from the
// items the cost run's messages wrote, checked and read, at their real sizes.
func reportCost(w io.Writer, res routingResults) {
	msgs := res.Cost.Messages
	if len(msgs) < 2 || res.Cost.MemoryMB == 0 {
		return
	}
	warm := msgs[1:]
	lines := costLines(warm)
	fmt.Fprintf(w, "\nCost of 1 million routed messages at AWS list prices (us-east-1, on-demand, arm64), from what the %d cached messages above\nasked of the table, each item sized by DynamoDB's rules (1 WRU per KB written or checked, 1 RRU per 4 KB read strongly,\nhalf eventually; twice either in a transaction)\n", len(warm))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "component\titem\trequest\tbytes\tunits/message\t$/million\t\n")
	var wru, rru float64
	for _, l := range lines {
		units := fmt.Sprintf("%.2f WRU", l.WRU)
		dollars := perMillion(l.WRU * priceWRU)
		if l.Kind == "read" {
			units, dollars = fmt.Sprintf("%.2f RRU", l.RRU), perMillion(l.RRU*priceRRU)
		}
		wru, rru = wru+l.WRU, rru+l.RRU
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.0f\t%s\t%.2f\t\n", l.Name, l.Kind, l.Op, l.Bytes, units, dollars)
	}
	gb := float64(res.Cost.MemoryMB) / 1024
	components := []struct {
		name, basis string
		dollars     float64
	}{
		{"DynamoDB writes", fmt.Sprintf("%.2f WRU × $%.3f/M", wru, priceWRU*1e6), perMillion(wru * priceWRU)},
		{"DynamoDB reads", fmt.Sprintf("%.2f RRU × $%.3f/M", rru, priceRRU*1e6), perMillion(rru * priceRRU)},
		{"HTTP API requests", fmt.Sprintf("1 × $%.2f/M", priceHTTPAPI*1e6), perMillion(priceHTTPAPI)},
		{"Lambda requests", fmt.Sprintf("1 × $%.2f/M", priceLambdaReq*1e6), perMillion(priceLambdaReq)},
		{"Lambda duration", fmt.Sprintf("%d MB × %s billed × $%.10f/GB-s", res.Cost.MemoryMB, ms(res.Cost.Billed), priceGBSecond),
			perMillion(gb * res.Cost.Billed.Seconds() * priceGBSecond)},
	}
	total, top := 0.0, components[0]
	for _, c := range components {
		total += c.dollars
		if c.dollars > top.dollars {
			top = c
		}
	}
	fmt.Fprintf(tw, "\t\t\t\t\t\t\n")
	for _, c := range components {
		fmt.Fprintf(tw, "%s\t\t\t\t%s\t%.2f\t\n", c.name, c.basis, c.dollars)
	}
	fmt.Fprintf(tw, "total\t\t\t\tgoal ≤ %.2f\t%.2f\t%s\t\n", maxCostPerMillion, total, pass(total <= maxCostPerMillion))
	tw.Flush()
	if total > maxCostPerMillion {
		fmt.Fprintf(w, "  what keeps it above the goal: %s, $%.2f of it (the rest alone is $%.2f); README.md, \"What a routed message costs\", says why\n",
			top.name, top.dollars, total-top.dollars)
	}
	var read, check, jti float64
	for _, l := range costLines(msgs[:1]) {
		if l.Kind == "read" {
			read = l.RRU
			fmt.Fprintf(w, "  an instance's first message of a sender or target also reads the records: %.2f RRU, $%.2f a million even if every message missed\n",
				l.RRU, perMillion(l.RRU*priceRRU))
		}
	}
	for _, l := range lines {
		switch l.Kind {
		case "check":
			check += l.WRU
		case "put":
			if l.Name == "jti claim" {
				jti += l.WRU
			}
		}
	}
	// The same items as the 3 + 1 path wrote them: the jti alone (half its transactional
	// units), both records read on every message, no check.
	oldWRU := wru - check - jti/2
	old := perMillion(oldWRU*priceWRU+read*priceRRU) + total - perMillion(wru*priceWRU+rru*priceRRU)
	fmt.Fprintf(w, "  before this work (3 + 1 round trips), with the same items: %.2f WRU + %.2f RRU, $%.2f a million; the one round trip\n"+
		"  before the delivery costs $%.2f more: the check of the sender's record (%.2f WRU) and the jti inside the transaction\n",
		oldWRU, read, old, total-old, check)
	fmt.Fprintf(w, "  the duration is the in-process Router's on loopback (local endpoint, local agent): on AWS each %s a target takes to\n  answer adds $%.2f a million (the function is billed while it waits), and DynamoDB's own latency adds to it likewise\n",
		targetWait, perMillion(gb*targetWait.Seconds()*priceGBSecond))
}

// reportShards prints the global-limit runs and what DynamoDB's per-item ceiling allows.
func reportShards(w io.Writer, res routingResults) {
	if len(res.Shards) == 0 {
		return
	}
	fmt.Fprintf(w, "\nThe global limit in shards: %d registered senders, %d messages in flight over %d Routers (function instances), deliveries\nanswered at once, so each message is its two transactions and the Router's work (the local endpoint runs transactions one\nat a time: it shows the spill rule and the exact limit, not DynamoDB's throughput; the ceiling below is computed)\n",
		shardSenders, shardConcurrency, shardInstances)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "limit/minute\tshards\tsent\tadmitted\trefused\terrors\tfirst refusal after\twall\tadmitted/s\t\t\n")
	for _, r := range res.Shards {
		first, verdict := "—", ""
		if r.FirstRefusal >= 0 {
			first = fmt.Sprint(r.FirstRefusal)
		}
		if r.Sent > r.Limit {
			// Sent past the limit: the minute admits exactly it, and refuses none far below.
			verdict = pass(r.Admitted == r.Limit && r.FirstRefusal >= r.Limit*2/3)
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%.1f\t%s\t\n", r.Limit, r.Shards, r.Sent, r.Admitted, r.Refused, total(r.Errors), first,
			seconds(r.Took), float64(r.Admitted)/r.Took.Seconds(), verdict)
	}
	tw.Flush()
	for _, r := range res.Shards {
		if r.CutShort {
			fmt.Fprintf(w, "  note: %d shards, limit %d: the time limit ended the run after %d messages\n", r.Shards, r.Limit, r.Sent)
		}
		for _, e := range slices.Sorted(maps.Keys(r.Errors)) {
			fmt.Fprintf(w, "  error: %d shards, limit %d: %d × %s\n", r.Shards, r.Limit, r.Errors[e], e)
		}
	}

	var wru float64
	if len(res.Cost.Messages) > 1 {
		for _, l := range costLines(res.Cost.Messages[1:]) {
			wru += l.WRU
		}
	}
	perShard := itemWritesPerSecond / 2 // a transactional increment is 2 WRU
	fmt.Fprintf(w, "\nOn DynamoDB, computed: one counter item takes %d write units a second, %d transactional increments; shards =\nGlobalShards(limit) = ⌈limit / %d a minute⌉\n", itemWritesPerSecond, perShard, routing.ShardRate)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "global limit\tshards\tper shard/s\tshards' ceiling/s\ttable WRU/s at %.0f WRU/message\t\n", wru)
	for _, l := range []struct {
		name      string
		perMinute int
	}{{"1,000 a minute", 1000}, {"100,000 a minute", 100_000}, {"10,000 a second", 600_000}, {"100,000 a second", 6_000_000}} {
		n := routing.GlobalShards(l.perMinute)
		perSecond := float64(l.perMinute) / 60
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%d\t%.0f\t\n", l.name, n, perSecond/float64(n), n*perShard, perSecond*wru)
	}
	tw.Flush()
	if wru > 0 {
		fmt.Fprintf(w, "  one unsharded counter tops out at %d messages a second; the table's default on-demand quota of %d WRU/s at %.0f a second\n  (a quota increase lifts it: docs/architecture.md, \"Hot keys and scaling limits\")\n",
			perShard, tableQuotaWRU, float64(tableQuotaWRU)/wru)
	}
}
