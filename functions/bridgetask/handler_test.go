package main

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/lambda/messages"

	"github.com/federation-gateway/gateway/shared/bridge"
	"github.com/federation-gateway/gateway/shared/metrics"
	"github.com/federation-gateway/gateway/statemachines"
)

type runner struct {
	outcome string
	err     error
	got     []string
}

func (r *runner) Run(_ context.Context, step, id string, f *bridge.Failure) (string, error) {
	r.got = append(r.got, step+" "+id)
	if f != nil {
		r.got = append(r.got, f.Error)
	}
	return r.outcome, r.err
}

// A step's fault reaches the state machine as the Lambda error type that its Retry and
// Catch name: the task error's name, unwrapped at the handler's boundary.
func TestHandlerNamesErrors(t *testing.T) {
	ctx := context.Background()
	for _, name := range bridge.TaskErrorNames {
		r := &runner{err: errors.Join(errors.New("context"), &bridge.TaskError{Name: name, Message: "m"})}
		_, err := Handler(r, nil)(ctx, Input{Step: bridge.StepMint, TransferID: "br-1"})
		var ie messages.InvokeResponse_Error
		if !errors.As(err, &ie) || ie.Type != name || !strings.Contains(ie.Message, "m") {
			t.Errorf("%s: %#v", name, err)
		}
	}
	var ie messages.InvokeResponse_Error
	_, err := Handler(&runner{err: errors.New("plain")}, nil)(ctx, Input{Step: bridge.StepMint, TransferID: "br-1"})
	if !errors.As(err, &ie) || ie.Type != bridge.ErrUnavailable {
		t.Errorf("a plain error: %#v", err)
	}
	for _, in := range []Input{{Step: "mint"}, {Step: "drop", TransferID: "br-1"}, {Step: "mint", TransferID: strings.Repeat("x", 65)}} {
		if _, err := Handler(&runner{}, nil)(ctx, in); !errors.As(err, &ie) || ie.Type != bridge.ErrInvalidState {
			t.Errorf("%+v: %#v", in, err)
		}
	}
	r := &runner{outcome: bridge.OutcomeParked}
	out, err := Handler(r, nil)(ctx, Input{Step: bridge.StepPark, TransferID: "br-1", Failure: &bridge.Failure{Error: "BridgeMintUnknown"}})
	if err != nil || out.Outcome != bridge.OutcomeParked || out.TransferID != "br-1" || !slices.Contains(r.got, "BridgeMintUnknown") {
		t.Errorf("park: %+v %v %v", out, err, r.got)
	}
}

// A step that ends a transfer counts it, by its end; other steps count nothing.
func TestHandlerCountsEnds(t *testing.T) {
	ctx := context.Background()
	tests := []struct{ step, outcome, counted string }{
		{bridge.StepSettle, bridge.OutcomeCompleted, bridge.StatusCompleted},
		{bridge.StepRefund, bridge.OutcomeRefunded, bridge.StatusRefunded},
		{bridge.StepReject, bridge.OutcomeRejected, bridge.StatusRejected},
		{bridge.StepPark, bridge.OutcomeParked, bridge.StatusManualReview},
		{bridge.StepVerify, bridge.OutcomeVerified, ""},
		{bridge.StepMint, bridge.OutcomeMinted, ""},
	}
	for _, tt := range tests {
		var emitted bytes.Buffer
		if _, err := Handler(&runner{outcome: tt.outcome}, metrics.New(&emitted, "test", "bridgetask"))(ctx, Input{Step: tt.step, TransferID: "br-1"}); err != nil {
			t.Fatal(err)
		}
		line, ok := metrics.Parse(bytes.TrimSpace(emitted.Bytes()))
		switch {
		case tt.counted == "" && emitted.Len() > 0:
			t.Errorf("%s counted: %s", tt.outcome, emitted.String())
		case tt.counted != "" && (!ok || line.Values[metrics.BridgeTransfers] != 1 || line.Dimensions[metrics.DimOutcome] != tt.counted):
			t.Errorf("%s: %s", tt.outcome, emitted.String())
		}
	}
}

