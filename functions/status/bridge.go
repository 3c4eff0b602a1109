package main

import (
	"context"
	"fmt"

	"github.com/federation-gateway/gateway/shared/federation"
)

// Lanes reports the bridge's lanes and books; *bridge.Bridge is one.
type Lanes interface {
	Lanes(ctx context.Context) ([]federation.LaneStatus, error)
	Books(ctx context.Context) ([]federation.BookStatus, error)
}

// WithBridge adds the token bridge to a report: each lane (liquidity on both sides,
// paused, bucket level, transfers in flight) and each registry's books with its last
// reconciliation.
type WithBridge struct {
	Reporter Reporter
	Bridge   Lanes
}

// Status implements Reporter.
func (w WithBridge) Status(ctx context.Context) (federation.Status, error) {
	s, err := w.Reporter.Status(ctx)
	if err != nil {
		return s, err
	}
	lanes, err := w.Bridge.Lanes(ctx)
	if err != nil {
		return s, fmt.Errorf("status: %w", err)
	}
	books, err := w.Bridge.Books(ctx)
	if err != nil {
		return s, fmt.Errorf("status: %w", err)
	}
	s.Bridge = &federation.BridgeStatus{Lanes: lanes, Books: books}
	for _, l := range lanes {
		s.Pools = append(s.Pools, federation.PoolStatus{From: l.From, To: l.To, Liquidity: l.TargetLiquidity})
	}
	return s, nil
}
