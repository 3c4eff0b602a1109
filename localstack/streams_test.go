package localstack_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sivchari/kumo"
)

// jsonAPI calls a JSON-protocol AWS API (DynamoDB, DynamoDB Streams) at url.
func jsonAPI(t *testing.T, url, target string, in any) map[string]any {
	t.Helper()
	body, _ := json.Marshal(in)
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("X-Amz-Target", target)
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	if resp.StatusCode != 200 {
		out = map[string]any{"error": resp.StatusCode, "body": string(raw)}
	}
	return out
}

func ddb(t *testing.T, url, op string, in any) map[string]any {
	t.Helper()
	return jsonAPI(t, url, "DynamoDB_20120810."+op, in)
}

func s(v string) map[string]string { return map[string]string{"S": v} }

func item(pk string, attrs ...string) map[string]any {
	it := map[string]any{"PK": s(pk)}
	for i := 0; i+1 < len(attrs); i += 2 {
		it[attrs[i]] = s(attrs[i+1])
	}
	return it
}

// streamTable creates a table with a NEW_AND_OLD_IMAGES stream and returns its stream ARN.
func streamTable(t *testing.T, url, name string) string {
	t.Helper()
	out := ddb(t, url, "CreateTable", map[string]any{
		"TableName": name, "BillingMode": "PAY_PER_REQUEST",
		"AttributeDefinitions": []any{map[string]string{"AttributeName": "PK", "AttributeType": "S"}},
		"KeySchema":            []any{map[string]string{"AttributeName": "PK", "KeyType": "HASH"}},
		"StreamSpecification":  map[string]any{"StreamEnabled": true, "StreamViewType": "NEW_AND_OLD_IMAGES"},
	})
	arn, _ := out["TableDescription"].(map[string]any)["LatestStreamArn"].(string)
	if arn == "" {
		t.Fatalf("create table: %v", out)
	}
	return arn
}

// streamRecords reads every record of the stream's first shard.
func streamRecords(t *testing.T, url, arn string) []map[string]any {
	t.Helper()
	desc := jsonAPI(t, url, "DynamoDBStreams_20120810.DescribeStream", map[string]any{"StreamArn": arn})
	shard := desc["StreamDescription"].(map[string]any)["Shards"].([]any)[0].(map[string]any)["ShardId"]
	it := jsonAPI(t, url, "DynamoDBStreams_20120810.GetShardIterator", map[string]any{"StreamArn": arn, "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"})
	out := jsonAPI(t, url, "DynamoDBStreams_20120810.GetRecords", map[string]any{"ShardIterator": it["ShardIterator"]})
	var recs []map[string]any
	for _, r := range out["Records"].([]any) {
		recs = append(recs, r.(map[string]any))
	}
	return recs
}

// summary is "<eventName> <PK> <old x>-><new x>" of each record.
func summary(recs []map[string]any) []string {
	var out []string
	for _, r := range recs {
		d := r["dynamodb"].(map[string]any)
		x := func(img string) string {
			if m, ok := d[img].(map[string]any); ok {
				if v, ok := m["x"].(map[string]any); ok {
					return v["S"].(string)
				}
				return "."
			}
			return "_"
		}
		pk := d["Keys"].(map[string]any)["PK"].(map[string]any)["S"]
		out = append(out, fmt.Sprintf("%s %s %s->%s", r["eventName"], pk, x("OldImage"), x("NewImage")))
	}
	return out
}

func writeEverySort(t *testing.T, url, table string) {
	t.Helper()
	ddb(t, url, "PutItem", map[string]any{"TableName": table, "Item": item("a", "x", "1")})
	ddb(t, url, "PutItem", map[string]any{"TableName": table, "Item": item("c", "x", "1")})
	out := ddb(t, url, "TransactWriteItems", map[string]any{"TransactItems": []any{
		map[string]any{"Update": map[string]any{"TableName": table, "Key": item("a"), "UpdateExpression": "SET x = :v",
			"ExpressionAttributeValues": map[string]any{":v": s("2")}}},
		map[string]any{"Put": map[string]any{"TableName": table, "Item": item("b", "x", "1")}},
		map[string]any{"Delete": map[string]any{"TableName": table, "Key": item("c")}},
		map[string]any{"ConditionCheck": map[string]any{"TableName": table, "Key": item("a"), "ConditionExpression": "attribute_exists(PK)"}},
	}})
	if out["error"] != nil {
		t.Fatalf("transaction: %v", out)
	}
	// A transaction whose condition fails writes nothing, so streams nothing.
	ddb(t, url, "TransactWriteItems", map[string]any{"TransactItems": []any{
		map[string]any{"Put": map[string]any{"TableName": table, "Item": item("z", "x", "1")}},
		map[string]any{"ConditionCheck": map[string]any{"TableName": table, "Key": item("nope"), "ConditionExpression": "attribute_exists(PK)"}},
	}})
	out = ddb(t, url, "BatchWriteItem", map[string]any{"RequestItems": map[string]any{table: []any{
		map[string]any{"PutRequest": map[string]any{"Item": item("e", "x", "1")}},
		map[string]any{"DeleteRequest": map[string]any{"Key": item("b")}},
	}}})
	if out["error"] != nil {
		t.Fatalf("batch: %v", out)
	}
}

