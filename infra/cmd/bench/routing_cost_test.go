package main

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Item sizes by the rules of the DynamoDB Developer Guide ("DynamoDB item sizes and
// formats").
func TestItemSize(t *testing.T) {
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	n := func(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }
	tests := []struct {
		name string
		item map[string]types.AttributeValue
		want int
	}{
		{"string: name and UTF-8 bytes", map[string]types.AttributeValue{"PK": s("héllo")}, 2 + 6},
		{"number: a byte per two significant digits, plus one", map[string]types.AttributeValue{"n": n("12345")}, 1 + 3 + 1},
		{"number: zeros around the digits do not count", map[string]types.AttributeValue{"n": n("1200.00")}, 1 + 1 + 1},
		{"number: zero", map[string]types.AttributeValue{"n": n("0")}, 1 + 1 + 1},
		{"Boolean", map[string]types.AttributeValue{"ok": &types.AttributeValueMemberBOOL{Value: true}}, 2 + 1},
		{"list: 3 bytes, and a byte per element", map[string]types.AttributeValue{"l": &types.AttributeValueMemberL{Value: []types.AttributeValue{s("a"), s("bc")}}}, 1 + 3 + (1 + 1) + (1 + 2)},
		{"empty list", map[string]types.AttributeValue{"tags": &types.AttributeValueMemberL{}}, 4 + 3},
		{"map: its keys too", map[string]types.AttributeValue{"m": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"k": s("v")}}}, 1 + 3 + 1 + 1 + 1},
		{"string set", map[string]types.AttributeValue{"ss": &types.AttributeValueMemberSS{Value: []string{"ab", "c"}}}, 2 + 3},
	}
	for _, tt := range tests {
		if got := itemSize(tt.item); got != tt.want {
			t.Errorf("%s: itemSize = %d, want %d", tt.name, got, tt.want)
		}
	}
}

// A write costs a unit per KB or part of it, a read a unit per 4 KB strongly consistent
// and half that eventually consistent; a transaction doubles either.
func TestUnits(t *testing.T) {
	tests := []struct {
		use      itemUse
		wru, rru float64
	}{
		{itemUse{Kind: "put", Size: 100}, 1, 0},
		{itemUse{Kind: "put", Size: 1024}, 1, 0},
		{itemUse{Kind: "update", Size: 1025}, 2, 0},
		{itemUse{Kind: "put", Tx: true, Size: 300}, 2, 0},
		{itemUse{Kind: "check", Tx: true, Size: 2100}, 6, 0},
		{itemUse{Kind: "read", Size: 4096, Consistent: true}, 0, 1},
		{itemUse{Kind: "read", Size: 5000}, 0, 1},
		{itemUse{Kind: "read", Size: 0}, 0, 0.5},
	}
	for _, tt := range tests {
		if wru, rru := tt.use.units(); wru != tt.wru || rru != tt.rru {
			t.Errorf("%+v: %v WRU, %v RRU; want %v and %v", tt.use, wru, rru, tt.wru, tt.rru)
		}
	}
}
