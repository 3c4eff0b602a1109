package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// reportBridge prints the bridge section.
func reportBridge(w io.Writer, res bridgeResults) {
	fmt.Fprintf(w, `
Bridge: token transfers both ways between the demo registries' token services, through the local HTTP API, the
BridgeFunction and BridgeTaskFunction processes and the state machine of statemachines/bridge.asl.json on the
local endpoint (Retry and Catch as on AWS, localstack/sfntasks.go)
`)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-44s\tper transfer\tgoal\t\n", "figure (clean transfers, one at a time)")
	fmt.Fprintf(tw, "%-44s\t%.2f\t≤ %d %s\t\n", "state transitions (happy path)", res.Transitions, maxTransitions, pass(res.Transitions <= maxTransitions))
	for _, k := range []string{"lambda:BridgeFunction", "lambda:BridgeTaskFunction", "lambda-ms:BridgeFunction", "lambda-ms:BridgeTaskFunction",
		"states:StartExecution", "dynamodb:WRU", "dynamodb:RRU"} {
		fmt.Fprintf(tw, "%-44s\t%.2f\t\t\n", k, res.PerTransfer[k])
	}
	var ops []string
	for k := range res.PerTransfer {
		if strings.HasPrefix(k, "dynamodb:") && k != "dynamodb:WRU" && k != "dynamodb:RRU" && res.PerTransfer[k] > 0 {
			ops = append(ops, k)
		}
	}
	slices.Sort(ops)
	for _, k := range ops {
		fmt.Fprintf(tw, "%-44s\t%.2f\t\t\n", k+" calls", res.PerTransfer[k])
	}
	tw.Flush()
	fmt.Fprintln(w, "  (transitions: the state machine walked along each transfer's recorded steps, plus the Task attempts that failed,")
	fmt.Fprintln(w, "  from the task function's invocations; the local execution history records no states)")

	fmt.Fprintf(w, "\nCost per transfer at AWS list prices, us-east-1 (Standard $0.025/1k transitions; Lambda arm64 $0.20/1M + $0.0000133334/GB-s\nat 256 MB, local durations; DynamoDB on-demand $0.625/1M WRU, $0.125/1M RRU; HTTP API $1.00/1M, %d requests)\n", httpPerTransfer)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-16s\tUSD per transfer\tUSD per 1M transfers\t\n", "service")
	total := 0.0
	for _, k := range []string{"Step Functions", "Lambda", "DynamoDB", "HTTP API"} {
		total += res.Cost[k]
		fmt.Fprintf(tw, "%-16s\t%.8f\t%.2f\t\n", k, res.Cost[k], res.Cost[k]*1e6)
	}
	fmt.Fprintf(tw, "%-16s\t%.8f\t%.2f\t\n", "total", total, total*1e6)
	tw.Flush()

	fmt.Fprintf(w, "\nThroughput: %d clean transfers, 32 at a time, first request to last completed: %.1f transfers/s (%s)\n",
		res.Clean, res.Throughput, res.ThroughputRun.Round(100_000_000))
	fmt.Fprintln(w, "  (the local cloud runs at most 4 instances of each function, on this machine's cores)")

	r := res.Faulted
	fmt.Fprintf(w, "\nFaults at every step: %d transfers (%d faulted), 32 at a time, in %s; %.2f state transitions per transfer\n",
		r.Transfers, r.Faulted, r.Elapsed.Round(100_000_000), res.FaultedTrans)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-36s\tcount\tgoal\t\n", "invariant (the token services' books)")
	for _, f := range []struct {
		name string
		n    int
	}{{"transfers unfinished", r.Unfinished}, {"double mints", r.DoubleMints}, {"double refunds", r.DoubleRefunds},
		{"minted and refunded", r.MintedAndRefunded}, {"deposits claimed twice", r.ClaimedTwice}, {"orphaned deposits", r.Orphaned},
		{"per-transfer violations", len(r.Violations)}} {
		fmt.Fprintf(tw, "%-36s\t%d\t0 %s\t\n", f.name, f.n, pass(f.n == 0))
	}
	fmt.Fprintf(tw, "%-36s\t%s\t0 %s\t\n", "value created or lost", r.ValueAfter.Sub(r.ValueBefore), pass(r.ValueAfter.Equal(r.ValueBefore)))
	for _, reg := range []string{"alpha", "beta"} {
		fmt.Fprintf(tw, "%-36s\t%s\t0 %s\t\n", "reconciliation drift, "+reg, r.Drift[reg], pass(r.Drift[reg] == "0"))
	}
	tw.Flush()
	fmt.Fprintf(w, "  outcomes: %d completed, %d refunded, %d rejected, %d manual_review %v\n", r.Completed, r.Refunded, r.Rejected, r.ManualReview, r.ParkedReasons)
	var samples []string
	for _, why := range r.ParkedSamples {
		samples = append(samples, why)
	}
	slices.Sort(samples)
	for _, why := range samples {
		fmt.Fprintf(w, "  parked, e.g. %s\n", why)
	}
	for i, v := range r.Violations {
		if i == 10 {
			fmt.Fprintf(w, "  ... and %d more violations\n", len(r.Violations)-i)
			break
		}
		fmt.Fprintf(w, "  violation: %s\n", v)
	}
	var kinds []string
	for k, v := range r.Faults {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, v))
	}
	slices.Sort(kinds)
	fmt.Fprintf(w, "  faults played: %s\n", strings.Join(kinds, ", "))
	phasesTable(w, "Bridge", res.Phases)
}
