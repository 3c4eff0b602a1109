package teg_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/federation-gateway/gateway/infra/demo"
	"github.com/federation-gateway/gateway/shared/bridge"
	"github.com/federation-gateway/gateway/shared/teg"
)

// The client against the demo token service (the one fake of the TEG contract), with
// each of its faults: every failure is classified by what it means for money.
func TestClientClassifiesFaults(t *testing.T) {
	svc := demo.NewTEG("alpha")
	gw := svc.Open("did:gw", decimal.RequireFromString("100"))
	svc.Open("did:alice", decimal.Zero)
	srv := httptest.NewServer(svc.Handler())
	defer srv.Close()
	client := teg.New(srv.URL, gw, srv.Client(), 300*time.Millisecond)
	ctx := context.Background()
	send := func(key, amount string) (bridge.TokenTx, error) {
		return client.Transfer(ctx, bridge.TokenTransfer{Receiver: "did:alice", Amount: decimal.RequireFromString(amount), Message: "m " + key, IdempotencyKey: key})
	}
	kind := func(err error) string {
		var te *bridge.TokenError
		if errors.As(err, &te) {
			return te.Kind
		}
		return "none"
	}

	tx, err := send("k1", "10")
	if err != nil || tx.Status != "completed" || tx.Amount.String() != "10" || tx.Receiver != "did:alice" || tx.Message != "m k1" {
		t.Fatalf("transfer: %+v, %v", tx, err)
	}
	again, err := send("k1", "10")
	if err != nil || again.ID != tx.ID {
		t.Fatalf("a repeat with the same key answers the first transfer: %+v, %v", again, err)
	}
	if _, err := send("k1", "11"); kind(err) != bridge.TokenUnknown {
		t.Errorf("the same key with another body (409): %v", err)
	}

	tests := []struct {
		fault demo.Fault
		want  string
		moved bool // the transfer was applied
	}{
		{demo.Fault{Kind: demo.FaultFail}, bridge.TokenUnknown, false},
		{demo.Fault{Kind: demo.FaultReject}, bridge.TokenRefused, false},
		{demo.Fault{Kind: demo.FaultSlow, Delay: 50 * time.Millisecond}, "none", true},
		{demo.Fault{Kind: demo.FaultSlow, Delay: 600 * time.Millisecond}, bridge.TokenUnknown, true},
		{demo.Fault{Kind: demo.FaultApplyLose}, bridge.TokenUnknown, true},
		{demo.Fault{Kind: demo.FaultApply5xx}, bridge.TokenUnknown, true},
		{demo.Fault{Kind: demo.FaultApplyLater, Delay: 500 * time.Millisecond}, bridge.TokenUnknown, true},
	}
	for i, tt := range tests {
		before := svc.Balance("did:alice")
		svc.Queue("transfer", tt.fault, 1)
		_, err := send("f"+string(rune('a'+i)), "1")
		if got := kind(err); got != tt.want {
			t.Errorf("%s: %v, want %s", tt.fault.Kind, err, tt.want)
		}
		time.Sleep(tt.fault.Delay + 50*time.Millisecond) // let a late one land
		if moved := !svc.Balance("did:alice").Equal(before); moved != tt.moved {
			t.Errorf("%s: applied = %v, want %v", tt.fault.Kind, moved, tt.moved)
		}
	}
	if _, err := send("poor", "1000"); kind(err) != bridge.TokenRefused {
		t.Errorf("insufficient balance: %v", err)
	}
	if _, err := client.Transfer(ctx, bridge.TokenTransfer{Receiver: "did:nobody", Amount: decimal.NewFromInt(1), IdempotencyKey: "x"}); kind(err) != bridge.TokenRefused {
		t.Errorf("unknown receiver: %v", err)
	}

	page, err := client.Transactions(ctx, time.Now().Add(-time.Hour), 2, 0)
	if err != nil || page.Total != 6 || len(page.Transactions) != 2 || page.Transactions[0].At.Before(page.Transactions[1].At) {
		t.Fatalf("transactions: %+v, %v", page, err)
	}
	if page, _ := client.Transactions(ctx, time.Now().Add(time.Hour), 10, 0); page.Total != 0 {
		t.Errorf("start_date in the future: %+v", page)
	}
	bal, err := client.Balance(ctx)
	if err != nil || !bal.Equal(decimal.RequireFromString("85")) {
		t.Errorf("balance = %s, %v", bal, err)
	}
	svc.Queue("transactions", demo.Fault{Kind: demo.FaultFail}, 1)
	if _, err := client.Transactions(ctx, time.Time{}, 10, 0); kind(err) != bridge.TokenUnavailable {
		t.Errorf("a failed read: %v", err)
	}
	bad := teg.New(srv.URL, "wrong", srv.Client(), 0)
	if _, err := bad.Transfer(ctx, bridge.TokenTransfer{Receiver: "did:alice", Amount: decimal.NewFromInt(1)}); kind(err) != bridge.TokenUnavailable {
		t.Errorf("a bad token: %v", err)
	}
	srv.Close()
	if _, err := send("closed", "1"); kind(err) != bridge.TokenUnavailable {
		t.Errorf("no connection: %v", err)
	}
}

// A token service that answers garbage.
func TestClientGarbage(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"transaction_id": "x", "amount": "1e999999999"`))
	}))
	defer srv.Close()
	c := teg.New(srv.URL, "t", srv.Client(), time.Second)
	var te *bridge.TokenError
	if _, err := c.Transfer(context.Background(), bridge.TokenTransfer{Receiver: "r", Amount: decimal.NewFromInt(1)}); !errors.As(err, &te) || te.Kind != bridge.TokenUnknown {
		t.Errorf("garbage after a transfer: %v", err)
	}
	if _, err := c.Balance(context.Background()); !errors.As(err, &te) || te.Kind != bridge.TokenUnavailable {
		t.Errorf("garbage balance: %v", err)
	}
}
