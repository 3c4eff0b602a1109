package bridge_test

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/federation-gateway/gateway/shared/bridge"
	"github.com/federation-gateway/gateway/shared/federation"
)

func TestParseAmount(t *testing.T) {
	tests := []struct {
		in, want string
		mention  string // in the error, "" when valid
	}{
		{"25", "25", ""},
		{"25.0", "25", ""},
		{"0.00000001", "0.00000001", ""},
		{"10000.12345678", "10000.12345678", ""},
		{"", "", "required"},
		{"0", "", "greater than 0"},
		{"0.000000000", "", "more than 8 decimal places"},
		{"1.123456789", "", "more than 8 decimal places"},
		{"-1", "", "plain decimal"},
		{"+1", "", "plain decimal"},
		{"1e3", "", "plain decimal"},
		{" 1", "", "plain decimal"},
		{"1.", "", "plain decimal"},
		{".5", "", "plain decimal"},
		{"1,5", "", "plain decimal"},
		{"NaN", "", "plain decimal"},
		{strings.Repeat("9", 21), "", "too large"},
		{"000000000000000000000001", "1", ""},
	}
	for _, tt := range tests {
		d, err := bridge.ParseAmount("amount", tt.in)
		switch {
		case tt.mention == "" && (err != nil || d.String() != tt.want):
			t.Errorf("ParseAmount(%q) = %s, %v; want %s", tt.in, d, err, tt.want)
		case tt.mention != "" && (err == nil || federation.ErrorCode(err) != federation.EINVALID || !strings.Contains(err.Error(), tt.mention)):
			t.Errorf("ParseAmount(%q) error = %v; want EINVALID mentioning %q", tt.in, err, tt.mention)
		}
	}
}

// The fee is rounded up to 8 decimal places, and minted + fee = deposited exactly, for
// any amount the API accepts and any rate an operator may set.
func TestFeeSplitsExactly(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	rates := []string{"0.001", "0", "0.0025", "0.1", "0.33333333", "0.00000001", "0.99999999"}
	for i := 0; i < 20000; i++ {
		// Amounts from 0.00000001 to 10^12 with 0 to 8 decimals.
		units := rng.Int64N(1_000_000_000_000_000) + 1
		amount := decimal.New(units, -int32(rng.IntN(9)))
		rate := decimal.RequireFromString(rates[rng.IntN(len(rates))])
		fee, minted := bridge.Split(amount, rate)
		if !minted.Add(fee).Equal(amount) {
			t.Fatalf("%s at %s: minted %s + fee %s != %s", amount, rate, minted, fee, amount)
		}
		if fee.Exponent() < -bridge.Scale || minted.Exponent() < -bridge.Scale {
			t.Fatalf("%s at %s: fee %s or minted %s has more than %d decimals", amount, rate, fee, minted, bridge.Scale)
		}
		exact := amount.Mul(rate)
		if fee.LessThan(exact) || fee.Sub(exact).GreaterThanOrEqual(decimal.New(1, -bridge.Scale)) {
			t.Fatalf("%s at %s: fee %s is not %s rounded up to %d decimals", amount, rate, fee, exact, bridge.Scale)
		}
		if minted.IsNegative() {
			t.Fatalf("%s at %s: minted %s", amount, rate, minted)
		}
	}
	fee, minted := bridge.Split(decimal.RequireFromString("25.0"), bridge.DefaultFeeRate)
	if fee.String() != "0.025" || minted.String() != "24.975" {
		t.Errorf("25.0 at 0.1 %%: fee %s, minted %s; want 0.025 and 24.975", fee, minted)
	}
	// Rounding up: 0.00000001 × 0.001 is a fee of one unit of the last place.
	if fee := bridge.Fee(decimal.RequireFromString("0.00000001"), bridge.DefaultFeeRate); fee.String() != "0.00000001" {
		t.Errorf("fee of the smallest amount = %s", fee)
	}
}

