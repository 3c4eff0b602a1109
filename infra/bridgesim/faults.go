package bridgesim

import (
	"math/rand/v2"
	"sync"
	"time"

	"github.com/federation-gateway/gateway/infra/demo"
)

// Fault kinds a plan puts on a transfer's mint or refund: the demo token service's, and
// kill, which applies the transfer and then kills the task function's process before it
// hears the answer.
const (
	FaultKill = "kill"
)

// keyFault is the fault of the gateway's transfers with one Idempotency-Key.
type keyFault struct {
	kind  string
	delay time.Duration
	left  int
}

// faultPlan picks the token services' faults: by Idempotency-Key for the gateway's
// transfers, at random (listRate) for its reads.
type faultPlan struct {
	mu       sync.Mutex
	byKey    map[string]*keyFault
	listRate float64
	rng      *rand.Rand
	applied  map[string]int
}

func newFaultPlan() *faultPlan {
	return &faultPlan{byKey: map[string]*keyFault{}, rng: rand.New(rand.NewPCG(7, 11)), applied: map[string]int{}}
}

func (p *faultPlan) set(key string, f keyFault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.byKey[key] = &f
}

func (p *faultPlan) setListRate(r float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.listRate = r
}

// Applied returns how many faults of each kind were played.
func (p *faultPlan) Applied() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]int{}
	for k, v := range p.applied {
		out[k] = v
	}
	return out
}

func (p *faultPlan) pick(_ string, s *Sim) demo.FaultFunc {
	return func(r demo.FaultRequest) demo.Fault {
		if r.Account != demo.GatewayAccount {
			return demo.Fault{} // the agents' own deposits are not the gateway's faults
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if r.Op != "transfer" {
			x := p.rng.Float64()
			switch {
			case x < p.listRate/3:
				p.applied["read-fail"]++
				return demo.Fault{Kind: demo.FaultFail}
			case x < 2*p.listRate/3:
				p.applied["read-slow"]++
				return demo.Fault{Kind: demo.FaultSlow, Delay: 100 * time.Millisecond}
			case x < p.listRate:
				p.applied["read-timeout"]++
				return demo.Fault{Kind: demo.FaultSlow, Delay: 1500 * time.Millisecond} // past the gateway's 1 s
			}
			return demo.Fault{}
		}
		f := p.byKey[r.IdempotencyKey]
		if f == nil || f.left == 0 {
			return demo.Fault{}
		}
		f.left--
		p.applied[f.kind]++
		if f.kind == FaultKill {
			return demo.Fault{After: func() { s.Stack.Kill("BridgeTaskFunction") }}
		}
		return demo.Fault{Kind: f.kind, Delay: f.delay}
	}
}
