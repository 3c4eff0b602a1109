package bridgesim

import (
	"math/rand/v2"

	"github.com/shopspring/decimal"

	"github.com/federation-gateway/gateway/infra/demo"
	"github.com/federation-gateway/gateway/shared/bridge"
	"github.com/federation-gateway/gateway/statemachines"
)

// Transitions walks the saga's state machine along the steps a transfer recorded, and
// returns the state transitions it took and how many of them were Task states. A Task
// attempt that failed records nothing: the caller adds those from the task function's
// invocations. The local emulator's execution history has no state events to count
// (TestKumoExecutionHistoryHasNoStates); on AWS, the history's StateEntered events are
// the transitions.
func Transitions(def statemachines.Definition, t bridge.Transfer) (transitions, tasks int, err error) {
	recorded := map[string][]statemachines.Result{}
	var order []string
	for _, st := range t.Steps {
		if st.Step == bridge.StepAccept || st.Step == bridge.StepResolve {
			continue
		}
		recorded[st.Step] = []statemachines.Result{{Outcome: st.Outcome}}
		order = append(order, st.Step)
	}
	path, err := def.Walk(func(step string) []statemachines.Result {
		if r, ok := recorded[step]; ok {
			return r
		}
		// A step that failed for good left no record: a missing deposit (the transfer was
		// rejected), or a fault that parked it.
		for _, s := range order {
			if s == bridge.StepReject {
				return []statemachines.Result{{Error: bridge.ErrDepositNotFound}}
			}
		}
		return []statemachines.Result{{Error: bridge.ErrUnavailable}}
	})
	for _, name := range path {
		if def.States[name].Type == "Task" {
			tasks++
		}
	}
	return len(path), tasks, err
}

// CleanPlans makes n plans without faults, both ways.
func CleanPlans(n int, seed uint64, fed *demo.Federation) []*Plan {
	rng := rand.New(rand.NewPCG(seed, seed+1))
	plans := make([]*Plan, n)
	for i := range plans {
		src, dst := demo.Alpha, demo.Beta
		if i%2 == 1 {
			src, dst = demo.Beta, demo.Alpha
		}
		sender := Senders[src][rng.IntN(len(Senders[src]))]
		amount := decimal.New(int64(100+rng.IntN(1900)), -2).String()
		plans[i] = &Plan{Sender: sender, From: fed.Agent(sender).DID, To: Receivers[dst][rng.IntN(len(Receivers[dst]))],
			Source: src, Target: dst, Amount: amount, Deposit: amount}
	}
	return plans
}
