package directory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/federation-gateway/gateway/shared/federation"
)

// SyncOptions tune the sync. Zero values take the defaults.
type SyncOptions struct {
	// StaleAfter is how many consecutive failed runs make a registry's agents stale
	// (default 3).
	StaleAfter int
	// GoneTTL is how long a gone agent is kept, so a reappearance is recognised (default
	// 7 days).
	GoneTTL time.Duration
	// FullRefreshEvery is how often every card is fetched again, cache or not, to catch
	// changes a listing does not show (default 1 hour).
	FullRefreshEvery time.Duration
	// Margin is the part of the run's time budget kept back to record what was done
	// (default 3 s).
	Margin time.Duration
	// LeaseTTL bounds how long a crashed run keeps others out (default 15 minutes).
	LeaseTTL time.Duration
}

func (o SyncOptions) withDefaults() SyncOptions {
	if o.StaleAfter <= 0 {
		o.StaleAfter = 3
	}
	if o.GoneTTL <= 0 {
		o.GoneTTL = 7 * 24 * time.Hour
	}
	if o.FullRefreshEvery <= 0 {
		o.FullRefreshEvery = time.Hour
	}
	if o.Margin <= 0 {
		o.Margin = 3 * time.Second
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 15 * time.Minute
	}
	return o
}

// Syncer brings the directory up to date with the registries. It keeps per-run counts, so
// one Syncer runs one Run at a time (a Lambda process serves one invocation at a time).
type Syncer struct {
	store      SyncStore
	registries []federation.Registry
	clients    map[string]Source
	opts       SyncOptions
	log        *slog.Logger
	now        func() time.Time
	goneOwned  int             // owned records set gone in the current registry's sync
	active     map[string]bool // by source ID: owned active records of the current registry
}

// NewSyncer returns a Syncer of the registries through their sources (by registry ID).
func NewSyncer(store SyncStore, registries []federation.Registry, clients map[string]Source, opts SyncOptions, log *slog.Logger) *Syncer {
	return &Syncer{store: store, registries: registries, clients: clients, opts: opts.withDefaults(), log: log, now: time.Now}
}

// SyncReport says what one run did.
type SyncReport struct {
	Skipped    string           `json:"skipped,omitempty"` // why the run did nothing
	Registries []RegistryReport `json:"registries"`
}

// RegistryReport says what a run did for one registry.
type RegistryReport struct {
	ID        string `json:"id"`
	OK        bool   `json:"ok"`
	Error     string `json:"error,omitempty"`
	Listed    int    `json:"listed"`
	Fetched   int    `json:"fetched"`
	Written   int    `json:"written"`
	New       int    `json:"new"`
	Gone      int    `json:"gone"`
	Staled    int    `json:"staled"`
	Conflicts int    `json:"conflicts"`
	Invalid   int    `json:"invalid"`
	Deferred  int    `json:"deferred"`
	Requests  int    `json:"requests"`
	Pages     int    `json:"pages"`
	Duration  string `json:"duration"`
	NotRun    bool   `json:"not_run,omitempty"` // the time budget ran out before it
}

