package delivery_test

import (
	"context"
	"encoding/json"
	"io"
	"iter"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/a2aproject/a2a-go/v2/a2a"
	"github.com/a2aproject/a2a-go/v2/a2asrv"

	"github.com/federation-gateway/gateway/infra/demo"
	"github.com/federation-gateway/gateway/shared/delivery"
	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/outbound"
)

func startDemo(t *testing.T) *demo.Federation {
	t.Helper()
	f, err := demo.Start(context.Background(), demo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

// newDeliverer returns a Deliverer allowed to reach 127.0.0.1, where the tests' agents are.
func newDeliverer(t *testing.T) (*delivery.Deliverer, *delivery.Signer) {
	t.Helper()
	s := newSigner(t)
	return delivery.New(outbound.NewClient(outbound.Options{AllowPrivate: true}), s, "gw-test"), s
}

func message(to string, payload string) delivery.Message {
	return delivery.Message{
		ID: "msg-" + strings.ReplaceAll(to, "/", "-"), From: "did:key:z6MkSender", To: to,
		SourceRegistry: "alpha", TargetRegistry: "beta", Payload: json.RawMessage(payload),
		VerifiedBy: "did:key", Subject: "did:key:z6MkSender",
	}
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// Live demo agents built with a2a-go: one answers with a message, one with a task.
func TestDeliverToDemoAgents(t *testing.T) {
	f := startDemo(t)
	d, _ := newDeliverer(t)
	tests := []struct {
		agent   string // its humanReadableId
		payload string
		kind    string
		want    []string // in the summary
	}{
		// Echo answers with the data it was sent: the payload arrived as a data part.
		{"legacy/echo-classic", `{"city": "Paris", "n": 3}`, delivery.KindMessage, []string{`"data":{"city":"Paris","n":3}`, `"message_id":"`, `"metadata":{"agent":"legacy/echo-classic","skill":"echo"}`}},
		// A payload that is not an object arrives wrapped as {"value": ...}.
		{"legacy/echo-classic", `[1, "two"]`, delivery.KindMessage, []string{`"data":{"value":[1,"two"]}`}},
		// The calculator reads data.numbers and answers with a completed task.
		{"numerix/calculator", `{"numbers": [1, 2, 3.5]}`, delivery.KindTask, []string{`"state":"completed"`, `"text":"sum = 6.5"`, `"result":"6.5"`, `"artifact_id":"`, `"name":"sum"`, `"skill":"sum"`}},
	}
	for _, tt := range tests {
		t.Run(tt.agent, func(t *testing.T) {
			a := f.Agent(tt.agent)
			did := a.DID
			if did == "" {
				did = "did:agentvault:" + a.HumanReadableID
			}
			o, err := d.Deliver(ctxTimeout(t, 10*time.Second), a.URL, message(did, tt.payload))
			if err != nil {
				t.Fatal(err)
			}
			if o.Kind != tt.kind || !json.Valid(o.Summary) || !strings.Contains(string(o.Summary), `"kind":"`+tt.kind+`"`) {
				t.Fatalf("outcome %s: %s", o.Kind, o.Summary)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(o.Summary), w) {
					t.Errorf("summary lacks %s: %s", w, o.Summary)
				}
			}
		})
	}
}

// recorder is an A2A agent built with a2a-go that keeps what it receives and answers
// with what answer makes of it.
type recorder struct {
	mu     sync.Mutex
	got    []*a2asrv.ExecutorContext
	answer func(ec *a2asrv.ExecutorContext) a2a.Event
}

func (r *recorder) Execute(_ context.Context, ec *a2asrv.ExecutorContext) iter.Seq2[a2a.Event, error] {
	r.mu.Lock()
	r.got = append(r.got, ec)
	r.mu.Unlock()
	return func(yield func(a2a.Event, error) bool) { yield(r.answer(ec), nil) }
}

func (r *recorder) Cancel(context.Context, *a2asrv.ExecutorContext) iter.Seq2[a2a.Event, error] {
	return func(func(a2a.Event, error) bool) {}
}

func (r *recorder) received(t *testing.T) *a2asrv.ExecutorContext {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.got) != 1 {
		t.Fatalf("the agent received %d messages", len(r.got))
	}
	return r.got[0]
}

func startRecorder(t *testing.T, answer func(ec *a2asrv.ExecutorContext) a2a.Event) (*recorder, string) {
	t.Helper()
	r := &recorder{answer: answer}
	srv := httptest.NewServer(a2asrv.NewJSONRPCHandler(a2asrv.NewHandler(r)))
	t.Cleanup(srv.Close)
	return r, srv.URL
}

func replyText(text string) func(*a2asrv.ExecutorContext) a2a.Event {
	return func(*a2asrv.ExecutorContext) a2a.Event {
		return a2a.NewMessage(a2a.MessageRoleAgent, a2a.NewTextPart(text))
	}
}

// What the target receives: the payload as one data part, the metadata, the message ID
// as the A2A messageId, A2A-Version 1.0, and a signature that verifies with the JWKS and
// fails once the message is altered.
func TestDeliverSignsWhatTheTargetReceives(t *testing.T) {
	d, signer := newDeliverer(t)
	for _, payload := range []string{`{"city": "Paris", "when": {"day": 1}}`, `"just text"`, `42`, `null`} {
		t.Run(payload, func(t *testing.T) {
			rec, url := startRecorder(t, replyText("ok"))
			m := message("did:web:example.com:target", payload)
			o, err := d.Deliver(ctxTimeout(t, 10*time.Second), url, m)
			if err != nil {
				t.Fatal(err)
			}
			if o.Kind != delivery.KindMessage || !strings.Contains(string(o.Summary), `"text":"ok"`) {
				t.Errorf("outcome %s %s", o.Kind, o.Summary)
			}
			ec := rec.received(t)
			msg := ec.Message
			if v, _ := ec.ServiceParams.Get(a2a.SvcParamVersion); len(v) != 1 || v[0] != "1.0" {
				t.Errorf("A2A-Version = %v", v)
			}
			if msg.ID != m.ID || msg.Role != a2a.MessageRoleUser || len(msg.Parts) != 1 {
				t.Fatalf("message %s role %s with %d parts", msg.ID, msg.Role, len(msg.Parts))
			}
			if _, ok := msg.Parts[0].Content.(a2a.Data); !ok {
				t.Fatalf("the part is %T, want a data part", msg.Parts[0].Content)
			}
			wantMeta := map[string]any{
				delivery.MetaMessageID: m.ID, delivery.MetaFrom: m.From, delivery.MetaTo: m.To,
				delivery.MetaSourceRegistry: "alpha", delivery.MetaTargetRegistry: "beta", delivery.MetaGateway: "gw-test",
				delivery.MetaVerifiedBy: map[string]any{"method": "did:key", "subject": "did:key:z6MkSender"},
			}
			for k, want := range wantMeta {
				got, _ := json.Marshal(msg.Metadata[k])
				wantJSON, _ := json.Marshal(want)
				if string(got) != string(wantJSON) {
					t.Errorf("metadata %s = %s, want %s", k, got, wantJSON)
				}
			}
			if wrapped, _ := msg.Metadata[delivery.MetaPayloadWrapped].(bool); wrapped != (payload[0] != '{') {
				t.Errorf("payload_wrapped = %v for %s", wrapped, payload)
			}

			got, token, err := delivery.ReadForwarded(msg)
			if err != nil {
				t.Fatal(err)
			}
			if err := delivery.VerifyForwarded(signer.JWKS(), token, got); err != nil {
				t.Fatalf("the target cannot verify what it received: %v", err)
			}
			var sent, arrived any
			_ = json.Unmarshal(m.Payload, &sent)
			_ = json.Unmarshal(got.Payload, &arrived)
			if s, a := must(json.Marshal(sent)), must(json.Marshal(arrived)); s != a {
				t.Errorf("payload arrived as %s, sent %s", a, s)
			}

			got.Payload = json.RawMessage(`{"city": "Berlin"}`)
			if err := delivery.VerifyForwarded(signer.JWKS(), token, got); err == nil {
				t.Error("an altered payload verifies")
			}
			msg.Metadata[delivery.MetaTo] = "did:web:evil.example"
			altered, token, _ := delivery.ReadForwarded(msg)
			if err := delivery.VerifyForwarded(signer.JWKS(), token, altered); err == nil {
				t.Error("an altered target verifies")
			}
		})
	}
}

// A message of parts (what a client sent the gateway's A2A endpoint) reaches the target
// part for part, text, data and files alike, and its signature binds them: the target
// verifies it, and a changed part or a part list passed off as a data payload fails.
func TestDeliverForwardsParts(t *testing.T) {
	d, signer := newDeliverer(t)
	rec, url := startRecorder(t, replyText("ok"))
	sent := []*a2a.Part{
		a2a.NewTextPart("hello"),
		{Content: a2a.Data{Value: map[string]any{"city": "Paris", "days": 3.0}}, MediaType: "application/json", Metadata: map[string]any{"k": "v"}},
		{Content: a2a.URL("https://files.example/report.pdf"), MediaType: "application/pdf", Filename: "report.pdf"},
		{Content: a2a.Raw{0, 1, 2, 0xff}, MediaType: "application/octet-stream", Filename: "blob.bin"},
	}
	payload, err := json.Marshal(sent)
	if err != nil {
		t.Fatal(err)
	}
	m := message("did:web:example.com:target", string(payload))
	m.Parts = true
	if _, err := d.Deliver(ctxTimeout(t, 10*time.Second), url, m); err != nil {
		t.Fatal(err)
	}
	msg := rec.received(t).Message
	if got, want := must(json.Marshal(msg.Parts)), string(payload); got != want {
		t.Fatalf("the target received parts %s, want %s", got, want)
	}
	if msg.Parts[0].Text() != "hello" {
		t.Errorf("text part %q", msg.Parts[0].Text())
	}
	if form, _ := msg.Metadata[delivery.MetaPayloadForm].(string); form != delivery.PayloadParts {
		t.Errorf("payload_form = %q", form)
	}
	got, token, err := delivery.ReadForwarded(msg)
	if err != nil || !got.Parts {
		t.Fatalf("ReadForwarded: %+v, %v", got, err)
	}
	if err := delivery.VerifyForwarded(signer.JWKS(), token, got); err != nil {
		t.Fatalf("the target cannot verify the parts it received: %v", err)
	}
	msg.Parts[0] = a2a.NewTextPart("goodbye")
	altered, token, _ := delivery.ReadForwarded(msg)
	if err := delivery.VerifyForwarded(signer.JWKS(), token, altered); err == nil {
		t.Error("an altered text part verifies")
	}
	got.Parts = false
	if err := delivery.VerifyForwarded(signer.JWKS(), token, got); err == nil {
		t.Error("the parts verify as a data payload")
	}
}

func must(b []byte, err error) string {
	if err != nil {
		panic(err)
	}
	return string(b)
}

// Every way a target can fail is EUNAVAILABLE with a reason a caller can read, and no
// internal detail (addresses, Go error text) in it.
func TestDeliverFailures(t *testing.T) {
	d, _ := newDeliverer(t)
	f := startDemo(t)

	closed := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		url := "http://" + ln.Addr().String()
		ln.Close()
		return url
	}()
	serve := func(h http.HandlerFunc) string {
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		return srv.URL
	}
	answer := func(status int, contentType, body string) string {
		return serve(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", contentType)
			w.WriteHeader(status)
			_, _ = w.Write([]byte(body))
		})
	}
	slow := serve(func(w http.ResponseWriter, r *http.Request) {
		// Read the body first: only then does the server notice the client hanging up.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	huge := serve(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":"1","result":{"message":{"messageId":"m","role":"ROLE_AGENT","parts":[{"text":"`))
		chunk := []byte(strings.Repeat("a", 64<<10))
		for range (delivery.MaxReplyBytes >> 16) + 2 {
			_, _ = w.Write(chunk)
		}
		_, _ = w.Write([]byte(`"}]}}}`))
	})
	_, rejecting := startRecorder(t, func(ec *a2asrv.ExecutorContext) a2a.Event {
		task := a2a.NewSubmittedTask(ec, ec.Message)
		task.Status = a2a.TaskStatus{State: a2a.TaskStateRejected, Message: a2a.NewMessageForTask(a2a.MessageRoleAgent, ec, a2a.NewTextPart("I only take text"))}
		return task
	})
	_, failing := startRecorder(t, func(ec *a2asrv.ExecutorContext) a2a.Event {
		task := a2a.NewSubmittedTask(ec, ec.Message)
		task.Status = a2a.TaskStatus{State: a2a.TaskStateFailed}
		return task
	})

	tests := []struct {
		name     string
		endpoint string
		deliver  *delivery.Deliverer
		timeout  time.Duration
		want     string
		outcome  string // the outcome kind returned with the error, if any
	}{
		{"target down", closed, d, 0, "is unreachable", ""},
		{"slow target", slow, d, 300 * time.Millisecond, "did not answer within 300ms", ""},
		{"not JSON", answer(200, "text/html", "<html>hello</html>"), d, 0, "not an A2A JSON-RPC response", ""},
		{"JSON, not JSON-RPC", answer(200, "application/json", `{"hello": "world"}`), d, 0, "not an A2A JSON-RPC response", ""},
		{"JSON-RPC, not A2A", answer(200, "application/json", `{"jsonrpc":"2.0","id":"1","result":{"weather":"sunny"}}`), d, 0, "not an A2A JSON-RPC response", ""},
		{"null message", answer(200, "application/json", `{"jsonrpc":"2.0","id":"1","result":{"message":null}}`), d, 0, "not an A2A", ""},
		{"HTTP error page", answer(502, "text/html", "<h1>Bad Gateway</h1>"), d, 0, "answered HTTP 502", ""},
		{"wrong path of a live server", f.AgentsURL + "/agents/no-such-agent", d, 0, "answered HTTP 404", ""},
		{"JSON-RPC error, unknown code", answer(200, "application/json", `{"jsonrpc":"2.0","id":"1","error":{"code":-32050,"message":"agent overloaded"}}`), d, 0, "JSON-RPC error -32050: agent overloaded", ""},
		{"JSON-RPC error of a2a-go", answer(200, "application/json", `{"jsonrpc":"2.0","id":"1","error":{"code":-32602,"message":"invalid params: no text"}}`), d, 0, "JSON-RPC error -32602: invalid params: no text", ""},
		{"answer too large", huge, d, 0, "more than 4 MiB", ""},
		{"rejected task", rejecting, d, 0, "rejected the message (task ", delivery.KindTask},
		{"rejected task says why", rejecting, d, 0, ": I only take text", delivery.KindTask},
		{"failed task", failing, d, 0, "failed to process the message", delivery.KindTask},
		{"private address refused by the guard", closed, delivery.New(outbound.NewClient(outbound.Options{}), newSigner(t), "gw"), 0, "not a public https address", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.timeout > 0 {
				ctx = ctxTimeout(t, tt.timeout)
			}
			o, err := tt.deliver.Deliver(ctx, tt.endpoint, message("did:web:example.com:target", `{"q": 1}`))
			if federation.ErrorCode(err) != federation.EUNAVAILABLE {
				t.Fatalf("err = %v (%s), want EUNAVAILABLE", err, federation.ErrorCode(err))
			}
			msg := federation.ErrorMessage(err)
			t.Log(msg)
			if !strings.Contains(msg, tt.want) || !strings.Contains(msg, "did:web:example.com:target") {
				t.Errorf("message %q, want it to name the target and say %q", msg, tt.want)
			}
			for _, leak := range []string{"127.0.0.1", "dial tcp", "failed to send", "failed to decode", "unexpected"} {
				if strings.Contains(msg, leak) {
					t.Errorf("message %q shows %q", msg, leak)
				}
			}
			if o.Kind != tt.outcome {
				t.Errorf("outcome kind %q, want %q (%s)", o.Kind, tt.outcome, o.Summary)
			}
		})
	}
}

func TestDeliverRefusesBadInput(t *testing.T) {
	d, _ := newDeliverer(t)
	tests := map[string]struct {
		endpoint string
		m        delivery.Message
	}{
		"no ID":        {"http://127.0.0.1:1", delivery.Message{To: "did:x"}},
		"no target":    {"http://127.0.0.1:1", delivery.Message{ID: "m"}},
		"no endpoint":  {"", delivery.Message{ID: "m", To: "did:x"}},
		"not JSON":     {"http://127.0.0.1:1", delivery.Message{ID: "m", To: "did:x", Payload: json.RawMessage(`{"a":`)}},
		"huge number":  {"http://127.0.0.1:1", delivery.Message{ID: "m", To: "did:x", Payload: json.RawMessage(`{"a":1e999}`)}},
		"dup JSON key": {"http://127.0.0.1:1", delivery.Message{ID: "m", To: "did:x", Payload: json.RawMessage(`{"a":1,"a":2}`)}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := d.Deliver(context.Background(), tt.endpoint, tt.m); federation.ErrorCode(err) != federation.EINVALID {
				t.Errorf("err = %v, want EINVALID", err)
			}
		})
	}
}
