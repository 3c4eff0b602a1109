package directory

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
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

// Syncer brings the directory up to date with the registries. It holds configuration
// only: each registry's sync keeps its state in a registrySync of its own.
type Syncer struct {
	store      SyncStore
	registries []federation.Registry
	sources    map[string]Source
	opts       SyncOptions
	log        *slog.Logger
	now        func() time.Time
}

// NewSyncer returns a Syncer of the registries through their sources (by registry ID).
func NewSyncer(store SyncStore, registries []federation.Registry, sources map[string]Source, opts SyncOptions, log *slog.Logger) *Syncer {
	return &Syncer{store: store, registries: registries, sources: sources, opts: opts.withDefaults(), log: log, now: time.Now}
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
	Repaired  int    `json:"repaired,omitempty"` // records whose index an earlier run left unfinished
	Requests  int    `json:"requests"`
	Pages     int    `json:"pages"`
	// Skipped and Problems are the registry's warnings: entries it served that are not
	// usable cards, and what went wrong without failing the run (Listing.Problems).
	Skipped  int      `json:"skipped,omitempty"`
	Problems []string `json:"problems,omitempty"`
	// Agents counts the registry's records by status after the run.
	Agents   federation.AgentCounts `json:"agents"`
	Duration string                 `json:"duration"`
	NotRun   bool                   `json:"not_run,omitempty"` // the time budget ran out before it
	// UnhealthySince is when the registry turned unhealthy, while it is: the run that
	// first found it failing. Absent while it is healthy.
	UnhealthySince *time.Time `json:"unhealthy_since,omitempty"`
	// Took is how long its sync took (Duration, as a number).
	Took time.Duration `json:"-"`
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
	run := &runState{recount: map[string]bool{}}
	for _, reg := range s.registries {
		rr := RegistryReport{ID: reg.ID}
		if budget.Err() != nil {
			rr.NotRun = true
			rep.Registries = append(rep.Registries, rr)
			continue
		}
		start := s.now()
		err := s.syncRegistry(budget, ctx, run, reg, &rr)
		rr.Took = s.now().Sub(start)
		rr.Duration = rr.Took.Round(time.Millisecond).String()
		rr.OK = err == nil
		if err != nil {
			rr.Error = federation.ErrorMessage(err)
			if federation.ErrorCode(err) == federation.EINTERNAL {
				rr.Error = err.Error()
			}
			s.log.WarnContext(ctx, "registry sync failed", "registry", reg.ID, "error", err.Error())
		} else {
			s.log.InfoContext(ctx, "registry synced", "registry", reg.ID, "listed", rr.Listed, "fetched", rr.Fetched,
				"written", rr.Written, "gone", rr.Gone, "conflicts", rr.Conflicts, "skipped", rr.Skipped,
				"requests", rr.Requests, "duration", rr.Duration)
		}
		for _, p := range rr.Problems {
			s.log.InfoContext(ctx, "registry problem", "registry", reg.ID, "problem", p)
		}
		rep.Registries = append(rep.Registries, rr)
	}
	for _, reg := range s.registries {
		if run.recount[reg.ID] {
			if err := s.recount(ctx, reg); err != nil {
				s.log.WarnContext(ctx, "recount a registry", "registry", reg.ID, "error", err.Error())
			}
		}
	}
	return rep, nil
}

// syncRegistry syncs one registry: it repairs what an earlier run left unfinished, fetches
// the listing, writes what changed, and records the registry's state and counts. Fetching
// stops at budget's deadline; recording what was done uses ctx, which leaves the margin
// for it.
func (s *Syncer) syncRegistry(budget, ctx context.Context, run *runState, reg federation.Registry, rr *RegistryReport) error {
	src, ok := s.sources[reg.ID]
	if !ok {
		return fmt.Errorf("no source for registry %s", reg.ID)
	}
	r, err := s.begin(ctx, run, reg, rr)
	if err != nil {
		return err
	}
	if err := r.repair(ctx); err != nil {
		return err
	}
	if err := r.promote(ctx); err != nil {
		return err
	}
	listing, err := r.fetch(budget, src)
	if err != nil {
		return r.failed(ctx, err)
	}
	if err := r.apply(ctx, listing); err != nil {
		return err
	}
	return r.succeeded(ctx, listing)
}

