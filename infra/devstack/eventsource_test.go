package devstack_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	apitypes "github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/coder/websocket"

	"github.com/federation-gateway/gateway/infra/devstack"
	"github.com/federation-gateway/gateway/shared/dynamo"
)

// The stream poller and the WebSocket API of the dev stack, with a probe function that
// records what it gets (testdata/events).
type sourceStack struct {
	stack *devstack.Stack
	dir   string
	db    *dynamodb.Client
	table string
}

var sharedSourceStack = sync.OnceValues(func() (*sourceStack, error) {
	dir, err := os.MkdirTemp("", "devstack-events-probe-")
	if err != nil {
		return nil, err
	}
	s, err := devstack.Start(context.Background(), devstack.Options{
		Template: "testdata/events/template.yaml", Config: "testdata/config.json", StackName: "sources",
		Overrides:    map[string]string{"ProbeDir": dir},
		EndpointAddr: "127.0.0.1:0", APIAddr: "-", WebSocketAddr: "127.0.0.1:0",
		BuildDir: filepath.Join(os.TempDir(), "devstack-test-events-build"), Log: io.Discard, QuietFunctions: true,
		StreamPoll: 20 * time.Millisecond,
	})
	if err != nil {
		return nil, err
	}
	return &sourceStack{stack: s, dir: dir, db: dynamo.NewClient(devstack.LocalAWSConfig(s.EndpointURL), true), table: s.Template.Tables[0].Name}, nil
})

func sources(t *testing.T) *sourceStack {
	t.Helper()
	s, err := sharedSourceStack()
	if err != nil {
		t.Fatalf("start the probe stack: %v", err)
	}
	s.stack.SetWebSocketLimits(devstack.DefaultWebSocketIdle, devstack.DefaultWebSocketMaxAge)
	return s
}

// item is an item of attribute names and values ("n" is a number).
func item(attrs ...string) map[string]ddbtypes.AttributeValue {
	it := map[string]ddbtypes.AttributeValue{}
	for i := 0; i+1 < len(attrs); i += 2 {
		if attrs[i] == "n" {
			it["n"] = &ddbtypes.AttributeValueMemberN{Value: attrs[i+1]}
			continue
		}
		it[attrs[i]] = &ddbtypes.AttributeValueMemberS{Value: attrs[i+1]}
	}
	return it
}

// put writes items in one transaction, so that their records reach the stream together
// and the poller reads them in one batch.
func (s *sourceStack) put(t *testing.T, items ...map[string]ddbtypes.AttributeValue) {
	t.Helper()
	var writes []ddbtypes.TransactWriteItem
	for _, it := range items {
		writes = append(writes, ddbtypes.TransactWriteItem{Put: &ddbtypes.Put{TableName: aws.String(s.table), Item: it}})
	}
	if _, err := s.db.TransactWriteItems(context.Background(), &dynamodb.TransactWriteItemsInput{TransactItems: writes}); err != nil {
		t.Fatal(err)
	}
}

// lines returns the lines the probe wrote to a file of its directory.
func (s *sourceStack) lines(file string) []string {
	b, _ := os.ReadFile(filepath.Join(s.dir, file))
	return strings.Fields(strings.ReplaceAll(strings.TrimSpace(string(b)), " ", ","))
}

// batchesWith returns the batches (comma-separated PKs) that hold a key of prefix.
func (s *sourceStack) batchesWith(prefix string) []string {
	var out []string
	for _, b := range s.lines("batches") {
		if strings.Contains(b, prefix) {
			out = append(out, b)
		}
	}
	return out
}

func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Records no filter matches never reach the function; the others come in batches of at
// most BatchSize, in order.
func TestStreamFiltersAndBatches(t *testing.T) {
	s := sources(t)
	items := []map[string]ddbtypes.AttributeValue{
		item("PK", "drop#f1"),                              // no filter
		item("PK", "drop#f2", "kind", "noise", "n", "50"),  // anything-but noise
		item("PK", "drop#f3", "kind", "signal", "n", "5"),  // numeric > 10
		item("PK", "pass#f4", "kind", "signal", "n", "50"), // the second filter
	}
	for i := range 6 {
		items = append(items, item("PK", fmt.Sprintf("keep#f%d", i)))
	}
	s.put(t, items...)
	waitUntil(t, "the six records", func() bool { return strings.Contains(strings.Join(s.batchesWith("#f"), ","), "keep#f5") })
	var got []string
	for _, b := range s.batchesWith("#f") {
		if n := strings.Count(b, ",") + 1; n > 4 {
			t.Errorf("a batch of %d records: %s", n, b)
		}
		got = append(got, strings.Split(b, ",")...)
	}
	if want := "pass#f4 keep#f0 keep#f1 keep#f2 keep#f3 keep#f4 keep#f5"; strings.Join(got, " ") != want {
		t.Errorf("the function got %v, want %s", got, want)
	}
}