// The state machine and the task function agree: every Task sends a step the function
// runs, every Choice routes on outcomes the steps answer, the faults each step throws are
// retried or caught by name, and the happy path takes at most 12 state transitions.
func TestStateMachineContract(t *testing.T) {
	def, err := statemachines.Parse(statemachines.Bridge)
	if err != nil {
		t.Fatal(err)
	}
	outcomes := []string{bridge.OutcomeVerified, bridge.OutcomeReserved, bridge.OutcomeMinted, bridge.OutcomeCompleted,
		bridge.OutcomeRefund, bridge.OutcomeRefunded, bridge.OutcomeRejected, bridge.OutcomeParked}
	retried := map[string][]string{} // step -> names its Retry lists
	for name, st := range def.States {
		switch st.Type {
		case "Task":
			if !slices.Contains(steps, st.Step()) {
				t.Errorf("%s sends step %q", name, st.Step())
			}
			for _, r := range st.Retry {
				retried[st.Step()] = append(retried[st.Step()], r.ErrorEquals...)
				if r.MaxAttempts < 1 || r.IntervalSeconds < 1 || r.BackoffRate < 1 {
					t.Errorf("%s: retry %+v", name, r)
				}
			}
			if st.Step() != bridge.StepPark && !slices.ContainsFunc(st.Catch, func(c statemachines.Catcher) bool {
				return slices.Contains(c.ErrorEquals, "States.ALL") && c.Next == "Park"
			}) {
				t.Errorf("%s does not park what it cannot handle", name)
			}
		case "Choice":
			for _, c := range st.Choices {
				if !slices.Contains(outcomes, c.StringEquals) {
					t.Errorf("%s routes on %q, which no step answers", name, c.StringEquals)
				}
			}
		}
		for _, names := range append(retryNames(st), catchNames(st)...) {
			for _, n := range names {
				if !slices.Contains(bridge.TaskErrorNames, n) && !strings.HasPrefix(n, "States.") && !strings.HasPrefix(n, "Lambda.") &&
					n != "Sandbox.Timedout" && n != "Runtime.ExitError" {
					t.Errorf("%s names error %q, which nothing throws", name, n)
				}
			}
		}
	}
	for step, want := range map[string][]string{
		bridge.StepVerify: {bridge.ErrDepositNotFound, bridge.ErrUnavailable, bridge.ErrConflict, "Sandbox.Timedout"},
		bridge.StepMint:   {bridge.ErrMintUnknown, bridge.ErrUnavailable, bridge.ErrConflict},
		bridge.StepRefund: {bridge.ErrRefundUnknown, bridge.ErrUnavailable},
		bridge.StepPark:   {bridge.ErrUnavailable, bridge.ErrConflict},
	} {
		for _, n := range want {
			if !slices.Contains(retried[step], n) {
				t.Errorf("the %s step does not retry %s", step, n)
			}
		}
	}
	for _, never := range []string{bridge.ErrRefundRefused, bridge.ErrInvalidState} {
		for step, names := range retried {
			if slices.Contains(names, never) {
				t.Errorf("the %s step retries %s, which is final", step, never)
			}
		}
	}

	ok := map[string]string{bridge.StepVerify: bridge.OutcomeVerified, bridge.StepReserve: bridge.OutcomeReserved,
		bridge.StepMint: bridge.OutcomeMinted, bridge.StepSettle: bridge.OutcomeCompleted}
	path, err := def.Walk(func(step string) []statemachines.Result { return []statemachines.Result{{Outcome: ok[step]}} })
	if err != nil || path[len(path)-1] != "Completed" || len(path) > 12 {
		t.Errorf("happy path: %v (%d transitions) %v", path, len(path), err)
	}
	t.Logf("happy path: %d transitions: %v", len(path), path)
	// An unknown mint is retried, never refunded; after its retries it parks.
	path, _ = def.Walk(func(step string) []statemachines.Result {
		if step == bridge.StepMint {
			return []statemachines.Result{{Error: bridge.ErrMintUnknown}, {Error: bridge.ErrMintUnknown}}
		}
		if step == bridge.StepPark {
			return []statemachines.Result{{Outcome: bridge.OutcomeParked}}
		}
		return []statemachines.Result{{Outcome: ok[step]}}
	})
	if slices.Contains(path, "Refund") || path[len(path)-1] != "Manual review" {
		t.Errorf("unknown mint: %v", path)
	}
	// A refused refund parks; a missing deposit rejects.
	path, _ = def.Walk(func(step string) []statemachines.Result {
		switch step {
		case bridge.StepVerify:
			return []statemachines.Result{{Error: bridge.ErrDepositNotFound}}
		case bridge.StepReject:
			return []statemachines.Result{{Outcome: bridge.OutcomeRejected}}
		}
		return nil
	})
	if path[len(path)-1] != "Rejected" {
		t.Errorf("missing deposit: %v", path)
	}
}

func retryNames(st statemachines.State) [][]string {
	var out [][]string
	for _, r := range st.Retry {
		out = append(out, r.ErrorEquals)
	}
	return out
}

func catchNames(st statemachines.State) [][]string {
	var out [][]string
	for _, c := range st.Catch {
		out = append(out, c.ErrorEquals)
	}
	return out
}
