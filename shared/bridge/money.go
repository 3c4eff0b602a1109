package bridge

import (
	"strings"

	"github.com/shopspring/decimal"

	"github.com/federation-gateway/gateway/shared/federation"
)

// Scale is the number of decimal places the bridge keeps: an amount a caller sends has at
// most Scale of them (more is a 400, never a silent rounding), and every amount the
// bridge computes (fees, bucket levels) is rounded to it.
const Scale = 8

// maxIntegerDigits bounds the integer part of an amount: far above any token supply, far
// below what would make decimal arithmetic costly.
const maxIntegerDigits = 20

// ParseAmount reads a positive amount written as a plain decimal string: digits, an
// optional point and at most Scale decimals ("25", "25.0", "0.00000001"). Signs,
// exponents, spaces and JSON numbers are refused, so what was signed is what is counted.
// Errors: EINVALID naming the field.
func ParseAmount(field, s string) (decimal.Decimal, error) {
	intPart, frac, hasPoint := strings.Cut(s, ".")
	switch {
	case s == "":
		return decimal.Zero, federation.Errorf(federation.EINVALID, "%s is required: a decimal string such as \"25.0\"", field)
	case !digits(intPart) || (hasPoint && !digits(frac)):
		return decimal.Zero, federation.Errorf(federation.EINVALID, "%s %q is not a plain decimal string such as \"25.0\"", field, clip(s))
	case len(frac) > Scale:
		return decimal.Zero, federation.Errorf(federation.EINVALID, "%s %q has more than %d decimal places", field, clip(s), Scale)
	case len(strings.TrimLeft(intPart, "0")) > maxIntegerDigits:
		return decimal.Zero, federation.Errorf(federation.EINVALID, "%s %q is too large", field, clip(s))
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		return decimal.Zero, federation.Errorf(federation.EINVALID, "%s %q is not a decimal", field, clip(s))
	}
	if !d.IsPositive() {
		return decimal.Zero, federation.Errorf(federation.EINVALID, "%s must be greater than 0", field)
	}
	return d, nil
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// clip shortens what is echoed back to a caller.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// Fee is the bridge's fee on a deposit: amount × rate rounded up to Scale decimals, in
// the gateway's favour, so the gateway never collects less than its rate. What is minted
// is amount − fee, exactly: minted + fee = deposited holds to the last decimal.
func Fee(amount, rate decimal.Decimal) decimal.Decimal {
	return amount.Mul(rate).RoundCeil(Scale)
}

// Split returns the fee and what is minted for a deposit.
func Split(amount, rate decimal.Decimal) (fee, minted decimal.Decimal) {
	fee = Fee(amount, rate)
	return fee, amount.Sub(fee)
}
