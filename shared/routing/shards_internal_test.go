package routing

import (
	"testing"
	"time"
)

func TestGlobalShards(t *testing.T) {
	for _, tt := range []struct{ limit, shards int }{
		{1, 1}, {1000, 1}, {ShardRate, 1}, {ShardRate + 1, 2}, {60_000, 10}, {6_000_000, 1000},
	} {
		if got := GlobalShards(tt.limit); got != tt.shards {
			t.Errorf("GlobalShards(%d) = %d, want %d", tt.limit, got, tt.shards)
		}
	}
}

// The shards' parts add up to the limit exactly and differ by one at most.
func TestShardLimitsAddUp(t *testing.T) {
	for _, tt := range []struct{ total, n int }{{1000, 1}, {1000, 3}, {40, 8}, {6_000_001, 1001}, {7, 7}} {
		s := newShards(tt.total, tt.n)
		sum, lo, hi := 0, tt.total, 0
		for i := range tt.n {
			sum += s.limit(i)
			lo, hi = min(lo, s.limit(i)), max(hi, s.limit(i))
		}
		if sum != tt.total || hi-lo > 1 {
			t.Errorf("%d in %d shards: parts add up to %d, from %d to %d", tt.total, tt.n, sum, lo, hi)
		}
	}
}

// A probe visits every shard once, skips those known full this minute, and forgets them
// when the minute turns; only a single message proves a shard full.
func TestShardProbe(t *testing.T) {
	s := newShards(40, 4)
	m := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	visit := func(minute time.Time, n int) []int {
		p := s.probe(minute, "did:example:a", "m-1", n)
		var got []int
		for i, ok := p.next(); ok; i, ok = p.next() {
			got = append(got, i)
		}
		return got
	}
	if got := visit(m, 1); len(got) != 4 {
		t.Fatalf("visited %v, want every shard once", got)
	}
	p := s.probe(m, "did:example:a", "m-1", 1)
	first, _ := p.next()
	p.full(first)
	for _, i := range visit(m, 1) {
		if i == first {
			t.Errorf("shard %d, known full, was tried again", first)
		}
	}
	if got := visit(m.Add(time.Minute), 1); len(got) != 4 {
		t.Errorf("the next minute visits %v, want every shard", got)
	}
	p = s.probe(m.Add(time.Minute), "did:example:a", "m-2", 5)
	i, _ := p.next()
	p.full(i)
	if got := visit(m.Add(time.Minute), 1); len(got) != 4 {
		t.Errorf("a shard that refused 5 messages was taken as full: %v", got)
	}
	if got := visit(m, 11); len(got) != 0 {
		t.Errorf("11 messages fit in no shard of 10, yet %v were tried", got)
	}
}
