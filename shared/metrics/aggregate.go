package metrics

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
)

// maxSamples bounds the values kept per series for its percentiles: the most recent ones.
const maxSamples = 2048

// Series is what an Aggregator knows of one metric under one set of dimensions.
type Series struct {
	Metric     string            `json:"metric"`
	Unit       Unit              `json:"unit"`
	Dimensions map[string]string `json:"dimensions"`
	// SampleCount, Sum, Min and Max are over every value seen; P50 and P99 over the last
	// maxSamples.
	SampleCount int     `json:"sample_count"`
	Sum         float64 `json:"sum"`
	Min         float64 `json:"min"`
	Max         float64 `json:"max"`
	P50         float64 `json:"p50"`
	P99         float64 `json:"p99"`
	// Last is the latest value: what a gauge (RegistryHealthy) says now.
	Last float64 `json:"last"`

	samples []float64
}

// Aggregator sums EMF lines as CloudWatch would, for the local dev stack and for tests:
// by metric and the line's full set of dimensions.
type Aggregator struct {
	mu     sync.Mutex
	series map[string]*Series
}

// NewAggregator returns an empty Aggregator.
func NewAggregator() *Aggregator { return &Aggregator{series: map[string]*Series{}} }

// Observe adds a log line; it reports whether the line was an EMF line.
func (a *Aggregator) Observe(line []byte) bool {
	l, ok := Parse(line)
	if !ok {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for name, v := range l.Values {
		key := seriesKey(name, l.Dimensions)
		s := a.series[key]
		if s == nil {
			s = &Series{Metric: name, Unit: l.Units[name], Dimensions: l.Dimensions, Min: math.Inf(1), Max: math.Inf(-1)}
			a.series[key] = s
		}
		s.SampleCount++
		s.Sum += v
		s.Min, s.Max, s.Last = min(s.Min, v), max(s.Max, v), v
		if len(s.samples) == maxSamples {
			s.samples = s.samples[1:]
		}
		s.samples = append(s.samples, v)
	}
	return true
}

func seriesKey(name string, dims map[string]string) string {
	var b strings.Builder
	b.WriteString(name)
	for _, k := range slices.Sorted(maps.Keys(dims)) {
		b.WriteString("|" + k + "=" + dims[k])
	}
	return b.String()
}

// Snapshot returns every series, by function, metric and dimensions.
func (a *Aggregator) Snapshot() []Series {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]Series, 0, len(a.series))
	for _, s := range a.series {
		c := *s
		sorted := slices.Clone(s.samples)
		sort.Float64s(sorted)
		c.P50, c.P99 = percentile(sorted, 0.50), percentile(sorted, 0.99)
		c.Dimensions = maps.Clone(s.Dimensions)
		c.samples = nil
		out = append(out, c)
	}
	slices.SortFunc(out, func(x, y Series) int {
		if c := strings.Compare(x.Dimensions[DimFunction], y.Dimensions[DimFunction]); c != 0 {
			return c
		}
		if c := strings.Compare(x.Metric, y.Metric); c != 0 {
			return c
		}
		return strings.Compare(seriesKey("", x.Dimensions), seriesKey("", y.Dimensions))
	})
	return out
}

// Find returns the series of metric whose dimensions include dims.
func (a *Aggregator) Find(metric string, dims map[string]string) []Series {
	var out []Series
	for _, s := range a.Snapshot() {
		if s.Metric != metric {
			continue
		}
		match := true
		for k, v := range dims {
			match = match && s.Dimensions[k] == v
		}
		if match {
			out = append(out, s)
		}
	}
	return out
}

// percentile is the nearest-rank percentile of sorted values.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// WriteTable writes the series as a plain-text table.
func WriteTable(w io.Writer, series []Series) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FUNCTION\tMETRIC\tDIMENSIONS\tUNIT\tCOUNT\tSUM\tMIN\tP50\tP99\tMAX\tLAST")
	for _, s := range series {
		var dims []string
		for _, k := range slices.Sorted(maps.Keys(s.Dimensions)) {
			if k != DimStage && k != DimFunction {
				dims = append(dims, k+"="+s.Dimensions[k])
			}
		}
		d := strings.Join(dims, " ")
		if d == "" {
			d = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Dimensions[DimFunction], s.Metric, d, s.Unit, s.SampleCount,
			num(s.Sum), num(s.Min), num(s.P50), num(s.P99), num(s.Max), num(s.Last))
	}
	return tw.Flush()
}

func num(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2f", v)
}
