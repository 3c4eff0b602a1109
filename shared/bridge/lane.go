package bridge

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/federation-gateway/gateway/shared/federation"
)

// LaneID names a one-way lane between two registries, "alpha->beta".
type LaneID struct{ From, To string }

// String returns "from->to".
func (l LaneID) String() string { return l.From + "->" + l.To }

// ParseLaneID reads "from->to". Errors: EINVALID.
func ParseLaneID(s string) (LaneID, error) {
	from, to, ok := strings.Cut(s, "->")
	if !ok || from == "" || to == "" || from == to || strings.Contains(to, "->") {
		return LaneID{}, federation.Errorf(federation.EINVALID, "lane %q: want \"from->to\" with two different registry IDs", clip(s))
	}
	return LaneID{From: from, To: to}, nil
}

// Limits are what an operator may tune on a lane. Every amount is a decimal.
type Limits struct {
	FeeRate decimal.Decimal // fraction of a deposit kept as the fee (0.001 is 0.1 %)
	Min     decimal.Decimal // smallest deposit bridged
	Max     decimal.Decimal // largest deposit bridged
	// Capacity and Refill are the lane's value rate limit, a token bucket as CCIP lanes
	// have: at most Capacity in a burst, refilled at Refill per second.
	Capacity decimal.Decimal
	Refill   decimal.Decimal
}

// Check reports what is wrong with limits, "" if nothing.
func (l Limits) Check() string {
	switch {
	case l.FeeRate.IsNegative() || l.FeeRate.GreaterThanOrEqual(decimal.NewFromInt(1)):
		return "fee_rate must be at least 0 and below 1"
	case !l.Min.IsPositive():
		return "min must be greater than 0"
	case l.Max.LessThan(l.Min):
		return "max must be at least min"
	case l.Capacity.LessThan(l.Max):
		return "capacity must be at least max, or the largest transfer could never pass"
	case !l.Refill.IsPositive():
		return "refill_per_second must be greater than 0"
	case l.FeeRate.Exponent() < -Scale || l.Min.Exponent() < -Scale || l.Max.Exponent() < -Scale ||
		l.Capacity.Exponent() < -Scale || l.Refill.Exponent() < -Scale:
		return fmt.Sprintf("amounts have at most %d decimal places", Scale)
	}
	return ""
}

// Lane is a configured lane with its current state: its limits (the configuration's,
// unless an operator changed them), its pause switch and its rate-limit bucket.
type Lane struct {
	ID     LaneID
	Limits Limits
	Paused bool
	// Bucket is the value still allowed through now; BucketAt is when it was computed.
	Bucket   decimal.Decimal
	BucketAt time.Time
	// Tuned says an operator changed the limits: the stored ones win over the
	// configuration's from then on.
	Tuned bool
	// Version is the stored item's version, 0 when none was stored yet: every write is
	// conditional on it.
	Version int64
}

// Level returns the bucket's level at now: what it held at BucketAt plus the refill since,
// at most Capacity. A lane never written starts full.
func (l Lane) Level(now time.Time) decimal.Decimal {
	if l.Version == 0 && l.BucketAt.IsZero() {
		return l.Limits.Capacity
	}
	level := l.Bucket
	if elapsed := now.Sub(l.BucketAt); elapsed > 0 {
		secs := decimal.NewFromInt(elapsed.Nanoseconds()).Div(decimal.NewFromInt(int64(time.Second)))
		level = level.Add(secs.Mul(l.Limits.Refill)).RoundFloor(Scale)
	}
	if level.GreaterThan(l.Limits.Capacity) {
		level = l.Limits.Capacity
	}
	return level
}

// Take removes amount from the bucket at now. When the bucket holds less, it returns
// false and how long until it will hold enough.
func (l *Lane) Take(now time.Time, amount decimal.Decimal) (bool, time.Duration) {
	level := l.Level(now)
	if level.LessThan(amount) {
		missing := amount.Sub(level)
		secs := missing.Div(l.Limits.Refill).Ceil().IntPart()
		if secs < 1 {
			secs = 1
		}
		return false, time.Duration(min(secs, math.MaxInt32)) * time.Second
	}
	l.Bucket, l.BucketAt = level.Sub(amount), now
	return true, 0
}