// TestKumoStreamMissesTransactionsAndBatchWrites shows what localstack.streamWrites works
// around: the emulator streams PutItem, UpdateItem and DeleteItem only, neither
// TransactWriteItems nor BatchWriteItem. When this test fails, the emulator streams them
// like DynamoDB, and streamWrites can go.
func TestKumoStreamMissesTransactionsAndBatchWrites(t *testing.T) {
	emu := kumo.NewServer()
	defer emu.Close()
	table := fmt.Sprint("quirk-stream-", time.Now().UnixNano())
	arn := streamTable(t, emu.URL, table)
	writeEverySort(t, emu.URL, table)
	got := summary(streamRecords(t, emu.URL, arn))
	if want := []string{"INSERT a _->1", "INSERT c _->1"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("the emulator streamed %v; it used to stream only %v (its PutItems)", got, want)
	}
}

// Through the endpoint, the writes of a transaction are streamed too, with their old and
// new images, in order; a transaction that fails streams nothing. BatchWriteItem's are
// not (see streamWrites).
func TestEndpointStreamsEveryWrite(t *testing.T) {
	ep := start(t)
	table := fmt.Sprint("stream-", time.Now().UnixNano())
	arn := streamTable(t, ep.URL, table)
	writeEverySort(t, ep.URL, table)
	want := []string{
		"INSERT a _->1", "INSERT c _->1", // PutItem
		"MODIFY a 1->2", "INSERT b _->1", "REMOVE c 1->_", // the transaction
	}
	recs := streamRecords(t, ep.URL, arn)
	if got := summary(recs); strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Errorf("stream:\n got %v\nwant %v", got, want)
	}
	// And the table holds what the writes left.
	for pk, x := range map[string]string{"a": "2", "b": "", "c": "", "e": "1", "z": ""} {
		out := ddb(t, ep.URL, "GetItem", map[string]any{"TableName": table, "Key": item(pk)})
		got := ""
		if it, ok := out["Item"].(map[string]any); ok {
			got = it["x"].(map[string]any)["S"].(string)
		}
		if got != x {
			t.Errorf("item %s: x = %q, want %q", pk, got, x)
		}
	}
}

// A transaction over several tables streams each streamed table's writes to its own
// stream (the endpoint reads the items of all tables in one BatchGetItem), and leaves an
// unstreamed table's writes alone.
func TestEndpointStreamsTransactionsAcrossTables(t *testing.T) {
	ep := start(t)
	name := fmt.Sprint("stream-multi-", time.Now().UnixNano())
	arnA, arnB := streamTable(t, ep.URL, name+"-a"), streamTable(t, ep.URL, name+"-b")
	plain := name + "-plain"
	if out := ddb(t, ep.URL, "CreateTable", map[string]any{
		"TableName": plain, "BillingMode": "PAY_PER_REQUEST",
		"AttributeDefinitions": []any{map[string]string{"AttributeName": "PK", "AttributeType": "S"}},
		"KeySchema":            []any{map[string]string{"AttributeName": "PK", "KeyType": "HASH"}},
	}); out["error"] != nil {
		t.Fatalf("create table: %v", out)
	}
	ddb(t, ep.URL, "PutItem", map[string]any{"TableName": name + "-b", "Item": item("k", "x", "1")})
	out := ddb(t, ep.URL, "TransactWriteItems", map[string]any{"TransactItems": []any{
		map[string]any{"Put": map[string]any{"TableName": name + "-a", "Item": item("k", "x", "1")}},
		map[string]any{"Put": map[string]any{"TableName": name + "-b", "Item": item("k", "x", "2")}},
		map[string]any{"Put": map[string]any{"TableName": plain, "Item": item("k", "x", "1")}},
		map[string]any{"Put": map[string]any{"TableName": name + "-a", "Item": item("j", "x", "1")}},
	}})
	if out["error"] != nil {
		t.Fatalf("transaction: %v", out)
	}
	for arn, want := range map[string]string{
		arnA: "[INSERT k _->1 INSERT j _->1]",
		arnB: "[INSERT k _->1 MODIFY k 1->2]",
	} {
		if got := fmt.Sprint(summary(streamRecords(t, ep.URL, arn))); got != want {
			t.Errorf("stream %s: got %v, want %v", arn, got, want)
		}
	}
	if it, _ := ddb(t, ep.URL, "GetItem", map[string]any{"TableName": plain, "Key": item("k")})["Item"].(map[string]any); it == nil {
		t.Error("the unstreamed table's item was not written")
	}
}

