package demo

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Faults are the ways real AgentVault registries depart from the contract, or from the
// demo's gentle reading of it, for the tests of the gateway's registry clients. The zero
// value is a registry that keeps the contract. One fake serves both the demo and those
// tests, so the two cannot come to disagree about the contract.
type Faults struct {
	// MaxLimit is the largest v1 page the registry serves, whatever limit is asked for
	// (0: the API's MaxListLimit).
	MaxLimit int
	// NoPagination leaves the "pagination" object out of v1 pages.
	NoPagination bool
	// NewestFirst orders the v1 listing by updated_at, newest first, as AgentVault's own
	// registry does: a card changed while a client pages moves to the front. The default
	// is creation order, stable under updates.
	NewestFirst bool
	// SinceInclusive makes the v2 listing return updated_at >= since instead of >.
	SinceInclusive bool
	// WrapFederation wraps v2 pages in {"items": [...]} instead of a bare list.
	WrapFederation bool
	// AfterListPage runs after the v1 listing page n (1-based) was computed and before it
	// is sent: a registry whose cards change while a client pages through them. It may
	// call the registry's methods.
	AfterListPage func(r *Registry, page int)
	// Intercept sees every request first and answers it itself when it returns true.
	Intercept func(w http.ResponseWriter, req *http.Request) bool
}

// SetFaults replaces the registry's faults.
func (r *Registry) SetFaults(f Faults) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.faults, r.listPages = f, 0
}

func (r *Registry) currentFaults() Faults {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.faults
}

// Request is a request the registry received, as its request log keeps it.
type Request struct {
	Path   string
	Query  string
	Header http.Header
}

// maxLoggedRequests bounds the request log; the oldest half goes when it is full.
const maxLoggedRequests = 10000

// Requests returns the requests received since the last ResetRequests, oldest first.
func (r *Registry) Requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.requests)
}

// ResetRequests empties the request log.
func (r *Registry) ResetRequests() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = nil
}

// Counts returns how many v1 listing pages and card details were requested since the
// last ResetRequests.
func (r *Registry) Counts() (listPages, details int) {
	for _, req := range r.Requests() {
		switch {
		case req.Path == cardsPath:
			listPages++
		case strings.HasPrefix(req.Path, cardsPath):
			details++
		}
	}
	return listPages, details
}

// Delete removes a card for good, as a registry's administrator can (AgentVault's API
// itself only deactivates). It returns ErrNotFound for an unknown ID.
func (r *Registry) Delete(id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.records[id]; !ok {
		return fmt.Errorf("registry %s: card %s: %w", r.ID, id, ErrNotFound)
	}
	delete(r.records, id)
	return nil
}

// SetUpdatedAt sets a card's updated_at (at the stored precision), so that a test can
// make cards share a timestamp, which the registry itself never does. It returns
// ErrNotFound for an unknown ID.
func (r *Registry) SetUpdatedAt(id string, t time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec, ok := r.records[id]
	if !ok {
		return fmt.Errorf("registry %s: card %s: %w", r.ID, id, ErrNotFound)
	}
	rec.UpdatedAt = t.UTC().Truncate(time.Microsecond)
	if rec.UpdatedAt.After(r.last) {
		r.last = rec.UpdatedAt
	}
	return nil
}

// SetRawCardData makes the registry serve raw as the card's card_data, whatever it is
// (not an object, oversized), and bumps its updated_at. It returns ErrNotFound for an
// unknown ID.
func (r *Registry) SetRawCardData(id string, raw json.RawMessage) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec, ok := r.records[id]
	if !ok {
		return fmt.Errorf("registry %s: card %s: %w", r.ID, id, ErrNotFound)
	}
	rec.RawCardData, rec.UpdatedAt = slices.Clone(raw), r.now()
	return nil
}

// serve logs the request and lets the faults intercept it before the API answers.
func (r *Registry) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	if len(r.requests) >= maxLoggedRequests { // a demo serves for hours: keep the log bounded
		r.requests = slices.Delete(r.requests, 0, maxLoggedRequests/2)
	}
	r.requests = append(r.requests, Request{Path: req.URL.Path, Query: req.URL.RawQuery, Header: req.Header.Clone()})
	intercept := r.faults.Intercept
	r.mu.Unlock()
	if intercept != nil && intercept(w, req) {
		return
	}
	r.api.ServeHTTP(w, req)
}
