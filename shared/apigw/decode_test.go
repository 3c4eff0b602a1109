package apigw_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/federation-gateway/gateway/shared/apigw"
	"github.com/federation-gateway/gateway/shared/federation"
)

// body is a request shape with what the API's bodies have: strings, a number, a flag,
// nested objects, lists of objects, and free JSON.
type body struct {
	Name    string          `json:"name"`
	Count   int             `json:"count,omitempty"`
	On      bool            `json:"on"`
	Inner   *inner          `json:"inner"`
	Items   []inner         `json:"items"`
	Payload json.RawMessage `json:"payload"`
}

type inner struct {
	Tag  string   `json:"tag"`
	Tags []string `json:"tags"`
}

func TestUnmarshal(t *testing.T) {
	tests := []struct {
		in, says string // says is "" for success
	}{
		{`{"name":"a","count":2,"on":true,"inner":{"tag":"t","tags":["x"]},"items":[{"tag":"u"}],"payload":{"any":[1,"x",null]}}`, ""},
		{`{"name":"a","extra":1}`, `unknown field "extra" in the body; its fields are count, inner, items, name, on, payload`},
		{`{"Name":"a"}`, `unknown field "Name"`},
		{`{"inner":{"tag":"t","other":1}}`, `unknown field "inner.other" in inner`},
		{`{"items":[{"tag":"t"},{"tga":"t"}]}`, `unknown field "items[1].tga"`},
		{`{"payload":{"anything":{"goes":1}}}`, ""},
		{`{"name":7}`, "name: want a string, not a number"},
		{`{"count":"7"}`, "count: want a whole number, not a string"},
		{`{"count":1.5}`, "count: want a whole number, not a number 1.5"},
		{`{"count":1e400}`, "count: want a whole number"},
		{`{"on":"yes"}`, "on: want true or false, not a string"},
		{`{"inner":[]}`, "inner: want an object, not an array"},
		{`{"inner":{"tags":"x"}}`, "inner.tags: want a list, not a string"},
		{`[]`, "must be a JSON object, not a list"},
		{`"x"`, "must be a JSON object, not a string"},
		{`null`, "must be a JSON object, not null"},
		{``, "the body is empty"},
		{`{"name":`, "ends before the object does"},
		{`{"name":"a",}`, "not valid JSON (error at byte"},
		{`{} {}`, "more after its JSON object"},
	}
	for _, tt := range tests {
		var b body
		err := apigw.Unmarshal([]byte(tt.in), &b)
		switch {
		case tt.says == "" && err != nil:
			t.Errorf("%s: %v", tt.in, err)
		case tt.says != "" && (federation.ErrorCode(err) != federation.EINVALID || !strings.Contains(federation.ErrorMessage(err), tt.says)):
			t.Errorf("%s: %v; want EINVALID saying %q", tt.in, err, tt.says)
		}
	}
}

// FuzzUnmarshal: whatever the body, Unmarshal does not panic, refuses with EINVALID in
// the API's words, and takes only what encoding/json would take with no unknown field.
func FuzzUnmarshal(f *testing.F) {
	for _, s := range []string{`{"name":"a","inner":{"tags":["x"]},"items":[{"tag":"t"}],"payload":[1]}`, `{"extra":1}`,
		`{"inner":{"x":{}}}`, `{"count":1e400}`, `[]`, `{`, `{"items":[{"tga":1}]}`, `{"name":"\ud800"}`, `{"payload":}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var b body
		err := apigw.Unmarshal(raw, &b)
		if err == nil {
			dec := json.NewDecoder(strings.NewReader(string(raw)))
			dec.DisallowUnknownFields()
			var again body
			if dec.Decode(&again) != nil {
				t.Fatalf("%q was taken, but encoding/json refuses it", raw)
			}
			return
		}
		msg := federation.ErrorMessage(err)
		if federation.ErrorCode(err) != federation.EINVALID || msg == "" {
			t.Fatalf("%q: %v", raw, err)
		}
		for _, w := range []string{"Go struct field", "Go value", "strconv.", "json:", "cannot unmarshal", "apigw_test", "RawMessage", "[]string", "*apigw"} {
			if strings.Contains(msg, w) {
				t.Fatalf("%q: the message speaks Go (%q): %s", raw, w, msg)
			}
		}
	})
}
