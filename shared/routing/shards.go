package routing

import (
	"hash/fnv"
	"sync"
	"time"
)

// The global limit is counted in shards (docs/architecture.md, "Hot keys and scaling
// limits"): one counter item per shard and minute, each with its part of the limit.
const (
	// ShardRate is the most messages a minute one shard of the global counter is meant
	// to count: 100 a second, a fifth of the 500 transactional increments a second that
	// one DynamoDB item takes (1,000 write units a second, two per transactional write),
	// so that a shard stays clear of that ceiling and its transactions seldom collide.
	ShardRate = 6000
	// shardTries is how many shards one admission tries before it is refused.
	shardTries = 3
)

// GlobalShards is the number of shards a global limit of limit messages a minute is
// counted in: one per ShardRate messages, at least one. The default limit, 1,000 a
// minute, is one shard; 100,000 a second (6,000,000 a minute) is 1,000 shards.
func GlobalShards(limit int) int {
	return max(1, (limit+ShardRate-1)/ShardRate)
}

// shards splits a global limit into per-shard limits that add up to it exactly, so the
// messages admitted in a minute never exceed it, and remembers, per minute, the shards
// an admission found full, so that later admissions of this instance go elsewhere and
// the limit is used up before anything is refused (the spill rule). A shard found full
// stays full for the rest of its minute: counters only grow.
type shards struct {
	total, n int

	mu     sync.Mutex
	minute time.Time
	full   map[int]bool
}

func newShards(total, n int) *shards {
	return &shards{total: total, n: n, full: map[int]bool{}}
}

// limit is shard i's part of the limit: the total divided evenly, the remainder going to
// the first shards.
func (s *shards) limit(i int) int {
	l := s.total / s.n
	if i < s.total%s.n {
		l++
	}
	return l
}

// probe returns the order in which an admission of n messages tries the shards: from
// one chosen by a hash of the sender and the message ID, onwards, past the shards known
// full this minute and those whose part of the limit is less than n.
func (s *shards) probe(minute time.Time, from, id string, n int) *shardProbe {
	h := fnv.New64a()
	_, _ = h.Write([]byte(from + "\x00" + id))
	return &shardProbe{s: s, minute: minute, n: n, next0: int(h.Sum64() % uint64(s.n))}
}

// shardProbe is one admission's walk over the shards.
type shardProbe struct {
	s       *shards
	minute  time.Time
	n       int
	next0   int
	visited int
}

// next returns the next shard to try; false when none is left.
func (p *shardProbe) next() (int, bool) {
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.roll(p.minute)
	for p.visited < s.n {
		i := (p.next0 + p.visited) % s.n
		p.visited++
		known := s.minute.Equal(p.minute) && s.full[i]
		if !known && s.limit(i) >= p.n {
			return i, true
		}
	}
	return 0, false
}

// full notes that shard i refused the admission. Only a single message proves a shard
// full: a shard that refused several may still take fewer.
func (p *shardProbe) full(i int) {
	if p.n != 1 {
		return
	}
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.roll(p.minute)
	if s.minute.Equal(p.minute) {
		s.full[i] = true
	}
}

// roll forgets what it knew of an earlier minute. Called with mu held.
func (s *shards) roll(minute time.Time) {
	if minute.After(s.minute) {
		s.minute = minute
		clear(s.full)
	}
}
