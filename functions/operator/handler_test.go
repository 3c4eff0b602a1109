package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/lambda/messages"

	"github.com/federation-gateway/gateway/infra/localtest"
)

func event(t *testing.T, name string) json.RawMessage {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(localtest.RepoRoot(t), "events", name))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestHandler(t *testing.T) {
	fx := localtest.Bridge(t, nil)
	h := Handler(fx.Bridge)
	ctx := context.Background()
	res, err := h(ctx, event(t, "operator.json"))
	if err != nil || !strings.Contains(string(res.Result), `"lane":"alpha->beta"`) {
		t.Fatalf("lanes: %+v %v", res, err)
	}
	res, err = h(ctx, event(t, "operator-pause.json"))
	if err != nil || !res.Applied || !strings.Contains(string(res.Result), `"paused":true`) || !strings.Contains(string(res.Result), `"source_liquidity":"10000"`) {
		t.Fatalf("pause: %s %v", res.Result, err)
	}
	if res, err = h(ctx, event(t, "operator-pause.json")); err != nil || res.Applied {
		t.Errorf("the same request again: %+v %v", res, err)
	}
	log, _ := h(ctx, json.RawMessage(`{"action":"audit_log"}`))
	if !strings.Contains(string(log.Result), `"operator":"alice@ops"`) || !strings.Contains(string(log.Result), `{\"lane\":\"alpha->beta\",\"paused\":true,`) {
		t.Errorf("audit log: %s", log.Result)
	}
	for _, tt := range []struct{ body, typ, mention string }{
		{`{"action":"pause","lane":"alpha->beta"}`, "OperatorInvalid", "request_id"},
		{`{"action":"pause","lane":"alpha->beta","request_id":"x"}`, "OperatorInvalid", "operator"},
		{`{"action":"pause","lane":"alpha->gamma","request_id":"x","operator":"o"}`, "OperatorNotFound", "no bridge lane"},
		{`{"action":"explode"}`, "OperatorInvalid", "want seed"},
		{`{"action":"lanes","colour":"red"}`, "OperatorInvalid", `unknown field "colour"`},
		{`[]`, "OperatorInvalid", "JSON object"},
		{`{"action":"resolve","transfer_id":"br-none","resolution":"retry","request_id":"y","operator":"o"}`, "OperatorNotFound", "no transfer"},
		{`{"action":"set_limits","lane":"alpha->beta","request_id":"z","operator":"o","limits":{"min":"5","max":"2"}}`, "OperatorInvalid", "max must be at least min"},
	} {
		_, err := h(ctx, json.RawMessage(tt.body))
		var ie messages.InvokeResponse_Error
		if !errors.As(err, &ie) || ie.Type != tt.typ || !strings.Contains(ie.Message, tt.mention) {
			t.Errorf("%s: %#v; want %s mentioning %q", tt.body, err, tt.typ, tt.mention)
		}
	}
	lanes, _ := fx.Bridge.Lanes(ctx)
	if !lanes[0].Paused || lanes[1].Paused {
		t.Errorf("lanes after the pause: %+v", lanes)
	}
}

// FuzzDecodeRequest: any payload decodes to a request or an EINVALID error, never a panic.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{`{"action":"lanes"}`, `{"action":"seed","registry":"alpha","amount":"10","request_id":"r","operator":"o"}`,
		`{"limits":{"min":1}}`, `{"action":"x"}{}`, `null`, ``, `{"limit":"ten"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		req, err := DecodeRequest(raw)
		if err == nil && req.Limits != nil {
			_ = req.Limits.FeeRate
		}
		if err != nil && strings.Contains(err.Error(), "bridge.") {
			t.Errorf("Go type names in %v", err)
		}
	})
}