// Run syncs every registry once, within ctx's deadline. Only one run writes at a time: a
// run that finds the lease held does nothing. A registry that fails is marked unhealthy
// and, after StaleAfter failures in a row, its agents stale; the others go on.
func (s *Syncer) Run(ctx context.Context, holder string) (SyncReport, error) {
	var rep SyncReport
	err := s.store.Lease(ctx, "sync", holder, s.opts.LeaseTTL)
	if federation.ErrorCode(err) == federation.ECONFLICT {
		rep.Skipped = "another sync run holds the lease"
		return rep, nil
	}
	if err != nil {
		return rep, fmt.Errorf("sync: %w", err)
	}
	defer func() {
		if err := s.store.ReleaseLease(context.WithoutCancel(ctx), "sync", holder); err != nil {
			s.log.ErrorContext(ctx, "release the sync lease", "error", err.Error())
		}
	}()

	budget := ctx
	if d, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		budget, cancel = context.WithDeadline(ctx, d.Add(-s.opts.Margin))
		defer cancel()
	}
	facets := map[string]int{}
	for _, reg := range s.registries {
		rr := RegistryReport{ID: reg.ID}
		if budget.Err() != nil {
			rr.NotRun = true
			rep.Registries = append(rep.Registries, rr)
			continue
		}
		start := s.now()
		err := s.syncRegistry(budget, ctx, reg, &rr, facets)
		rr.Duration = s.now().Sub(start).Round(time.Millisecond).String()
		rr.OK = err == nil
		if err != nil {
			rr.Error = federation.ErrorMessage(err)
			if federation.ErrorCode(err) == federation.EINTERNAL {
				rr.Error = err.Error()
			}
			s.log.WarnContext(ctx, "registry sync failed", "registry", reg.ID, "error", err.Error())
		} else {
			s.log.InfoContext(ctx, "registry synced", "registry", reg.ID, "listed", rr.Listed, "fetched", rr.Fetched,
				"written", rr.Written, "gone", rr.Gone, "conflicts", rr.Conflicts, "requests", rr.Requests, "duration", rr.Duration)
		}
		rep.Registries = append(rep.Registries, rr)
	}
	if err := s.store.AddFacetCounts(context.WithoutCancel(ctx), facets); err != nil {
		return rep, fmt.Errorf("sync: %w", err)
	}
	return rep, nil
}

