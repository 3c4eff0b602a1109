package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/federation-gateway/gateway/infra/bridgesim"
	"github.com/federation-gateway/gateway/statemachines"
)

// Step Functions Standard's list price, us-east-1 (checked 2026-12): $0.025 per 1,000 state
// transitions. Lambda, DynamoDB and HTTP API prices are the routing cost's (routing_cost.go).
const (
	priceTransition = 0.025 / 1e3
	lambdaMemoryGB  = 0.25 // the template's MemorySize, 256 MB
	// httpPerTransfer: the POST, and one GET that finds it final.
	httpPerTransfer = 2
	maxTransitions  = 12 // the goal on the happy path
)

// bridgeResults is the bridge section's figures.
type bridgeResults struct {
	Clean         int
	Transitions   float64            // per transfer, happy path
	PerTransfer   map[string]float64 // meter figures per transfer, clean and sequential
	Cost          map[string]float64 // USD per transfer, by service
	Throughput    float64            // transfers per second, clean, 32 at a time
	ThroughputRun time.Duration
	Faulted       *bridgesim.Report
	FaultedTrans  float64 // state transitions per faulted transfer, retries included
	Phases        []phase
}

func benchBridge(ctx context.Context, tmpl string, clean, faulted int) (bridgeResults, error) {
	res := bridgeResults{Clean: clean}
	step := func(name string, start time.Time) {
		res.Phases = append(res.Phases, phase{Name: name, Took: time.Since(start)})
	}
	start := time.Now()
	root, err := filepath.Abs(filepath.Dir(tmpl))
	if err != nil {
		return res, err
	}
	sim, err := bridgesim.Start(ctx, bridgesim.Options{Root: root, BuildDir: filepath.Join(os.TempDir(), "bench-bridge-build")})
	if err != nil {
		return res, err
	}
	defer sim.Close()
	step("build and start the local stack with the demo federation and token services", start)
	def, err := statemachines.Parse(statemachines.Bridge)
	if err != nil {
		return res, err
	}
	meter := sim.Stack.Endpoint().Meter()

	// Cost: clean transfers one at a time, so that each invocation's time is its own.
	start = time.Now()
	before := meter.Snapshot()
	rep, err := sim.Run(ctx, bridgesim.CleanPlans(clean, 1, sim.Fed), 1, 0, 5*time.Minute)
	if err != nil {
		return res, err
	}
	if rep.Completed != clean {
		return res, fmt.Errorf("clean transfers: %s", rep)
	}
	after := meter.Snapshot()
	step(fmt.Sprintf("cost: %d clean transfers, one at a time", clean), start)
	res.PerTransfer = map[string]float64{}
	for k, v := range after {
		res.PerTransfer[k] = (v - before[k]) / float64(clean)
	}
	trans, _, err := transitions(def, rep, res.PerTransfer["lambda:BridgeTaskFunction"]*float64(clean))
	if err != nil {
		return res, err
	}
	res.Transitions = trans
	invocations := res.PerTransfer["lambda:BridgeFunction"] + res.PerTransfer["lambda:BridgeTaskFunction"]
	gbs := (res.PerTransfer["lambda-ms:BridgeFunction"] + res.PerTransfer["lambda-ms:BridgeTaskFunction"]) / 1000 * lambdaMemoryGB
	res.Cost = map[string]float64{
		"Step Functions": trans * priceTransition,
		"Lambda":         invocations*priceLambdaReq + gbs*priceGBSecond,
		"DynamoDB":       res.PerTransfer["dynamodb:WRU"]*priceWRU + res.PerTransfer["dynamodb:RRU"]*priceRRU,
		"HTTP API":       httpPerTransfer * priceHTTPAPI,
	}

	// Throughput: clean transfers, 32 at a time, from the first request to the last final.
	start = time.Now()
	rep, err = sim.Run(ctx, bridgesim.CleanPlans(clean, 2, sim.Fed), 32, 0, 5*time.Minute)
	if err != nil {
		return res, err
	}
	res.ThroughputRun = rep.Elapsed
	res.Throughput = float64(rep.Completed) / rep.Elapsed.Seconds()
	step(fmt.Sprintf("throughput: %d clean transfers, 32 at a time", clean), start)

	// Faults at every step.
	start = time.Now()
	before = meter.Snapshot()
	rep, err = sim.Run(ctx, bridgesim.Plans(faulted, 3, sim.Fed), 32, 0.1, 20*time.Minute)
	if err != nil {
		return res, err
	}
	res.Faulted = rep
	after = meter.Snapshot()
	if res.FaultedTrans, _, err = transitions(def, rep, after["lambda:BridgeTaskFunction"]-before["lambda:BridgeTaskFunction"]); err != nil {
		return res, err
	}
	step(fmt.Sprintf("faults: %d transfers, 32 at a time", faulted), start)
	return res, nil
}

// transitions returns the state transitions per transfer of a run: the path each
// transfer's recorded steps take through the state machine, plus the Task attempts that
// failed and recorded nothing (the task function's invocations beyond the recorded ones).
func transitions(def statemachines.Definition, rep *bridgesim.Report, taskInvocations float64) (float64, int, error) {
	total, tasks := 0, 0
	for _, t := range rep.Final {
		n, k, err := bridgesim.Transitions(def, t)
		if err != nil {
			return 0, 0, fmt.Errorf("transfer %s: %w", t.ID, err)
		}
		total, tasks = total+n, tasks+k
	}
	retries := max(0, taskInvocations-float64(tasks))
	return (float64(total) + retries) / float64(len(rep.Final)), tasks, nil
}
