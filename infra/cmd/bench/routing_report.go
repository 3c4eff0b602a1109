package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/federation-gateway/gateway/infra/devstack"
)

// reportRouting prints the latency, DynamoDB and throughput tables of the routing
// section and how long each phase took.
func reportRouting(w io.Writer, res routingResults) {
	fmt.Fprintf(w, `
Routing: one message from %s (registry alpha, did:key credential) to %s (beta), on loopback, the demo
federation synced into the local stack's table by SyncFunction; policy agent_rate and global_rate, and the local
HTTP API's throttling, raised to %d so that no limit is measured
  %-27s a2a-go SendMessage straight to the agent's JSON-RPC endpoint: the baseline
  %-27s routing.Router.Route, built as functions/route builds it, over the stack's table: verify the
  %-27s JWT, find both parties (read once, then cached), admit (claiming the jti), deliver signed,
  %-27s record; no HTTP API, no Lambda
  %-27s a route of the route function that does no routing work: the HTTP API and Lambda hop alone
  %-27s POST /api/v1/route through the local HTTP API to the route function, a Lambda process
`, res.Sender, res.Target, raisedRate, pathDirect, pathInProcess, "", "", pathStackHop, pathStack)
	latencyTable(w, res)
	breakdown(w, res)
	callsTable(w, res)
	throughputTable(w, res)
	reportRoundTrips(w, res)
	reportCost(w, res)
	reportShards(w, res)
	if retriedWrites(res) {
		fmt.Fprint(w, `
  "replayed jti" or "still being delivered" for a fresh token and message ID: a DynamoDB write the SDK retried
  after the emulator had applied it, so the retry fails its condition (the local endpoint's proxy once lost response
  bodies that way; see localstack/endpoint.go and localstack/stress_test.go).
`)
	}

	phasesTable(w, "Routing", res.Phases)
}

// latencyTable prints p50 and p99 of each path, over the direct path's.
func latencyTable(w io.Writer, res routingResults) {
	fmt.Fprintf(w, "\nLatency: sequential requests, the paths taking turns, after %d warm-up requests of each (no goal: on loopback\nthe baseline is a fraction of a millisecond, so a ratio says more about the machine than about a deployment)\n", routeWarmup)
	names := make([]string, len(res.Latency))
	for i, p := range res.Latency {
		names[i] = p.Name
	}
	width := maxLen("path", names)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-*s\ttimed\tfailed\tp50\tp99\t× direct p50\t× direct p99\t\n", width, "path")
	p50, p99 := map[string]time.Duration{}, map[string]time.Duration{}
	for _, p := range res.Latency {
		s := slices.Sorted(slices.Values(p.Samples))
		p50[p.Name], p99[p.Name] = percentile(s, 0.5), percentile(s, 0.99)
	}
	for _, p := range res.Latency {
		fmt.Fprintf(tw, "%-*s\t%d\t%d\t%s\t%s\t%s\t%s\t\n", width, p.Name, len(p.Samples), total(p.Errors), ms(p50[p.Name]), ms(p99[p.Name]),
			ratio(p50[p.Name], p50[pathDirect]), ratio(p99[p.Name], p99[pathDirect]))
	}
	tw.Flush()
	if res.Rounds < res.Requests {
		fmt.Fprintf(w, "  note: the %s limit ended the run after %d of %d rounds\n", latencyLimit, res.Rounds, res.Requests)
	}
	for _, p := range res.Latency {
		for _, e := range slices.Sorted(maps.Keys(p.Errors)) {
			fmt.Fprintf(w, "  failed: %s: %d × %s\n", p.Name, p.Errors[e], e)
		}
	}
	fmt.Fprintf(w, "  local stack ÷ in-process Router: p50 × %s, p99 × %s; the stack adds %s at p50, of which the hop alone is %s\n",
		ratio(p50[pathStack], p50[pathInProcess]), ratio(p99[pathStack], p99[pathInProcess]),
		ms(p50[pathStack]-p50[pathInProcess]), ms(p50[pathStackHop]))
}

