package localtest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
)

// StreamRecords returns every record of a table's stream on the local endpoint at url, as
// DynamoDB Streams' GetRecords returns them (JSON as Go values), oldest first, with the
// eventSourceARN Lambda adds.
func StreamRecords(t testing.TB, url, table string) []map[string]any {
	t.Helper()
	var desc struct {
		Table struct{ LatestStreamArn string }
	}
	streamsCall(t, url, "DynamoDB_20120810.DescribeTable", map[string]any{"TableName": table}, &desc)
	arn := desc.Table.LatestStreamArn
	var stream struct {
		StreamDescription struct{ Shards []struct{ ShardId string } }
	}
	streamsCall(t, url, "DynamoDBStreams_20120810.DescribeStream", map[string]any{"StreamArn": arn}, &stream)
	var out []map[string]any
	for _, sh := range stream.StreamDescription.Shards {
		var it struct{ ShardIterator string }
		streamsCall(t, url, "DynamoDBStreams_20120810.GetShardIterator", map[string]any{"StreamArn": arn, "ShardId": sh.ShardId, "ShardIteratorType": "TRIM_HORIZON"}, &it)
		for iter := it.ShardIterator; iter != ""; {
			var page struct {
				Records           []map[string]any
				NextShardIterator string
			}
			streamsCall(t, url, "DynamoDBStreams_20120810.GetRecords", map[string]any{"ShardIterator": iter}, &page)
			if len(page.Records) == 0 {
				break
			}
			for _, r := range page.Records {
				r["eventSourceARN"] = arn
				out = append(out, r)
			}
			iter = page.NextShardIterator
		}
	}
	return out
}

// StreamRecord returns the last record of a table's stream that match accepts.
func StreamRecord(t testing.TB, url, table string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	recs := StreamRecords(t, url, table)
	for i := len(recs) - 1; i >= 0; i-- {
		if match(recs[i]) {
			return recs[i]
		}
	}
	t.Fatalf("no record of the stream of %s matches", table)
	return nil
}

func streamsCall(t testing.TB, url, target string, in, out any) {
	t.Helper()
	body, _ := json.Marshal(in)
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Amz-Target", target)
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", target, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %s", target, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("%s: %v", target, err)
	}
}