// A record the function reports failed is retried with the rest of the batch after it;
// the records before it are not sent again.
func TestStreamPartialBatchFailure(t *testing.T) {
	s := sources(t)
	waitQuiet(t, s)
	s.put(t, item("PK", "keep#p1"), item("PK", "keep#p2", "fail", "report"), item("PK", "keep#p3"))
	waitUntil(t, "the retry", func() bool { return len(s.batchesWith("#p")) >= 2 })
	b := s.batchesWith("#p")
	if !strings.HasPrefix(b[0], "keep#p1,keep#p2") || b[1] != "keep#p2,keep#p3" {
		t.Errorf("batches %v; want p2 and p3 again after p1, p2, p3", b)
	}
}

// waitQuiet waits until the poller has nothing in flight, so a test's records make
// batches of their own.
func waitQuiet(t *testing.T, s *sourceStack) {
	t.Helper()
	for range 100 {
		before := len(s.lines("batches"))
		time.Sleep(60 * time.Millisecond)
		if len(s.lines("batches")) == before {
			return
		}
	}
}

// A batch whose invocation fails is split in halves, down to the failing record, which
// is retried MaximumRetryAttempts times and then described to the on-failure queue; the
// others get through. A record that fails once succeeds when retried.
func TestStreamBisectRetriesAndDestination(t *testing.T) {
	s := sources(t)
	waitQuiet(t, s)
	s.put(t, item("PK", "keep#b1"), item("PK", "keep#b2", "fail", "once"), item("PK", "keep#b3", "fail", "error"), item("PK", "keep#b4"))
	waitUntil(t, "the record skipped and the next one sent", func() bool {
		b := s.batchesWith("#b")
		return s.stack.StreamStats("Mapping").Discarded > 0 && len(b) > 0 && b[len(b)-1] == "keep#b4"
	})
	b := s.batchesWith("#b")
	want := []string{
		"keep#b1,keep#b2,keep#b3,keep#b4", // fails (b2 once, b3 for good): split
		"keep#b1,keep#b2",                 // b2 succeeds now
		"keep#b3,keep#b4", "keep#b3",      // split again down to b3
		"keep#b3", "keep#b3", // its two retries
		"keep#b4",
	}
	if strings.Join(b, " ") != strings.Join(want, " ") {
		t.Errorf("batches\n got %v\nwant %v", b, want)
	}
	var msg struct{ Messages []struct{ Body string } }
	waitUntil(t, "the on-failure message", func() bool {
		var q struct{ QueueUrl string }
		call(t, s.stack.EndpointURL, "AmazonSQS.GetQueueUrl", map[string]any{"QueueName": "sources-Failed"}, &q)
		call(t, s.stack.EndpointURL, "AmazonSQS.ReceiveMessage", map[string]any{"QueueUrl": q.QueueUrl, "MaxNumberOfMessages": 10}, &msg)
		return len(msg.Messages) > 0
	})
	var info struct {
		RequestContext struct {
			Condition              string
			ApproximateInvokeCount int
		}
		DDBStreamBatchInfo struct {
			BatchSize                              int
			StartSequenceNumber, EndSequenceNumber string
			StreamArn                              string
		}
	}
	if err := json.Unmarshal([]byte(msg.Messages[0].Body), &info); err != nil {
		t.Fatal(err)
	}
	if info.RequestContext.Condition != "RetryAttemptsExhausted" || info.RequestContext.ApproximateInvokeCount != 3 ||
		info.DDBStreamBatchInfo.BatchSize != 1 || info.DDBStreamBatchInfo.StartSequenceNumber != info.DDBStreamBatchInfo.EndSequenceNumber ||
		!strings.Contains(info.DDBStreamBatchInfo.StreamArn, "/stream/") {
		t.Errorf("on-failure message %s", msg.Messages[0].Body)
	}
}

func call(t *testing.T, url, target string, in, out any) {
	t.Helper()
	body, _ := json.Marshal(in)
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(string(body)))
	req.Header.Set("X-Amz-Target", target)
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("%s: %v", target, err)
	}
}

func dialProbe(t *testing.T, s *sourceStack, opts *websocket.DialOptions) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.Dial(context.Background(), s.stack.WebSocketURL, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

func exchange(t *testing.T, c *websocket.Conn, msg string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	_, data, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]string
	_ = json.Unmarshal(data, &out)
	return out
}