// breakdown prints where an in-process routed message's time went, on average.
func breakdown(w io.Writer, res routingResults) {
	var in pathLatency
	for _, p := range res.Latency {
		if p.Name == pathInProcess {
			in = p
		}
	}
	n := res.CallsOver
	if n == 0 || len(in.Samples) == 0 {
		return
	}
	var total, dynamo time.Duration
	for _, d := range in.Samples {
		total += d
	}
	mean := total / time.Duration(len(in.Samples))
	ops := slices.Sorted(maps.Keys(res.DynamoTime))
	var parts []string
	for _, op := range ops {
		dynamo += res.DynamoTime[op]
		parts = append(parts, fmt.Sprintf("%s %s", op, ms(res.DynamoTime[op]/time.Duration(n))))
	}
	dyn, del := dynamo/time.Duration(n), res.DeliveryTime/time.Duration(n)
	fmt.Fprintf(w, "\nWhere an in-process routed message's time goes, mean of %d requests (the emulator is no model of DynamoDB's speed)\n", n)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  DynamoDB calls\t%s\t%s\n", ms(dyn), strings.Join(parts, ", "))
	fmt.Fprintf(tw, "  delivery\t%s\tsign, a2a-go SendMessage to the agent, which checks the signature\n", ms(del))
	fmt.Fprintf(tw, "  the rest\t%s\tJWT verification, validation, content hash, the Router itself\n", ms(mean-dyn-del))
	fmt.Fprintf(tw, "  total\t%s\n", ms(mean))
	tw.Flush()
}

// callsTable prints the DynamoDB calls of the in-process Router per routed message.
func callsTable(w io.Writer, res routingResults) {
	n := res.CallsOver
	if n == 0 {
		return
	}
	fmt.Fprintf(w, "\nDynamoDB calls per routed message: the in-process Router's client counting, over its %d latency requests\n", n)
	ops := usedOps(res.Calls)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%s\ttotal\tgoal\t\t\n", strings.Join(ops, "\t"))
	calls := total(res.Calls)
	cells := make([]string, len(ops))
	for i, op := range ops {
		cells[i] = fmt.Sprintf("%.2f", float64(res.Calls[op])/float64(n))
	}
	per := float64(calls) / float64(n)
	fmt.Fprintf(tw, "%s\t%.2f\t≤ %d\t%s\t\n", strings.Join(cells, "\t"), per, maxOpsPerMessage, pass(per <= maxOpsPerMessage))
	tw.Flush()
	if retries := res.Attempts - calls; retries > 0 {
		fmt.Fprintf(w, "  note: the SDK retried %d of the %d calls (the attempts are not in the count above)\n", retries, calls)
	}
}

// throughputTable prints the messages per second of each concurrent run.
func throughputTable(w io.Writer, res routingResults) {
	if len(res.Throughput) == 0 {
		return
	}
	fmt.Fprintf(w, "\nRouted messages per second, limits raised: a fixed count sent by concurrent senders, each its own credential\n(goal: at least the policy's default global_rate, 1,000 a minute; time limit %s; instances: the route function's\nprocesses after the run, started on demand, at most %d)\n", throughputLimit, devstack.DefaultConcurrency)
	names := make([]string, len(res.Throughput))
	for i, r := range res.Throughput {
		names[i] = r.Name
	}
	width := maxLen("path", names)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-*s\tsenders\tinstances\tmessages\tdelivered\terrors\twall\tmsgs/s\tgoal\t\t\n", width, "path")
	for _, r := range res.Throughput {
		rate := float64(r.Delivered) / r.Took.Seconds()
		errs := 0
		for _, n := range r.Errors {
			errs += n
		}
		instances := "—"
		if r.Instances > 0 {
			instances = fmt.Sprint(r.Instances)
		}
		fmt.Fprintf(tw, "%-*s\t%d\t%s\t%d\t%d\t%d\t%s\t%.1f\t≥ %.1f\t%s\t\n", width, r.Name, r.Concurrent, instances, r.Sent, r.Delivered, errs,
			seconds(r.Took), rate, minMsgsPerSecond, pass(rate >= minMsgsPerSecond))
	}
	tw.Flush()
	for _, r := range res.Throughput {
		if r.CutShort {
			fmt.Fprintf(w, "  note: %s: the time limit ended the run after %d of %d messages\n", r.Name, r.Sent, r.Count)
		}
		for _, e := range slices.Sorted(maps.Keys(r.Errors)) {
			fmt.Fprintf(w, "  error: %s: %d × %s\n", r.Name, r.Errors[e], e)
		}
	}
}

// ratio is a over b, to two places; "—" when b is zero.
func ratio(a, b time.Duration) string {
	if b <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f", float64(a)/float64(b))
}

// retriedWrites reports whether a request failed the way a retried, applied write fails.
func retriedWrites(res routingResults) bool {
	var errs []map[string]int
	for _, p := range res.Latency {
		errs = append(errs, p.Errors)
	}
	for _, r := range res.Throughput {
		errs = append(errs, r.Errors)
	}
	for _, m := range errs {
		for e := range m {
			if strings.Contains(e, "replayed jti") || strings.Contains(e, "is still being delivered") {
				return true
			}
		}
	}
	return false
}