// registrySync is one registry's sync within a run: what it read of the directory, kept
// current as it writes, and what it reports.
type registrySync struct {
	*Syncer
	run   *runState
	reg   federation.Registry
	state SyncState
	view  View
	runAt time.Time
	full  bool // this run fetches every card again
	rep   *RegistryReport
}

// runState is what one run carries from registry to registry.
type runState struct {
	// recount names the registries whose records another registry's sync took over
	// after they were counted: their counts are set again at the end of the run.
	recount map[string]bool
}

// tookFrom notes a record taken over from another registry.
func (r *registrySync) tookFrom(w Write) {
	if w.TakenFrom != "" && w.TakenFrom != r.reg.ID {
		r.run.recount[w.TakenFrom] = true
	}
}

// recount sets again the counts of a registry whose records changed hands after its sync.
func (s *Syncer) recount(ctx context.Context, reg federation.Registry) error {
	r, err := s.begin(ctx, &runState{recount: map[string]bool{}}, reg, &RegistryReport{ID: reg.ID})
	if err != nil {
		return err
	}
	return r.record(ctx)
}

// begin reads the registry's state and records.
func (s *Syncer) begin(ctx context.Context, run *runState, reg federation.Registry, rr *RegistryReport) (*registrySync, error) {
	state, err := s.store.SyncState(ctx, reg.ID)
	if err != nil {
		return nil, err
	}
	view, err := s.store.View(ctx, reg.ID)
	if err != nil {
		return nil, err
	}
	now := s.now()
	return &registrySync{Syncer: s, run: run, reg: reg, state: state, view: view, runAt: now, rep: rr,
		full: now.Sub(state.LastFullRefresh) >= s.opts.FullRefreshEvery}, nil
}

// repair completes the index of every record an earlier write left unfinished, and marks
// gone a record a card no longer names (it names another DID now) that is not gone yet.
func (r *registrySync) repair(ctx context.Context) error {
	for _, rec := range r.sorted() {
		if !rec.IndexPending {
			continue
		}
		if err := r.store.RepairIndex(ctx, rec); err != nil {
			return err
		}
		rec.IndexPending = false
		r.view.Records[rec.SourceID] = rec
		r.rep.Repaired++
	}
	for i, rec := range r.view.Extra {
		if rec.IndexPending {
			if err := r.store.RepairIndex(ctx, rec); err != nil {
				return err
			}
			rec.IndexPending = false
			r.rep.Repaired++
		}
		if rec.Status != federation.StatusGone {
			if err := r.store.SetStatus(ctx, rec, federation.StatusGone, r.Syncer.now(), r.opts.GoneTTL); err != nil {
				return err
			}
			rec = withStatus(rec, federation.StatusGone)
			r.rep.Gone++
		}
		r.view.Extra[i] = rec
	}
	return nil
}

// promote takes over the DIDs whose owner's record is no longer active (gone or stale)
// while this registry still lists them: its shadows become the records. Without it, a DID
// listed by two registries would stay gone after the first dropped it until the second's
// card next changed.
func (r *registrySync) promote(ctx context.Context) error {
	var shadows []Record
	var dids []string
	for _, rec := range r.sorted() {
		if !rec.Owner && rec.Status == federation.StatusActive {
			shadows = append(shadows, rec)
			dids = append(dids, rec.DID)
		}
	}
	if len(shadows) == 0 {
		return nil
	}
	owners, err := r.store.Agents(ctx, dids)
	if err != nil {
		return err
	}
	live := map[string]bool{}
	for _, a := range owners {
		live[a.DID] = a.Status == federation.StatusActive
	}
	for _, sh := range shadows {
		if live[sh.DID] {
			continue
		}
		rec, w, err := r.store.Promote(ctx, sh)
		r.tookFrom(w)
		switch {
		case federation.ErrorCode(err) == federation.ENOTFOUND:
			continue
		case err != nil:
			return err
		}
		r.view.Records[sh.SourceID] = rec
		if rec.Owner {
			r.rep.Written++
			r.log.InfoContext(ctx, "DID taken over", "did", sh.DID, "registry", r.reg.ID)
		}
	}
	return nil
}

