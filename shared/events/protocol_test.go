package events_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/federation-gateway/gateway/shared/events"
	"github.com/federation-gateway/gateway/shared/federation"
)

func TestDecodeRequest(t *testing.T) {
	p42 := events.Position(42)
	tests := []struct {
		name, body string
		want       events.Request
		code       string // the error's, "" for none
		mention    string
	}{
		{"ping", `{"action":"ping","id":"p1"}`, events.Request{Action: "ping", ID: "p1"}, "", ""},
		{"unsubscribe", `{"action":"unsubscribe"}`, events.Request{Action: "unsubscribe"}, "", ""},
		{"subscribe to everything", `{"action":"subscribe"}`, events.Request{Action: "subscribe"}, "", ""},
		{"subscribe with every filter", `{"action":"subscribe","types":["agent.*","message.delivered","bridge.completed"],"registry":"beta",
			"agent":"did:key:z6Mk","transfer":"br-1","after":"0000000000000042","id":"s"}`,
			events.Request{Action: "subscribe", ID: "s", After: &p42, Filter: events.Filter{Types: []string{"agent.*", "message.delivered", "bridge.completed"},
				Registry: "beta", Agent: "did:key:z6Mk", Transfer: "br-1"}}, "", ""},
		{"short position", `{"action":"subscribe","after":"42"}`, events.Request{Action: "subscribe", After: &p42}, "", ""},
		{"nulls are absent", `{"action":"subscribe","types":null,"after":null}`, events.Request{Action: "subscribe"}, "", ""},

		{"not JSON", `subscribe please`, events.Request{}, federation.EINVALID, "JSON object"},
		{"JSON but not an object", `["subscribe"]`, events.Request{}, federation.EINVALID, "JSON object"},
		{"two objects", `{"action":"ping"}{"action":"ping"}`, events.Request{}, federation.EINVALID, "one JSON object"},
		{"no action", `{"types":["agent.added"]}`, events.Request{}, federation.EINVALID, "no action"},
		{"action not a string", `{"action":7}`, events.Request{}, federation.EINVALID, "action is a string"},
		{"unknown action", `{"action":"publish"}`, events.Request{}, federation.EINVALID, `unknown action "publish"`},
		{"unknown filter", `{"action":"subscribe","regsitry":"beta"}`, events.Request{}, federation.EINVALID, `unknown filter "regsitry"`},
		{"field of another action", `{"action":"ping","types":[]}`, events.Request{}, federation.EINVALID, `ping takes no "types"`},
		{"unknown type", `{"action":"subscribe","types":["agent.born"]}`, events.Request{}, federation.EINVALID, `unknown event type "agent.born"`},
		{"unknown family", `{"action":"subscribe","types":["payments.*"]}`, events.Request{}, federation.EINVALID, `unknown event type "payments.*"`},
		{"types not a list", `{"action":"subscribe","types":"agent.added"}`, events.Request{}, federation.EINVALID, "types is a list"},
		{"bad position", `{"action":"subscribe","after":"yesterday"}`, events.Request{}, federation.EINVALID, "not a position"},
		{"negative position", `{"action":"subscribe","after":"-1"}`, events.Request{}, federation.EINVALID, "not a position"},
		{"long filter", `{"action":"subscribe","agent":"` + strings.Repeat("x", 600) + `"}`, events.Request{}, federation.EINVALID, "longer than"},
		{"oversized", `{"action":"ping","id":"` + strings.Repeat("x", events.MaxRequest) + `"}`, events.Request{}, federation.ETOOLARGE, "the most a frame may have"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := events.DecodeRequest([]byte(tt.body))
			if code := federation.ErrorCode(err); code != tt.code {
				t.Fatalf("error %v (code %q), want code %q", err, code, tt.code)
			}
			if err != nil {
				if msg := federation.ErrorMessage(err); !strings.Contains(msg, tt.mention) || strings.Contains(msg, "json:") {
					t.Errorf("message %q does not say %q in the protocol's words", msg, tt.mention)
				}
				return
			}
			if got.Action != tt.want.Action || got.ID != tt.want.ID || !slices.Equal(got.Filter.Types, tt.want.Filter.Types) ||
				got.Filter.Registry != tt.want.Filter.Registry || got.Filter.Agent != tt.want.Filter.Agent ||
				got.Filter.Transfer != tt.want.Filter.Transfer || (got.After == nil) != (tt.want.After == nil) ||
				(got.After != nil && *got.After != *tt.want.After) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// Every frame the gateway sends is one API Gateway frame: an event too large for one
// goes without its data.
func TestEventFrameSize(t *testing.T) {
	e := events.Event{ID: "x", Type: events.AgentChanged, Subject: "did:web:x", Position: 9,
		Data: json.RawMessage(`{"description":"` + strings.Repeat("é", events.MaxFrame) + `"}`)}
	b := events.EventFrame("sub-1", e)
	if len(b) > events.MaxFrame {
		t.Fatalf("frame of %d bytes", len(b))
	}
	var f events.Frame
	if err := json.Unmarshal(b, &f); err != nil || f.Event == nil || string(f.Event.Data) != `{"truncated":true}` ||
		f.Event.Position != 9 || f.Subscription != "sub-1" {
		t.Errorf("truncated frame %s: %v", b, err)
	}
	small := events.EventFrame("sub-1", events.Event{ID: "y", Data: json.RawMessage(`{"a":1}`), Position: 10})
	if !strings.Contains(string(small), `"data":{"a":1}`) || !strings.Contains(string(small), `"position":"0000000000000010"`) {
		t.Errorf("small frame %s", small)
	}
	// What an event's data says reaches the subscriber as it is, not HTML-escaped.
	lane := events.Derive(events.Change{EventID: "z", Time: time.Now(), Lane: &events.LaneChange{New: &events.Lane{ID: "alpha->beta", From: "alpha", To: "beta", Paused: true}}})
	if len(lane) != 1 {
		t.Fatalf("a paused lane made %d events", len(lane))
	}
	if b := events.EventFrame("sub-1", lane[0]); !strings.Contains(string(b), `"subject":"alpha->beta"`) || !strings.Contains(string(b), `"lane":"alpha->beta"`) {
		t.Errorf("lane frame %s", b)
	}
}

func TestErrorFrameHidesInternals(t *testing.T) {
	b := events.ErrorFrame("r1", "subscribe", federation.Wrap(federation.EINTERNAL, errSecret{}, "table directory-prod failed"))
	if strings.Contains(string(b), "secret") || strings.Contains(string(b), "directory-prod") || !strings.Contains(string(b), `"code":"internal"`) {
		t.Errorf("error frame %s", b)
	}
}

type errSecret struct{}

func (errSecret) Error() string { return "secret cause" }

// FuzzDecodeRequest: no frame makes the decoder panic, every error is a protocol error
// (never a Go type name), and what decodes is a valid request.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		`{"action":"subscribe","types":["agent.*"],"registry":"beta","after":"0000000000000001","id":"x"}`,
		`{"action":"ping"}`, `{"action":"unsubscribe"}`, `{"action":"subscribe","types":null}`,
		`{"action":"subscribe","after":"99999999999999999999999"}`, `{"action":{"nested":true}}`, `[]`, `null`, `"x"`,
		`{"action":"subscribe","types":[1,2]}`, `{"action":"subscribe","agent":7}`, "\x00\xff", `{"action":"ping"} `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := events.DecodeRequest(body)
		if err != nil {
			code := federation.ErrorCode(err)
			if code != federation.EINVALID && code != federation.ETOOLARGE {
				t.Fatalf("error code %q for %q", code, body)
			}
			if msg := federation.ErrorMessage(err); strings.Contains(msg, "json:") || strings.Contains(msg, "Go value") || !utf8.ValidString(msg) {
				t.Fatalf("message %q", msg)
			}
			return
		}
		if !slices.Contains([]string{events.ActionSubscribe, events.ActionUnsubscribe, events.ActionPing}, req.Action) {
			t.Fatalf("action %q decoded", req.Action)
		}
		for _, typ := range req.Filter.Types {
			if !events.KnownType(typ) {
				t.Fatalf("type %q decoded", typ)
			}
		}
	})
}
