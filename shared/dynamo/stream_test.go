package dynamo_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	lambdaevents "github.com/aws/aws-lambda-go/events"
	"github.com/shopspring/decimal"

	"github.com/federation-gateway/gateway/infra/localtest"
	"github.com/federation-gateway/gateway/shared/bridge"
	"github.com/federation-gateway/gateway/shared/directory"
	"github.com/federation-gateway/gateway/shared/dynamo"
	"github.com/federation-gateway/gateway/shared/events"
	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/routing"
)

// decodeAll decodes every record of a table's stream, as Lambda hands them over.
func decodeAll(t *testing.T, table string) []events.Change {
	t.Helper()
	var out []events.Change
	for _, raw := range localtest.StreamRecords(t, localtest.Endpoint(t).URL, table) {
		b, _ := json.Marshal(raw)
		var rec lambdaevents.DynamoDBEventRecord
		if err := json.Unmarshal(b, &rec); err != nil {
			t.Fatalf("record %s: %v", b, err)
		}
		c, err := dynamo.DecodeRecord(rec)
		if err != nil {
			t.Fatalf("decode %s: %v", b, err)
		}
		out = append(out, c)
	}
	return out
}

// The stream's records of the items the directory, routing and subscriptions write,
// written by the store's own methods, decode into the changes whose events they make.
func TestDecodeRecord(t *testing.T) {
	ctx := context.Background()
	table, db := localtest.StreamedTable(t)
	s := dynamo.NewStore(db, table)
	now := time.Now().UTC()

	a := federation.Agent{DID: "did:web:a.example", Name: "A", Registry: "alpha", SourceID: "a", Status: federation.StatusActive,
		ContentHash: "h1", LastSeen: now, Tags: []string{"t"}, Skills: []federation.Skill{}, Capabilities: []string{"echo"}}
	if _, err := s.PutAgent(ctx, a, "v1", nil); err != nil {
		t.Fatal(err)
	}
	a.ContentHash = "h2"
	rec := directory.Record{DID: a.DID, SourceID: "a", Registry: "alpha", ContentHash: "h1", Status: federation.StatusActive, Owner: true, Facets: directory.Facets(a)}
	if _, err := s.PutAgent(ctx, a, "v2", &rec); err != nil {
		t.Fatal(err)
	}
	rec.ContentHash = "h2"
	if err := s.SetStatus(ctx, rec, federation.StatusStale, now, time.Hour); err != nil {
		t.Fatal(err)
	}
	for _, healthy := range []bool{true, false, false, true} {
		st := directory.SyncState{RegistryState: federation.RegistryState{ID: "beta", Healthy: healthy, Agents: federation.AgentCounts{Active: 3}}}
		if err := s.SaveSyncState(ctx, st); err != nil {
			t.Fatal(err)
		}
	}
	from, to := "did:key:z6MkSender", "did:web:target.example"
	if _, err := s.Admit(ctx, routing.Admission{MessageID: "m-1", ContentHash: "c", From: from, To: to, N: 1, AgentLimit: 10, GlobalShardLimit: 10, Minute: now}); err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(ctx, routing.Claim{MessageID: "m-1", From: from, To: to, Status: routing.ClaimDelivered, TargetRegistry: "beta", Fee: "0.01"}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutConnection(ctx, events.Connection{ID: "c1", ConnectedAt: now}, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.Subscribe(ctx, "c1", events.Subscription{ID: "sub-1", State: events.SubPending}); err != nil {
		t.Fatal(err)
	}
	// A bridge transfer accepted and verified (a step that also turns alpha's books low),
	// its lane paused and resumed.
	lane := bridge.Lane{ID: bridge.LaneID{From: "alpha", To: "beta"}}
	tr := bridge.Transfer{ID: "br-1", Status: bridge.StatusPending, Step: bridge.StepAccept, From: from, To: to,
		Lane: lane.ID, Sender: "spiffe://alpha.example/ops-bot", Amount: decimal.RequireFromString("25.5"), CreatedAt: now, UpdatedAt: now}
	if err := s.Accept(ctx, bridge.Acceptance{Transfer: tr, Lane: lane}); err != nil {
		t.Fatal(err)
	}
	tr.Version, lane.Version = 1, 1
	tr.Status, tr.Step, tr.Deposited = bridge.StatusVerified, bridge.StepVerify, tr.Amount
	book := bridge.Book{Registry: "alpha", Seeded: decimal.RequireFromString("900"), LowLiquidity: true, UpdatedAt: now}
	if err := s.Commit(ctx, bridge.Change{Transfer: tr, Books: []bridge.Book{book}}); err != nil {
		t.Fatal(err)
	}
	for _, paused := range []bool{true, false} {
		lane.Paused = paused
		if err := s.PutLane(ctx, lane, nil); err != nil {
			t.Fatal(err)
		}
		lane.Version++
	}

	var got []string
	var subs []events.SubscriptionChange
	var msg, transfer events.Event
	for _, c := range decodeAll(t, table) {
		if c.EventID == "" || c.Seq == "" || c.Time.IsZero() {
			t.Errorf("change %+v has no record identity", c)
		}
		for _, e := range events.Derive(c) {
			got = append(got, e.Type+" "+e.Subject)
			switch e.Type {
			case events.MessageDelivered:
				msg = e
			case events.BridgePrefix + bridge.StatusVerified:
				transfer = e
			}
		}
		if c.Subscription != nil {
			subs = append(subs, *c.Subscription)
		}
	}
	want := []string{
		"agent.added did:web:a.example", "agent.changed did:web:a.example", "agent.stale did:web:a.example",
		"registry.unhealthy beta", "registry.healthy beta",
		"message.delivered m-1",
		"bridge.pending br-1", "bridge.verified br-1", "lane.low_liquidity alpha", "lane.paused alpha->beta", "lane.resumed alpha->beta",
	}
	if !slices.Equal(got, want) {
		t.Errorf("events\n got %v\nwant %v", got, want)
	}
	if !slices.Equal(msg.Audience.Parties, []string{from, to}) || !strings.Contains(string(msg.Data), `"target_registry":"beta"`) {
		t.Errorf("message event %+v %s", msg.Audience, msg.Data)
	}
	if !slices.Equal(transfer.Audience.Parties, []string{from, to, tr.Sender}) || transfer.Audience.Transfer != "br-1" ||
		!strings.Contains(string(transfer.Data), `"amount":"25.5"`) || !strings.Contains(string(transfer.Data), `"lane":"alpha->beta"`) {
		t.Errorf("transfer event %+v %s", transfer.Audience, transfer.Data)
	}
	if len(subs) != 1 || subs[0] != (events.SubscriptionChange{Connection: "c1", Subscription: "sub-1"}) {
		t.Errorf("subscriptions %+v", subs)
	}
}

// Records that are not the table's, or broken, are errors, never a panic.
func TestDecodeRecordErrors(t *testing.T) {
	for name, raw := range map[string]string{
		"no event ID": `{"eventName":"INSERT","dynamodb":{"Keys":{"PK":{"S":"AGENT#x"},"SK":{"S":"ROUTE"}}}}`,
		"no keys":     `{"eventID":"1","eventName":"INSERT","dynamodb":{}}`,
		"numeric key": `{"eventID":"1","eventName":"INSERT","dynamodb":{"Keys":{"PK":{"N":"1"},"SK":{"S":"ROUTE"}}}}`,
		"deep image":  `{"eventID":"1","dynamodb":{"Keys":{"PK":{"S":"AGENT#x"},"SK":{"S":"ROUTE"}},"NewImage":{"a":` + strings.Repeat(`{"L":[`, 40) + `{"S":"x"}` + strings.Repeat(`]}`, 40) + `}}}`,
	} {
		var rec lambdaevents.DynamoDBEventRecord
		if err := json.Unmarshal([]byte(raw), &rec); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := dynamo.DecodeRecord(rec); federation.ErrorCode(err) != federation.EINVALID {
			t.Errorf("%s: %v, want an invalid record", name, err)
		}
	}
}

// FuzzDecodeRecord: whatever a stream record holds, decoding it and making its events
// never panics, and what it makes are known events with JSON data.
func FuzzDecodeRecord(f *testing.F) {
	for _, s := range []string{
		`{"eventID":"e1","eventName":"INSERT","dynamodb":{"ApproximateCreationDateTime":1764700000,"Keys":{"PK":{"S":"AGENT#did:web:a"},"SK":{"S":"ROUTE"}},"NewImage":{"PK":{"S":"AGENT#did:web:a"},"SK":{"S":"ROUTE"},"did":{"S":"did:web:a"},"status":{"S":"active"},"registry":{"S":"alpha"},"tags":{"L":[{"S":"x"}]},"skills":{"S":"[]"}},"SequenceNumber":"1"}}`,
		`{"eventID":"e2","eventName":"MODIFY","dynamodb":{"Keys":{"PK":{"S":"REGISTRY#beta"},"SK":{"S":"META"}},"OldImage":{"registry_id":{"S":"beta"},"healthy":{"BOOL":true}},"NewImage":{"registry_id":{"S":"beta"},"healthy":{"BOOL":false},"agents_active":{"N":"3"}},"SequenceNumber":"2"}}`,
		`{"eventID":"e3","eventName":"MODIFY","dynamodb":{"Keys":{"PK":{"S":"MSG#ab#m1"},"SK":{"S":"DELIVERY"}},"OldImage":{"status":{"S":"pending"}},"NewImage":{"status":{"S":"delivered"},"from":{"S":"did:a"},"to":{"S":"did:b"}},"SequenceNumber":"3"}}`,
		`{"eventID":"e4","eventName":"MODIFY","dynamodb":{"Keys":{"PK":{"S":"CONN"},"SK":{"S":"c1"}},"NewImage":{"sub_state":{"S":"pending"},"sub_id":{"S":"s"}},"SequenceNumber":"4"}}`,
		`{"eventID":"e5","eventName":"REMOVE","dynamodb":{"Keys":{"PK":{"S":"AGENT#x"},"SK":{"S":"ROUTE"}},"OldImage":{"status":{"S":"gone"},"skills":{"S":"{"}}}}`,
		`{"eventID":"e7","eventName":"MODIFY","dynamodb":{"Keys":{"PK":{"S":"BRIDGE#br-1"},"SK":{"S":"STATE"}},"OldImage":{"status":{"S":"pending"}},"NewImage":{"transfer_id":{"S":"br-1"},"status":{"S":"verified"},"from":{"S":"did:a"},"to":{"S":"did:b"},"amount":{"S":"1e99999"},"steps":{"S":"[{"}},"SequenceNumber":"7"}}`,
		`{"eventID":"e8","eventName":"MODIFY","dynamodb":{"Keys":{"PK":{"S":"LANE#a->b"},"SK":{"S":"STATE"}},"OldImage":{"paused":{"BOOL":false}},"NewImage":{"source_registry":{"S":"a"},"target_registry":{"S":"b"},"paused":{"BOOL":true}},"SequenceNumber":"8"}}`,
		`{"eventID":"e9","eventName":"MODIFY","dynamodb":{"Keys":{"PK":{"S":"BOOK#a"},"SK":{"S":"STATE"}},"NewImage":{"registry":{"S":"a"},"available":{"S":"12.5"},"low_liquidity":{"BOOL":true}},"SequenceNumber":"9"}}`,
		`{"eventID":"e6","dynamodb":{"Keys":{"PK":{"S":"AGENT#x"},"SK":{"S":"ROUTE"}},"NewImage":{"n":{"NS":["1"]},"b":{"B":"AAE="},"m":{"M":{"x":{"NULL":true}}},"bs":{"BS":["AA=="]}}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var rec lambdaevents.DynamoDBEventRecord
		if json.Unmarshal(raw, &rec) != nil {
			return
		}
		c, err := dynamo.DecodeRecord(rec)
		if err != nil {
			if federation.ErrorCode(err) != federation.EINVALID {
				t.Fatalf("error %v is not an invalid record", err)
			}
			return
		}
		for _, e := range events.Derive(c) {
			if !events.KnownType(e.Type) && !strings.HasPrefix(e.Type, events.BridgePrefix) {
				t.Fatalf("event type %q", e.Type)
			}
			if !json.Valid(e.Data) || e.ID == "" {
				t.Fatalf("event %+v", e)
			}
		}
	})
}