// fetch asks the source for what changed since the last run.
func (r *registrySync) fetch(budget context.Context, src Source) (Listing, error) {
	known := make(map[string]string, len(r.view.Records))
	for id, rec := range r.view.Records {
		if rec.Status != federation.StatusGone {
			known[id] = r.view.Versions[id]
		}
	}
	start := r.Syncer.now()
	l, err := src.Fetch(budget, Request{Cursor: r.state.Cursor, Known: known, FullRefresh: r.full})
	r.rep.Requests, r.rep.Pages = l.Requests, l.Pages
	r.rep.Skipped, r.rep.Problems = l.Skipped, l.Problems
	r.state.Duration, r.state.Pages, r.state.Requests = r.Syncer.now().Sub(start), l.Pages, l.Requests
	r.state.Skipped, r.state.Problems = l.Skipped, l.Problems
	return l, err
}

// failed records a failed fetch: the registry is unhealthy at once, and after StaleAfter
// failures in a row its active agents are stale.
func (r *registrySync) failed(ctx context.Context, fetchErr error) error {
	r.state.Healthy = false
	r.state.LastError = federation.ErrorMessage(fetchErr)
	r.state.ConsecutiveFailures++
	if r.state.UnhealthySince.IsZero() {
		r.state.UnhealthySince = r.runAt
	}
	since := r.state.UnhealthySince
	r.rep.UnhealthySince = &since
	if r.state.ConsecutiveFailures >= r.opts.StaleAfter {
		for _, rec := range r.sorted() {
			if rec.Owner && rec.Status == federation.StatusActive {
				if err := r.setStatus(ctx, rec, federation.StatusStale); err != nil {
					return errors.Join(fetchErr, err)
				}
				r.rep.Staled++
			}
		}
	}
	if err := r.record(ctx); err != nil {
		return errors.Join(fetchErr, err)
	}
	return fetchErr
}

// apply writes what the listing changed: the cards fetched, the cards listed again after
// they were stale or gone, and, when the listing is complete, the cards it no longer
// names.
func (r *registrySync) apply(ctx context.Context, l Listing) error {
	fetched := map[string]bool{}
	for _, c := range l.Cards {
		fetched[c.SourceID] = true
		r.rep.Fetched++
		if err := r.applyCard(ctx, c); err != nil {
			return err
		}
	}
	// A card listed but not fetched (its version is unchanged) that is stale or gone is
	// active again.
	for _, id := range l.Listed {
		if rec, ok := r.view.Records[id]; ok && !fetched[id] && rec.Status != federation.StatusActive && rec.Status != "" {
			if err := r.setStatus(ctx, rec, federation.StatusActive); err != nil {
				return err
			}
			r.rep.Written++
		}
	}
	if l.Complete {
		listed := make(map[string]bool, len(l.Listed))
		for _, id := range l.Listed {
			listed[id] = true
		}
		for _, rec := range r.sorted() {
			if !listed[rec.SourceID] && rec.Status != federation.StatusGone {
				if err := r.setStatus(ctx, rec, federation.StatusGone); err != nil {
					return err
				}
				r.rep.Gone++
			}
		}
	}
	r.rep.Listed, r.rep.Deferred = len(l.Listed), l.Deferred
	return nil
}