// Concurrent DescribeTables through the endpoint, beside the transactions whose tables the
// endpoint describes itself, do not race in the emulator (run with -race).
func TestEndpointDescribesTablesConcurrently(t *testing.T) {
	ep := start(t)
	table := fmt.Sprint("describe-", time.Now().UnixNano())
	streamTable(t, ep.URL, table)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				ddb(t, ep.URL, "DescribeTable", map[string]any{"TableName": table})
				return
			}
			ddb(t, ep.URL, "TransactWriteItems", map[string]any{"TransactItems": []any{
				map[string]any{"Put": map[string]any{"TableName": table, "Item": item(fmt.Sprint("k", i), "x", "1")}},
			}})
		}()
	}
	wg.Wait()
}

// A transaction of more items than one BatchWriteItem takes streams every one, in the
// transaction's order.
func TestEndpointStreamsLargeTransactions(t *testing.T) {
	ep := start(t)
	table := fmt.Sprint("stream-large-", time.Now().UnixNano())
	arn := streamTable(t, ep.URL, table)
	var puts []any
	var want []string
	for i := range 40 {
		pk := fmt.Sprintf("k%02d", i)
		puts = append(puts, map[string]any{"Put": map[string]any{"TableName": table, "Item": item(pk, "x", "1")}})
		want = append(want, "INSERT "+pk+" _->1")
	}
	if out := ddb(t, ep.URL, "TransactWriteItems", map[string]any{"TransactItems": puts}); out["error"] != nil {
		t.Fatalf("transaction: %v", out)
	}
	if got := summary(streamRecords(t, ep.URL, arn)); strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Errorf("stream:\n got %v\nwant %v", got, want)
	}
}

// Once a reader has seen one item of a transaction as the transaction wrote it, it sees
// every other item of it so too, as on DynamoDB, while the endpoint streams the
// transaction's writes: here a head item moves to n in the same transaction that writes
// entry n, and a reader that reads head n must find entry n.
func TestEndpointTransactionsAppearAtOnce(t *testing.T) {
	ep := start(t)
	table := fmt.Sprint("stream-atomic-", time.Now().UnixNano())
	streamTable(t, ep.URL, table)
	stop := make(chan struct{})
	var seen, missing int
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			head := ddb(t, ep.URL, "GetItem", map[string]any{"TableName": table, "Key": item("head"), "ConsistentRead": true})
			it, _ := head["Item"].(map[string]any)
			attr, _ := it["n"].(map[string]any)
			n, _ := attr["S"].(string)
			if n == "" {
				continue
			}
			seen++
			entry := ddb(t, ep.URL, "GetItem", map[string]any{"TableName": table, "Key": item("entry-" + n), "ConsistentRead": true})
			if entry["Item"] == nil {
				missing++
			}
		}
	}()
	for i := 1; i <= 150; i++ {
		out := ddb(t, ep.URL, "TransactWriteItems", map[string]any{"TransactItems": []any{
			map[string]any{"Put": map[string]any{"TableName": table, "Item": item("head", "n", fmt.Sprint(i))}},
			map[string]any{"Put": map[string]any{"TableName": table, "Item": item(fmt.Sprint("entry-", i), "x", "1")}},
		}})
		if out["error"] != nil {
			t.Fatalf("transaction %d: %v", i, out)
		}
	}
	close(stop)
	wg.Wait()
	if seen == 0 || missing > 0 {
		t.Errorf("the reader saw the head %d times, and %d times the entry it names was missing", seen, missing)
	}
}