// Messages are routed by the RouteSelectionExpression to their route or $default; the
// function answers through @connections (signed, at the URL in its environment); a
// function that fails makes API Gateway's error message; $connect picks the
// subprotocol or refuses the handshake.
func TestWebSocketRoutes(t *testing.T) {
	s := sources(t)
	c := dialProbe(t, s, &websocket.DialOptions{Subprotocols: []string{"other", "probe.v1"}})
	if c.Subprotocol() != "probe.v1" {
		t.Errorf("subprotocol %q", c.Subprotocol())
	}
	for msg, route := range map[string]string{
		`{"action":"echo","x":1}`: "echo",
		`{"action":"nope"}`:       "$default",
		`{"action":7}`:            "$default",
		`not json`:                "$default",
	} {
		got := exchange(t, c, msg)
		if got["route"] != route || got["body"] != msg || got["eventType"] != "MESSAGE" || got["stage"] != "local" {
			t.Errorf("%s: %v", msg, got)
		}
	}
	if got := exchange(t, c, `{"action":"crash"}`); got["message"] != "Internal server error" || got["connectionId"] == "" {
		t.Errorf("a failing function: %v", got)
	}
	_, resp, err := websocket.Dial(context.Background(), s.stack.WebSocketURL, &websocket.DialOptions{HTTPHeader: http.Header{"X-Refuse": {"1"}}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("refused handshake: %v %v", resp, err)
	}
}

// API Gateway's limits: a frame over 32 KB or a message over 128 KB closes the
// connection with 1009; a connection idle too long or too old is closed with 1001; and
// $disconnect hears of each.
func TestWebSocketLimits(t *testing.T) {
	s := sources(t)
	closed := func(c *websocket.Conn, send []byte) websocket.StatusCode {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if send != nil {
			_ = c.Write(ctx, websocket.MessageText, send)
		}
		for {
			if _, _, err := c.Read(ctx); err != nil {
				if websocket.CloseStatus(err) == -1 {
					t.Logf("read: %v", err)
				}
				return websocket.CloseStatus(err)
			}
		}
	}
	if got := closed(dialProbe(t, s, nil), []byte(`{"action":"echo","pad":"`+strings.Repeat("x", 40<<10)+`"}`)); got != websocket.StatusMessageTooBig {
		t.Errorf("a 40 KB frame: closed with %d", got)
	}
	big := dialProbe(t, s, nil)
	big.SetReadLimit(-1)
	w, _ := big.Writer(context.Background(), websocket.MessageText)
	for range 5 { // 5 frames of 30 KB: each under the frame limit, together over 128 KB
		_, _ = w.Write([]byte(strings.Repeat("y", 30<<10)))
	}
	_ = w.Close()
	if got := closed(big, nil); got != websocket.StatusMessageTooBig {
		t.Errorf("a 150 KB message: closed with %d", got)
	}

	s.stack.SetWebSocketLimits(300*time.Millisecond, 0)
	idle := dialProbe(t, s, nil)
	if got := closed(idle, nil); got != websocket.StatusGoingAway {
		t.Errorf("an idle connection: closed with %d", got)
	}
	s.stack.SetWebSocketLimits(time.Minute, 700*time.Millisecond)
	old := dialProbe(t, s, nil)
	start := time.Now()
	go func() { // it talks, but it is too old
		for time.Since(start) < 3*time.Second {
			_ = old.Write(context.Background(), websocket.MessageText, []byte(`{"action":"ping"}`))
			time.Sleep(100 * time.Millisecond)
		}
	}()
	if got := closed(old, nil); got != websocket.StatusGoingAway {
		t.Errorf("an old connection: closed with %d", got)
	}
	waitUntil(t, "the disconnects", func() bool {
		d := strings.Join(s.lines("disconnects"), " ")
		return strings.Count(d, ",1009,") >= 2 && strings.Contains(d, "idle") && strings.Contains(d, "duration")
	})
}

// The @connections API: a post reaches the connection, GET describes it, DELETE closes
// it, a gone connection is a 410 GoneException, and unsigned requests are refused.
func TestWebSocketManagementAPI(t *testing.T) {
	s := sources(t)
	c := dialProbe(t, s, nil)
	id := exchange(t, c, `{"action":"echo"}`)["connectionId"]
	mgmt := apigatewaymanagementapi.NewFromConfig(devstack.LocalAWSConfig(s.stack.EndpointURL), func(o *apigatewaymanagementapi.Options) {
		o.BaseEndpoint = aws.String(strings.Replace(s.stack.WebSocketURL, "ws://", "http://", 1))
	})
	ctx := context.Background()
	if _, err := mgmt.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: []byte("hello")}); err != nil {
		t.Fatal(err)
	}
	if _, data, err := c.Read(ctx); err != nil || string(data) != "hello" {
		t.Errorf("posted %q, %v", data, err)
	}
	info, err := mgmt.GetConnection(ctx, &apigatewaymanagementapi.GetConnectionInput{ConnectionId: aws.String(id)})
	if err != nil || info.ConnectedAt == nil || time.Since(*info.ConnectedAt) > time.Minute || info.Identity == nil || aws.ToString(info.Identity.SourceIp) != "127.0.0.1" {
		t.Errorf("get connection: %+v %v", info, err)
	}
	if _, err := mgmt.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: make([]byte, 129<<10)}); !errors.As(err, new(*apitypes.PayloadTooLargeException)) {
		t.Errorf("a post over 128 KB: %v", err)
	}
	if _, err := mgmt.DeleteConnection(ctx, &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Errorf("after DELETE: %v", err)
	}
	_, err = mgmt.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: []byte("late")})
	if !errors.As(err, new(*apitypes.GoneException)) {
		t.Errorf("a post to a closed connection: %v, want GoneException", err)
	}
	resp, err := http.Post(strings.Replace(s.stack.WebSocketURL, "ws://", "http://", 1)+"/@connections/x", "application/json", strings.NewReader("unsigned"))
	if err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("an unsigned post: %v %v", resp, err)
	}
}
