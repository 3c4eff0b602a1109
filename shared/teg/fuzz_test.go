package teg_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/federation-gateway/gateway/shared/bridge"
	"github.com/federation-gateway/gateway/shared/teg"
)

// FuzzAnswers: whatever a token service answers, the client returns a result or a
// TokenError, never panics; a transfer's garbage answer is "unknown", never "refused".
func FuzzAnswers(f *testing.F) {
	for _, seed := range []string{
		`{"transaction_id":"tx_1","status":"completed","sender_agent_id":"a","receiver_agent_id":"b","amount":"1.5","fee_amount":"0","timestamp":"2026-01-01T00:00:00Z"}`,
		`{"transactions":[{"transaction_id":"t","amount":"1"}],"total":1,"limit":100,"offset":0}`,
		`{"agent_id":"a","balance":"1000.500000000000000000"}`,
		`{"amount":"NaN"}`, `{"amount":1}`, `[]`, `null`, ``, `{"transactions":null,"total":-1}`, `{"balance":"1e99999999"}`,
	} {
		f.Add([]byte(seed), 200)
		f.Add([]byte(seed), 503)
	}
	var body atomic.Value
	var status atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(int(status.Load()))
		_, _ = w.Write(body.Load().([]byte))
	}))
	f.Cleanup(srv.Close)
	c := teg.New(srv.URL, "t", srv.Client(), time.Second)
	f.Fuzz(func(t *testing.T, raw []byte, code int) {
		if code < 200 || code > 599 {
			code = 200
		}
		body.Store(raw)
		status.Store(int64(code))
		ctx := context.Background()
		var te *bridge.TokenError
		if _, err := c.Transfer(ctx, bridge.TokenTransfer{Receiver: "b", Amount: decimal.NewFromInt(1), IdempotencyKey: "k"}); err != nil {
			if !errors.As(err, &te) {
				t.Fatalf("transfer: %T %v", err, err)
			}
			if code/100 == 2 && te.Kind != bridge.TokenUnknown {
				t.Fatalf("a 2xx answer the client cannot read is %s, want unknown", te.Kind)
			}
		}
		if _, err := c.Transactions(ctx, time.Time{}, 10, 0); err != nil && !errors.As(err, &te) {
			t.Fatalf("transactions: %T %v", err, err)
		}
		if _, err := c.Balance(ctx); err != nil && !errors.As(err, &te) {
			t.Fatalf("balance: %T %v", err, err)
		}
	})
}
