package main

import (
	"io"
	"testing"
)

// The batch lines of EventsFunction's instances are counted, split across writes; other
// functions' lines and other messages are not.
func TestBatchLog(t *testing.T) {
	var l batchLog
	for _, chunk := range []string{
		`EventsFunction@1 | {"msg":"batch","events":3,"dynamodb_calls":4}` + "\n" + `EventsFunction@2 | {"msg":"ba`,
		`tch","events":1,"dynamodb_calls":4}` + "\n",
		`EventsFunction@1 | {"msg":"connected","events":9,"dynamodb_calls":9}` + "\n",
		`WsConnectFunction@1 | {"msg":"batch","events":9,"dynamodb_calls":9}` + "\n",
		`EventsFunction@1 | devstack: started` + "\n",
	} {
		if _, err := io.WriteString(&l, chunk); err != nil {
			t.Fatal(err)
		}
	}
	if got := l.totals(); got != (batchTotals{calls: 8, events: 4}) {
		t.Errorf("totals %+v, want 8 calls and 4 events", got)
	}
}