// applyCard writes one fetched card: gone when inactive, nothing when unchanged, else
// the normalized record (and the old DID gone, when the card now names another).
func (r *registrySync) applyCard(ctx context.Context, c Card) error {
	prev, had := r.view.Records[c.SourceID]
	if !c.Active {
		if had && prev.Status != federation.StatusGone {
			if err := r.setStatus(ctx, prev, federation.StatusGone); err != nil {
				return err
			}
			r.rep.Gone++
		}
		return nil
	}
	a, err := Normalize(r.reg.ID, c, r.runAt)
	if err != nil {
		r.rep.Invalid++
		r.log.InfoContext(ctx, "card skipped", "registry", r.reg.ID, "reason", err.Error())
		return nil
	}
	if had && prev.DID == a.DID && prev.ContentHash == a.ContentHash && prev.Status == federation.StatusActive &&
		r.view.Versions[c.SourceID] == c.Version {
		return nil // unchanged: nothing to write
	}
	if had && prev.DID != a.DID && prev.Status != federation.StatusGone {
		// The card now names another DID: the old one is gone from this registry.
		if err := r.setStatus(ctx, prev, federation.StatusGone); err != nil {
			return err
		}
		r.rep.Gone++
		had = false
	}
	var p *Record
	if had {
		p = &prev
	}
	w, err := r.store.PutAgent(ctx, a, c.Version, p)
	if err != nil {
		return err
	}
	r.tookFrom(w)
	r.rep.Written++
	rec := Record{DID: a.DID, SourceID: c.SourceID, Registry: r.reg.ID, ContentHash: a.ContentHash, Status: a.Status, Owner: w.Owner == r.reg.ID}
	if rec.Owner {
		rec.Facets = Facets(a)
	}
	r.view.Records[c.SourceID] = rec
	r.view.Versions[c.SourceID] = c.Version
	if w.Owner != r.reg.ID {
		r.rep.Conflicts++
		r.log.InfoContext(ctx, "DID listed by two registries", "did", a.DID, "owner", w.Owner, "also", r.reg.ID)
	} else if w.New {
		r.rep.New++
	}
	return nil
}

// setStatus changes a record's status and keeps the view current.
func (r *registrySync) setStatus(ctx context.Context, rec Record, status string) error {
	if err := r.store.SetStatus(ctx, rec, status, r.Syncer.now(), r.opts.GoneTTL); err != nil {
		return err
	}
	r.view.Records[rec.SourceID] = withStatus(rec, status)
	return nil
}

// withStatus is rec with another status, its facets following.
func withStatus(rec Record, status string) Record {
	if rec.Owner {
		facets := make([]string, len(rec.Facets))
		for i, f := range rec.Facets {
			facets[i] = WithStatus(f, status)
		}
		rec.Facets = facets
	}
	rec.Status = status
	return rec
}

// succeeded records a successful run.
func (r *registrySync) succeeded(ctx context.Context, l Listing) error {
	if l.Complete && r.full {
		r.state.LastFullRefresh = r.runAt
	}
	r.state.Healthy, r.state.LastError, r.state.ConsecutiveFailures = true, "", 0
	r.state.UnhealthySince = time.Time{}
	r.state.LastSync, r.state.Cursor = r.runAt, l.Cursor
	return r.record(ctx)
}

// record saves the registry's counts, as its records now add up, and its state. The
// counts are set, never added to: whatever an earlier run left unfinished, they agree
// with the records after the next run that finishes.
func (r *registrySync) record(ctx context.Context) error {
	agents, facets := r.counts()
	r.state.Agents, r.rep.Agents = agents, agents
	if hash := countsHash(facets); hash != r.state.CountsHash {
		if err := r.store.SaveFacetCounts(ctx, r.reg.ID, facets); err != nil {
			return err
		}
		r.state.CountsHash = hash
	}
	return r.store.SaveSyncState(ctx, r.state)
}

// counts adds up the registry's own records: by status, and by discovery facet.
func (r *registrySync) counts() (federation.AgentCounts, map[string]int) {
	var agents federation.AgentCounts
	facets := map[string]int{}
	for _, rec := range append(r.sorted(), r.view.Extra...) {
		if !rec.Owner {
			continue
		}
		switch rec.Status {
		case federation.StatusActive:
			agents.Active++
		case federation.StatusStale:
			agents.Stale++
		case federation.StatusGone:
			agents.Gone++
		}
		for _, f := range rec.Facets {
			facets[f]++
		}
	}
	return agents, facets
}

// sorted returns the view's records in source ID order, so that a run's writes, and the
// failures a test injects between them, come in a repeatable order.
func (r *registrySync) sorted() []Record {
	recs := make([]Record, 0, len(r.view.Records))
	for _, rec := range r.view.Records {
		recs = append(recs, rec)
	}
	slices.SortFunc(recs, func(a, b Record) int {
		switch {
		case a.SourceID < b.SourceID:
			return -1
		case a.SourceID > b.SourceID:
			return 1
		}
		return 0
	})
	return recs
}

// countsHash identifies a set of facet counts.
func countsHash(counts map[string]int) string {
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	h := sha256.New()
	for _, k := range keys {
		h.Write([]byte(k + "\x00" + strconv.Itoa(counts[k]) + "\x00"))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
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
