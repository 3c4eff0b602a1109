package main

import (
	"math"
	"slices"
	"time"
)

// summary is the distribution of one figure's runs.
type summary struct {
	Min, Median, P90 time.Duration
}

// summarize returns the minimum, median and 90th percentile of the samples.
func summarize(samples []time.Duration) summary {
	s := slices.Clone(samples)
	slices.Sort(s)
	return summary{Min: percentile(s, 0), Median: percentile(s, 0.5), P90: percentile(s, 0.9)}
}

// percentile returns the p-th percentile (0 ≤ p ≤ 1) of sorted samples, interpolating
// linearly between the two nearest ranks, so the median of an even count is the mean of the
// middle two. It returns 0 for no samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := p * float64(len(sorted)-1)
	lo := int(rank)
	if lo >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	frac := rank - float64(lo)
	return sorted[lo] + time.Duration(math.Round(frac*float64(sorted[lo+1]-sorted[lo])))
}
