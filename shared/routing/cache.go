package routing

import (
	"sync"
	"time"

	"github.com/federation-gateway/gateway/shared/federation"
)

// maxCached bounds the records a directoryCache keeps: a function instance that sees more
// parties than that within the TTL starts over, which costs reads, never correctness.
const maxCached = 10_000

// directoryCache keeps the active records a Router read, for a while, so that a routed
// message needs no read before its admission. What it may serve is bounded by what the
// admission checks again (docs/architecture.md, "Hot keys and scaling limits"):
//
//   - the sender's record saves only a read: every admission asserts, in its own
//     transaction, that the record is still active, of the registry authorized and
//     declares the identity bound, so a sender that is gone, stale, moved or unbound
//     since is refused as if nothing were cached;
//   - the target's record is used as kept (its endpoint, and its registry for the
//     policy and the signature) for at most the TTL, on top of the directory's own lag
//     behind the registries (a sync period); a failed delivery drops it.
//
// Records that are not active are not kept: a refusal or a targeted lookup always reads.
// It is safe for concurrent use.
type directoryCache struct {
	ttl time.Duration // negative: keep nothing
	now func() time.Time

	mu      sync.Mutex
	entries map[string]cachedAgent
}

type cachedAgent struct {
	agent   federation.Agent
	expires time.Time
}

func newDirectoryCache(ttl time.Duration, now func() time.Time) *directoryCache {
	return &directoryCache{ttl: ttl, now: now, entries: map[string]cachedAgent{}}
}

// get returns the record of did if it is kept and fresh.
func (c *directoryCache) get(did string) (federation.Agent, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[did]
	if !ok || !c.now().Before(e.expires) {
		return federation.Agent{}, false
	}
	return e.agent, true
}

// put keeps the active records among agents.
func (c *directoryCache) put(agents ...federation.Agent) {
	if c.ttl < 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	for _, a := range agents {
		if a.Status != federation.StatusActive {
			delete(c.entries, a.DID)
			continue
		}
		if len(c.entries) >= maxCached {
			c.evict(now)
		}
		c.entries[a.DID] = cachedAgent{agent: a, expires: now.Add(c.ttl)}
	}
}

// drop forgets the record of did.
func (c *directoryCache) drop(did string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, did)
}

// evict forgets the expired records, or every record when none has expired.
func (c *directoryCache) evict(now time.Time) {
	for did, e := range c.entries {
		if !now.Before(e.expires) {
			delete(c.entries, did)
		}
	}
	if len(c.entries) >= maxCached {
		clear(c.entries)
	}
}
