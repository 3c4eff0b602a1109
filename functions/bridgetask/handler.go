package main

import (
	"context"
	"fmt"
	"slices"

	"github.com/aws/aws-lambda-go/lambda/messages"

	"github.com/federation-gateway/gateway/shared/bridge"
	"github.com/federation-gateway/gateway/shared/metrics"
)

// Runner runs a saga step; *bridge.Bridge is one.
type Runner interface {
	Run(ctx context.Context, step, transferID string, failure *bridge.Failure) (string, error)
}

// Input is what a Task state of statemachines/bridge.asl.json sends.
type Input struct {
	Step       string          `json:"step"`
	TransferID string          `json:"transfer_id"`
	Failure    *bridge.Failure `json:"failure,omitempty"` // the caught error, for reject and park
}

// Output is what the Task state routes on: the step's outcome, as data.
type Output struct {
	TransferID string `json:"transfer_id"`
	Step       string `json:"step"`
	Outcome    string `json:"outcome"`
}

var steps = []string{bridge.StepVerify, bridge.StepReserve, bridge.StepMint, bridge.StepSettle, bridge.StepRefund, bridge.StepReject, bridge.StepPark}

// ends maps the outcomes that end a transfer to the BridgeTransfers outcome it is
// counted under.
var ends = map[string]string{
	bridge.OutcomeCompleted: bridge.StatusCompleted,
	bridge.OutcomeRefunded:  bridge.StatusRefunded,
	bridge.OutcomeRejected:  bridge.StatusRejected,
	bridge.OutcomeParked:    bridge.StatusManualReview,
}

// Handler runs the step the state machine asks for. A fault is returned as the Lambda
// error whose type is the step's named task error (bridge.ErrUnavailable, ...), which
// the state machine's Retry and Catch match on; the error is unwrapped here, at the
// handler's boundary, so the name is the contract and not a Go type name.
//
// A step that ends a transfer counts it in BridgeTransfers, by its end: completed,
// refunded, rejected or manual_review.
func Handler(r Runner, m *metrics.Recorder) func(context.Context, Input) (Output, error) {
	return func(ctx context.Context, in Input) (Output, error) {
		if !slices.Contains(steps, in.Step) || in.TransferID == "" || len(in.TransferID) > 64 {
			return Output{}, messages.InvokeResponse_Error{Type: bridge.ErrInvalidState,
				Message: fmt.Sprintf("want a step (%v) and a transfer_id", steps)}
		}
		outcome, err := r.Run(ctx, in.Step, in.TransferID, in.Failure)
		if err != nil {
			name := bridge.TaskErrorName(err)
			if name == "" {
				name = bridge.ErrUnavailable // not a named fault: retried, then parked
			}
			return Output{}, messages.InvokeResponse_Error{Type: name, Message: err.Error()}
		}
		if end, ok := ends[outcome]; ok {
			m.Emit(ctx, []metrics.Dim{{Name: metrics.DimOutcome, Value: end}}, metrics.Count(metrics.BridgeTransfers, 1))
		}
		return Output{TransferID: in.TransferID, Step: in.Step, Outcome: outcome}, nil
	}
}
