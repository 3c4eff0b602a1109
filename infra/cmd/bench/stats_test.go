package main

import (
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		d := make([]time.Duration, len(v))
		for i, x := range v {
			d[i] = time.Duration(x) * time.Millisecond
		}
		return d
	}
	tests := []struct {
		name    string
		samples []time.Duration
		want    summary
	}{
		{"none", nil, summary{}},
		{"one", ms(7), summary{Min: 7 * time.Millisecond, Median: 7 * time.Millisecond, P90: 7 * time.Millisecond}},
		{"odd count, unsorted", ms(5, 1, 3), summary{Min: time.Millisecond, Median: 3 * time.Millisecond, P90: 4600 * time.Microsecond}},
		{"even count: median is the mean of the middle two", ms(4, 1, 3, 2), summary{Min: time.Millisecond, Median: 2500 * time.Microsecond, P90: 3700 * time.Microsecond}},
		{"ten runs", ms(10, 9, 8, 7, 6, 5, 4, 3, 2, 1), summary{Min: time.Millisecond, Median: 5500 * time.Microsecond, P90: 9100 * time.Microsecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append([]time.Duration(nil), tt.samples...)
			if got := summarize(tt.samples); got != tt.want {
				t.Errorf("summarize(%v) = %+v, want %+v", tt.samples, got, tt.want)
			}
			for i := range in {
				if in[i] != tt.samples[i] {
					t.Fatalf("summarize reordered its input: %v", tt.samples)
				}
			}
		})
	}
}