// syncRegistry syncs one registry. Fetching stops at budget's deadline; recording what was
// done uses ctx, which leaves the margin for it.
func (s *Syncer) syncRegistry(budget, ctx context.Context, reg federation.Registry, rr *RegistryReport, facets map[string]int) error {
	s.goneOwned = 0
	client, ok := s.clients[reg.ID]
	if !ok {
		return fmt.Errorf("no client for registry %s", reg.ID)
	}
	state, err := s.store.SyncState(ctx, reg.ID)
	if err != nil {
		return err
	}
	view, err := s.store.View(ctx, reg.ID)
	if err != nil {
		return err
	}
	records := view.Records
	known := make(map[string]string, len(records))
	s.active = map[string]bool{} // the registry's owned, active records, kept current through the run
	for id, r := range records {
		if r.Status != federation.StatusGone {
			known[id] = view.Versions[id]
		}
		if r.Owner && r.Status == federation.StatusActive {
			s.active[id] = true
		}
	}
	now := s.now()
	full := now.Sub(state.LastFullRefresh) >= s.opts.FullRefreshEvery
	start := now
	listing, fetchErr := client.Fetch(budget, Request{Cursor: state.Cursor, Known: known, FullRefresh: full})
	rr.Requests, rr.Pages = listing.Requests, listing.Pages
	state.Duration, state.Pages, state.Requests = s.now().Sub(start), listing.Pages, listing.Requests

	if fetchErr != nil {
		state.Healthy = false
		state.LastError = federation.ErrorMessage(fetchErr)
		state.ConsecutiveFailures++
		if state.ConsecutiveFailures >= s.opts.StaleAfter {
			for _, r := range records {
				if r.Owner && r.Status == federation.StatusActive {
					if err := s.setStatus(ctx, r, federation.StatusStale, facets); err != nil {
						return errors.Join(fetchErr, err)
					}
					rr.Staled++
				}
			}
		}
		if err := s.store.SaveSyncState(ctx, state); err != nil {
			return errors.Join(fetchErr, err)
		}
		return fetchErr
	}

	// Cards fetched this run: new, changed or refreshed.
	seen := map[string]bool{}
	for _, c := range listing.Cards {
		seen[c.SourceID] = true
		rr.Fetched++
		prev, had := records[c.SourceID]
		if !c.Active {
			if had && prev.Status != federation.StatusGone {
				if err := s.setStatus(ctx, prev, federation.StatusGone, facets); err != nil {
					return err
				}
				rr.Gone++
			}
			continue
		}
		a, err := Normalize(reg.ID, c, now)
		if err != nil {
			rr.Invalid++
			s.log.InfoContext(ctx, "card skipped", "registry", reg.ID, "reason", err.Error())
			continue
		}
		if had && prev.DID == a.DID && prev.ContentHash == a.ContentHash && prev.Status == federation.StatusActive &&
			view.Versions[c.SourceID] == c.Version {
			continue // unchanged: nothing to write
		}
		if had && prev.DID != a.DID && prev.Status != federation.StatusGone {
			// The card now names another DID: the old one is gone from this registry.
			if err := s.setStatus(ctx, prev, federation.StatusGone, facets); err != nil {
				return err
			}
			rr.Gone++
			had = false
		}
		var p *Record
		if had {
			p = &prev
		}
		w, err := s.store.PutAgent(ctx, a, c.Version, p)
		if err != nil {
			return err
		}
		rr.Written++
		s.active[c.SourceID] = w.Owner == reg.ID
		if w.Owner != reg.ID {
			rr.Conflicts++
			s.log.InfoContext(ctx, "DID listed by two registries", "did", a.DID, "owner", w.Owner, "also", reg.ID)
			continue
		}
		if w.New {
			rr.New++
		}
		s.count(facets, p, Facets(a))
	}

	// Cards listed but not fetched (the cache says unchanged): a stale or gone one that is
	// listed again is active again.
	for _, id := range listing.Listed {
		if seen[id] {
			continue
		}
		if r, ok := records[id]; ok && r.Status != federation.StatusActive && r.Status != "" {
			if err := s.setStatus(ctx, r, federation.StatusActive, facets); err != nil {
				return err
			}
			rr.Written++
		}
	}

	if listing.Complete {
		listed := make(map[string]bool, len(listing.Listed))
		for _, id := range listing.Listed {
			listed[id] = true
		}
		for id, r := range records {
			if !listed[id] && r.Status != federation.StatusGone {
				if err := s.setStatus(ctx, r, federation.StatusGone, facets); err != nil {
					return err
				}
				rr.Gone++
			}
		}
		if full {
			state.LastFullRefresh = now
		}
	}
	rr.Listed, rr.Deferred = len(listing.Listed), listing.Deferred

	owned := 0
	for _, on := range s.active {
		if on {
			owned++
		}
	}
	state.Healthy, state.LastError, state.ConsecutiveFailures = true, "", 0
	state.LastSync, state.AgentCount, state.Cursor = now, owned, listing.Cursor
	if err := s.store.SaveSyncState(ctx, state); err != nil {
		return err
	}
	if delta := rr.New - s.goneOwned; delta != 0 {
		return s.store.AddAgents(ctx, delta)
	}
	return nil
}

// setStatus changes a record's status and keeps the facet counts.
func (s *Syncer) setStatus(ctx context.Context, r Record, status string, facets map[string]int) error {
	if err := s.store.SetStatus(ctx, r, status, s.now(), s.opts.GoneTTL); err != nil {
		return err
	}
	if r.Owner && status == federation.StatusGone {
		s.goneOwned++
	}
	if s.active != nil {
		s.active[r.SourceID] = r.Owner && status == federation.StatusActive
	}
	if r.Owner {
		for _, f := range r.Facets {
			facets[f]--
			facets[WithStatus(f, status)]++
		}
	}
	return nil
}

// count moves the facet counts from a record's old facets to its new ones.
func (s *Syncer) count(facets map[string]int, prev *Record, now []string) {
	if prev != nil && prev.Owner {
		for _, f := range prev.Facets {
			facets[f]--
		}
	}
	for _, f := range now {
		facets[f]++
	}
}

// WithStatus replaces the status part of a facet key.
func WithStatus(facet, status string) string {
	for i := len(facet) - 1; i >= 0; i-- {
		if facet[i] == '#' {
			return facet[:i+1] + status
		}
	}
	return facet
}
