package bridge

import (
	"errors"
	"fmt"
	"time"
)

// Names of the errors a saga step throws. They are part of the state machine's contract:
// statemachines/bridge.asl.json retries and catches them by name, and the task function
// reports them as the Lambda error type. Business outcomes are not errors: they travel as
// data (Outcome) through Choice states.
const (
	// ErrUnavailable: a dependency failed (a token service's 5xx or timeout on a read, a
	// busy table); nothing was changed. Retried with backoff.
	ErrUnavailable = "BridgeUnavailable"
	// ErrConflict: the transfer or a book kept changing under the step. Retried.
	ErrConflict = "BridgeConflict"
	// ErrDepositNotFound: the gateway's transactions on the source registry do not show
	// the deposit (yet). Retried a little, then the transfer is rejected.
	ErrDepositNotFound = "BridgeDepositNotFound"
	// ErrMintUnknown: the mint may or may not have been applied. Retried: the retry looks
	// for it among the target's transactions and sends it again with the same
	// Idempotency-Key, and never refunds before it knows.
	ErrMintUnknown = "BridgeMintUnknown"
	// ErrRefundUnknown: the same, for a refund.
	ErrRefundUnknown = "BridgeRefundUnknown"
	// ErrRefundRefused: the source registry refused the refund for good. The transfer
	// goes to manual_review.
	ErrRefundRefused = "BridgeRefundRefused"
	// ErrInvalidState: the step does not apply to the transfer as it is (a bug, or an
	// operator's change under a running execution). Not retried.
	ErrInvalidState = "BridgeInvalidState"
)

// TaskErrorNames lists every name, for the test that holds the state machine to them.
var TaskErrorNames = []string{ErrUnavailable, ErrConflict, ErrDepositNotFound, ErrMintUnknown,
	ErrRefundUnknown, ErrRefundRefused, ErrInvalidState}

// TaskError is a fault of a saga step, thrown to the state machine under Name.
type TaskError struct {
	Name    string
	Message string
	Err     error
}

// Error returns the name and message.
func (e *TaskError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Name, e.Message, e.Err)
	}
	return e.Name + ": " + e.Message
}

// Unwrap returns the cause.
func (e *TaskError) Unwrap() error { return e.Err }

func taskErr(name string, err error, format string, args ...any) *TaskError {
	return &TaskError{Name: name, Message: fmt.Sprintf(format, args...), Err: err}
}

// TaskErrorName returns the name of the TaskError in err's chain, "" if there is none.
func TaskErrorName(err error) string {
	var te *TaskError
	if errors.As(err, &te) {
		return te.Name
	}
	return ""
}

// RateLimited says a lane's bucket holds less than a transfer needs, and for how long.
type RateLimited struct{ RetryAfter time.Duration }

// Error says how long to wait.
func (r *RateLimited) Error() string { return fmt.Sprintf("retry after %s", r.RetryAfter) }
