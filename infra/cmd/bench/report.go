package main

import (
	"fmt"
	"io"
	"runtime"
	"text/tabwriter"
	"time"
)

// header says what the benchmarks ran on.
func header(w io.Writer) {
	fmt.Fprintf(w, "\nFederation Gateway benchmarks: %s on %s/%s, %d CPUs\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
}

// report prints the three tables: the baseline first in each, then every function beside it.
func report(w io.Writer, subjects []subject, res results, runs int) {
	fmt.Fprintf(w, "\nCold start: exec → first Runtime API poll   (host build, local AWS endpoint, %d runs after 1 warm-up; goal ≤ %.2f × hello)\n", runs, maxStartRatio)
	timeTable(w, subjects, res, firstPoll)

	fmt.Fprintf(w, "\nExec → first response: exec, wait for the poll, one lambda.Invoke   (goal ≤ %.2f × hello; warm: the same invocation again, from its sending)\n", maxStartRatio)
	timeTable(w, subjects, res, firstResponse)

	fmt.Fprintf(w, "\nBinary size: the bootstrap `make build` deploys   (goal ≤ %d MiB)\n", maxSize>>20)
	tw := table(w, subjects, "target\tbytes\tMiB\t× hello\tgoal\t")
	for i, s := range subjects {
		ratio, verdict := "1.00", "base"
		if i > 0 {
			ratio, verdict = fmt.Sprintf("%.2f", float64(s.Size)/float64(subjects[0].Size)), pass(s.Size <= maxSize)
		}
		fmt.Fprintf(tw, "%-*s\t%s\t%d\t%.2f\t%s\t%s\t\n", nameWidth(subjects), s.Name, platform(s.Deploy), s.Size,
			float64(s.Size)/(1<<20), ratio, verdict)
	}
	tw.Flush()
}

// timeTable prints one timing figure of every subject, with each function's median over
// the baseline's.
func timeTable(w io.Writer, subjects []subject, res results, f figure) {
	header := "median\tmin\tp90\t× hello\tgoal\t"
	if f == firstResponse {
		header += "warm\t  event"
	}
	tw := table(w, subjects, header)
	base := res[subjects[0].Name][f].Median
	for i, s := range subjects {
		sum := res[s.Name][f]
		ratio, verdict := "1.00", "base"
		if i > 0 {
			r := float64(sum.Median) / float64(base)
			ratio, verdict = fmt.Sprintf("%.2f", r), pass(r <= maxStartRatio)
		}
		fmt.Fprintf(tw, "%-*s\t%s\t%s\t%s\t%s\t%s\t", nameWidth(subjects), s.Name, ms(sum.Median), ms(sum.Min), ms(sum.P90), ratio, verdict)
		if f == firstResponse {
			fmt.Fprintf(tw, "%s\t  %s", ms(res[s.Name][warmResponse].Median), s.EventOf)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}

// table starts a table of right-aligned figures after a left-aligned binary name (padded
// here, as a tabwriter aligns every column one way).
func table(w io.Writer, subjects []subject, header string) *tabwriter.Writer {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-*s\t%s\n", nameWidth(subjects), "binary", header)
	return tw
}

func nameWidth(subjects []subject) int {
	n := len("binary")
	for _, s := range subjects {
		n = max(n, len(s.Name))
	}
	return n
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func pass(ok bool) string {
	if ok {
		return "PASS"
	}
	return "OVER"
}
