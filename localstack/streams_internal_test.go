package localstack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/sivchari/kumo"
)

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A transaction whose caller goes away while the endpoint streams its writes keeps them
// all: the emulator applied it, so the old items set back must be written anew. With the
// caller's context, the writes after the cancellation failed and the transaction's items
// were left as they were before it (or gone), while DynamoDB had committed it: the bridge
// benchmark lost a deposit's claim when a task timed out mid-transaction.
func TestStreamedTransactionOutlivesItsCaller(t *testing.T) {
	emu := kumo.NewServer()
	t.Cleanup(emu.Close)
	sw := newStreamWrites(emu.URL)
	call := func(op string, in any, out any) {
		t.Helper()
		if err := sw.call(context.Background(), op, in, out); err != nil {
			t.Fatal(err)
		}
	}
	table := fmt.Sprint("outlive-", time.Now().UnixNano())
	call("CreateTable", map[string]any{
		"TableName": table, "BillingMode": "PAY_PER_REQUEST",
		"AttributeDefinitions": []any{map[string]string{"AttributeName": "PK", "AttributeType": "S"}},
		"KeySchema":            []any{map[string]string{"AttributeName": "PK", "KeyType": "HASH"}},
		"StreamSpecification":  map[string]any{"StreamEnabled": true, "StreamViewType": "NEW_AND_OLD_IMAGES"},
	}, nil)
	call("PutItem", map[string]any{"TableName": table, "Item": map[string]any{"PK": map[string]string{"S": "old"}, "x": map[string]string{"S": "1"}}}, nil)

	target, _ := url.Parse(emu.URL)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	next := newProxy(target, nil)
	// The caller gives up right after the old items were set back.
	inner := sw.client.Transport
	sw.client.Transport = roundTripper(func(r *http.Request) (*http.Response, error) {
		resp, err := inner.RoundTrip(r)
		if r.Header.Get("X-Amz-Target") == dynamoTarget+"BatchWriteItem" {
			cancel()
		}
		return resp, err
	})
	body, _ := json.Marshal(map[string]any{"TransactItems": []any{
		map[string]any{"Put": map[string]any{"TableName": table, "Item": map[string]any{"PK": map[string]string{"S": "new"}, "x": map[string]string{"S": "1"}}}},
		map[string]any{"Put": map[string]any{"TableName": table, "Item": map[string]any{"PK": map[string]string{"S": "old"}, "x": map[string]string{"S": "2"}}}},
	}})
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/", bytes.NewReader(body))
	req.Header.Set("X-Amz-Target", dynamoTarget+"TransactWriteItems")
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	sw.wrap(next).ServeHTTP(httptest.NewRecorder(), req)

	for pk, want := range map[string]string{"new": "1", "old": "2"} {
		var out struct{ Item map[string]map[string]string }
		call("GetItem", map[string]any{"TableName": table, "Key": map[string]any{"PK": map[string]string{"S": pk}}, "ConsistentRead": true}, &out)
		if got := out.Item["x"]["S"]; got != want {
			t.Errorf("item %s: x = %q, want %q (the transaction's write)", pk, got, want)
		}
	}
}
