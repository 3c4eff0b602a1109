package localtest

import (
	"context"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
)

// Faults makes one chosen write call of a DynamoDB client fail, for tests of what a
// failure between two writes leaves behind. The calls still go to the real endpoint: only
// the one chosen is failed, before it is sent or after it was applied (its answer lost,
// as when a connection drops). A write call is PutItem, UpdateItem, DeleteItem,
// BatchWriteItem or TransactWriteItems; reads pass untouched.
type Faults struct {
	mu     sync.Mutex
	writes int  // write calls seen since Arm
	failAt int  // the write call (1-based) to fail; 0 for none
	after  bool // fail it after it was applied
	fired  bool
}

// Arm makes the n-th write call from now fail, after it was applied when after is set,
// and starts counting write calls afresh. n <= 0 fails none, only counting.
func (f *Faults) Arm(n int, after bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes, f.failAt, f.after, f.fired = 0, n, after, false
}

// Writes returns the write calls seen since the last Arm.
func (f *Faults) Writes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.writes
}

// Fired reports whether the armed failure happened.
func (f *Faults) Fired() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fired
}

// ErrInjected is the error a failed call returns: a DynamoDB server error, as the SDK
// reports one it has given up retrying.
var ErrInjected = &smithy.GenericAPIError{Code: "InternalServerError", Message: "injected fault", Fault: smithy.FaultServer}

// decide counts a write call and says whether it fails, and when.
func (f *Faults) decide() (fail, after bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes++
	if f.failAt > 0 && f.writes == f.failAt {
		f.fired = true
		return true, f.after
	}
	return false, false
}

// InjectFaults returns a copy of client whose write calls f may fail. The failure is
// raised above the SDK's retries, so it is final, as a failure the SDK gave up on is.
func InjectFaults(client *dynamodb.Client, f *Faults) *dynamodb.Client {
	return dynamodb.New(client.Options(), func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
			return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("injectFaults",
				func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
					switch in.Parameters.(type) {
					case *dynamodb.PutItemInput, *dynamodb.UpdateItemInput, *dynamodb.DeleteItemInput,
						*dynamodb.BatchWriteItemInput, *dynamodb.TransactWriteItemsInput:
					default:
						return next.HandleInitialize(ctx, in)
					}
					fail, after := f.decide()
					switch {
					case !fail:
						return next.HandleInitialize(ctx, in)
					case after:
						_, md, _ := next.HandleInitialize(ctx, in)
						return middleware.InitializeOutput{}, md, ErrInjected
					default:
						return middleware.InitializeOutput{}, middleware.Metadata{}, ErrInjected
					}
				}), middleware.After)
		})
	})
}
