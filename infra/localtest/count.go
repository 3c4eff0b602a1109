package localtest

import (
	"context"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"
)

// Ops counts the DynamoDB operations a client made, by operation name, and the items they
// wrote: a BatchWriteItem counts each of its requests. Tests and benchmarks read it to
// check that work grows with what changed.
type Ops struct {
	mu     sync.Mutex
	calls  map[string]int
	writes int
}

// Calls returns how many times the named operation was called.
func (o *Ops) Calls(op string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.calls[op]
}

// Writes returns the items written: PutItem, UpdateItem, DeleteItem, each BatchWriteItem request.
func (o *Ops) Writes() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.writes
}

// Reset sets the counts to zero.
func (o *Ops) Reset() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls, o.writes = map[string]int{}, 0
}

// CountingDynamoDB returns a DynamoDB client of the tests' DynamoDB engine that counts what
// it does.
func CountingDynamoDB(t testing.TB) (*dynamodb.Client, *Ops) {
	t.Helper()
	ops := &Ops{calls: map[string]int{}}
	return CountOps(DynamoDB(t), ops), ops
}

// CountOps returns a copy of client that counts its operations in ops.
func CountOps(client *dynamodb.Client, ops *Ops) *dynamodb.Client {
	if ops.calls == nil {
		ops.calls = map[string]int{}
	}
	return dynamodb.New(client.Options(), func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
			return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("countOps",
				func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
					ops.mu.Lock()
					ops.calls[middleware.GetOperationName(ctx)]++
					switch v := in.Parameters.(type) {
					case *dynamodb.PutItemInput, *dynamodb.UpdateItemInput, *dynamodb.DeleteItemInput:
						ops.writes++
					case *dynamodb.BatchWriteItemInput:
						for _, reqs := range v.RequestItems {
							ops.writes += len(reqs)
						}
					}
					ops.mu.Unlock()
					return next.HandleInitialize(ctx, in)
				}), middleware.After)
		})
	})
}
