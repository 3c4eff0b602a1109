package localstack_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"
)

// attempts counts the HTTP attempts the SDK makes: with its retryer, one call may make
// several. Any attempt beyond the first of a call is a retry; failed holds why attempts
// failed.
type attempts struct {
	calls, tries atomic.Int64
	mu           sync.Mutex
	failed       map[string]int
}

func (a *attempts) install(stack *middleware.Stack) error {
	if err := stack.Initialize.Add(middleware.InitializeMiddlewareFunc("countCalls",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			a.calls.Add(1)
			return next.HandleInitialize(ctx, in)
		}), middleware.Before); err != nil {
		return err
	}
	// After the Retry middleware: it runs once per attempt.
	return stack.Finalize.Insert(middleware.FinalizeMiddlewareFunc("countTries",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			a.tries.Add(1)
			out, md, err := next.HandleFinalize(ctx, in)
			if err != nil {
				a.mu.Lock()
				if a.failed == nil {
					a.failed = map[string]int{}
				}
				a.failed[err.Error()]++
				a.mu.Unlock()
			}
			return out, md, err
		}), "Retry", middleware.After)
}

// Thousands of concurrent DynamoDB calls with large answers go through the endpoint while
// every core is busy: no answer is cut short, the SDK never retries, and a counter that
// every call increments once (a write the SDK must not apply twice) ends at the number of
// calls. Before the proxy read request bodies whole, a loaded machine lost answers and the
// SDK retried writes the emulator had applied.
func TestConcurrentLargeResponses(t *testing.T) {
	if testing.Short() {
		t.Skip("stress test")
	}
	ep := start(t)
	ctx := context.Background()
	var count attempts
	db := dynamodb.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(ep.URL)}, func(o *dynamodb.Options) {
		o.DisableValidateResponseChecksum = true
		o.APIOptions = append(o.APIOptions, count.install)
	})
	table := fmt.Sprint("stress-", time.Now().UnixNano())
	if _, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName: aws.String(table), BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("PK"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("PK"), KeyType: types.KeyTypeHash}},
	}); err != nil {
		t.Fatal(err)
	}
	const items, itemSize = 40, 4 << 10
	for i := range items {
		if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: map[string]types.AttributeValue{
			"PK":   &types.AttributeValueMemberS{Value: strconv.Itoa(i)},
			"Data": &types.AttributeValueMemberS{Value: strings.Repeat(string(rune('a'+i%26)), itemSize)},
		}}); err != nil {
			t.Fatal(err)
		}
	}

	// Busy goroutines keep every core saturated while the test runs.
	var done atomic.Bool
	defer done.Store(true)
	for range runtime.NumCPU() {
		go func() {
			for n := 0; !done.Load(); n++ {
			}
		}()
	}

	const calls, workers, keysPerRead = 2000, 32, 6
	count.calls.Store(0)
	count.tries.Store(0)
	var increments, failures atomic.Int64
	var firstErr sync.Once
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range jobs {
				err := call(ctx, db, table, n, items, keysPerRead, itemSize)
				switch {
				case err != nil:
					failures.Add(1)
					firstErr.Do(func() { t.Errorf("call %d: %v", n, err) })
				case n%4 == 0:
					increments.Add(1)
				}
			}
		}()
	}
	for n := range calls {
		jobs <- n
	}
	close(jobs)
	wg.Wait()

	if f := failures.Load(); f > 0 {
		t.Errorf("%d of %d calls failed", f, calls)
	}
	if retries := count.tries.Load() - count.calls.Load(); retries != 0 {
		t.Errorf("the SDK retried %d times in %d calls; the attempts failed with %v", retries, count.calls.Load(), count.failed)
	}
	out, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"PK": &types.AttributeValueMemberS{Value: "counter"}}})
	if err != nil {
		t.Fatal(err)
	}
	got := "0"
	if n, ok := out.Item["N"].(*types.AttributeValueMemberN); ok {
		got = n.Value
	}
	if want := strconv.FormatInt(increments.Load(), 10); got != want {
		t.Errorf("counter = %s after %s increments: a write was applied twice or lost", got, want)
	}
}

// call makes one DynamoDB call: every fourth increments the counter, the others read
// large items and check each arrived whole.
func call(ctx context.Context, db *dynamodb.Client, table string, n, items, keys, itemSize int) error {
	if n%4 == 0 {
		_, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(table),
			Key:                       map[string]types.AttributeValue{"PK": &types.AttributeValueMemberS{Value: "counter"}},
			UpdateExpression:          aws.String("ADD #n :one"),
			ExpressionAttributeNames:  map[string]string{"#n": "N"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"}},
		})
		return err
	}
	req := types.KeysAndAttributes{}
	for k := range keys {
		req.Keys = append(req.Keys, map[string]types.AttributeValue{"PK": &types.AttributeValueMemberS{Value: strconv.Itoa((n + k) % items)}})
	}
	out, err := db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{table: req}})
	if err != nil {
		return err
	}
	got := out.Responses[table]
	if len(got) != keys {
		return fmt.Errorf("BatchGetItem returned %d of %d items", len(got), keys)
	}
	for _, it := range got {
		if d, ok := it["Data"].(*types.AttributeValueMemberS); !ok || len(d.Value) != itemSize {
			return errors.New("an item came back cut short")
		}
	}
	return nil
}