func TestLaneBucket(t *testing.T) {
	limits := bridge.Limits{FeeRate: bridge.DefaultFeeRate, Min: decimal.NewFromInt(1), Max: decimal.NewFromInt(100),
		Capacity: decimal.NewFromInt(100), Refill: decimal.NewFromInt(10)}
	if msg := limits.Check(); msg != "" {
		t.Fatal(msg)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	lane := bridge.Lane{ID: bridge.LaneID{From: "a", To: "b"}, Limits: limits}
	if got := lane.Level(t0); !got.Equal(decimal.NewFromInt(100)) {
		t.Fatalf("a new lane's bucket = %s, want full", got)
	}
	take := func(at time.Time, amount string) (bool, time.Duration) {
		return lane.Take(at, decimal.RequireFromString(amount))
	}
	if ok, _ := take(t0, "60"); !ok {
		t.Fatal("60 of 100")
	}
	if ok, wait := take(t0, "50"); ok || wait != time.Second {
		t.Fatalf("50 of 40: ok=%v wait=%s, want a refusal and 1s (10 a second)", ok, wait)
	}
	if ok, wait := take(t0.Add(500*time.Millisecond), "95"); ok || wait != 5*time.Second {
		t.Fatalf("95 of 45: ok=%v wait=%s, want 5s", ok, wait)
	}
	if ok, _ := take(t0.Add(time.Second), "50"); !ok {
		t.Fatal("50 of 50 after a second")
	}
	if got := lane.Level(t0.Add(time.Hour)); !got.Equal(decimal.NewFromInt(100)) {
		t.Errorf("the bucket refills to its capacity, not beyond: %s", got)
	}
	if got := lane.Level(t0.Add(1500 * time.Millisecond)); got.String() != "5" {
		t.Errorf("refill after half a second = %s, want 5", got)
	}
}

func TestLimitsCheck(t *testing.T) {
	base := bridge.Limits{FeeRate: bridge.DefaultFeeRate, Min: bridge.DefaultMin, Max: bridge.DefaultMax, Capacity: bridge.DefaultCapacity, Refill: bridge.DefaultRefill}
	d := decimal.RequireFromString
	tests := []struct {
		change  func(*bridge.Limits)
		mention string
	}{
		{func(*bridge.Limits) {}, ""},
		{func(l *bridge.Limits) { l.FeeRate = d("1") }, "fee_rate"},
		{func(l *bridge.Limits) { l.FeeRate = d("-0.1") }, "fee_rate"},
		{func(l *bridge.Limits) { l.Min = d("0") }, "min"},
		{func(l *bridge.Limits) { l.Max = d("0.5") }, "max"},
		{func(l *bridge.Limits) { l.Capacity = d("10") }, "capacity"},
		{func(l *bridge.Limits) { l.Refill = d("0") }, "refill"},
		{func(l *bridge.Limits) { l.Min = d("1.000000001") }, "decimal places"},
	}
	for _, tt := range tests {
		l := base
		tt.change(&l)
		if got := l.Check(); (tt.mention == "") != (got == "") || !strings.Contains(got, tt.mention) {
			t.Errorf("Check() = %q, want mention of %q", got, tt.mention)
		}
	}
}

func TestLaneIDAndTransferID(t *testing.T) {
	id, err := bridge.ParseLaneID("alpha->beta")
	if err != nil || id.From != "alpha" || id.To != "beta" || id.String() != "alpha->beta" {
		t.Fatalf("ParseLaneID = %+v, %v", id, err)
	}
	for _, bad := range []string{"alpha", "alpha->alpha", "->beta", "a->b->c"} {
		if _, err := bridge.ParseLaneID(bad); err == nil {
			t.Errorf("ParseLaneID(%q) accepted", bad)
		}
	}
	a := bridge.TransferID(bridge.Deposit{Registry: "alpha", TransactionID: "tx-1"})
	if a != bridge.TransferID(bridge.Deposit{Registry: "alpha", TransactionID: "tx-1"}) || a == bridge.TransferID(bridge.Deposit{Registry: "beta", TransactionID: "tx-1"}) ||
		!strings.HasPrefix(a, "br-") || len(a) != 35 {
		t.Errorf("TransferID = %q: want one ID per deposit", a)
	}
}
