package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"
)

// The sustained-load section's fixed settings.
const (
	// seedRate is the seed's global_rate: 1,000 messages a minute.
	seedRate = 1000.0 / 60
	// maxInFlight bounds the messages awaiting an answer. A rate the stack cannot keep up
	// with fills it, and then the step is not sustained: the sender would have to wait.
	maxInFlight = 128
	// maxSustainedP99 is the slowest 99th percentile a sustained rate may have.
	maxSustainedP99 = time.Second
	// discoverEvery and syncEvery pace the background load: a discovery client polling,
	// and the sync running far more often than the template's once a minute.
	discoverEvery = 500 * time.Millisecond
	syncEvery     = 15 * time.Second
	// rampFactor multiplies the rate from one step of the ramp to the next.
	rampFactor = 2.0
	// maxRampSteps bounds the ramp.
	maxRampSteps = 8
)

// loadStep is one rate held for a while.
type loadStep struct {
	Rate      float64 // messages a second asked for
	Took      time.Duration
	Sent      int
	Delivered int
	Errors    map[string]int
	Backlog   int // messages not sent because maxInFlight were awaiting an answer
	P50, P99  time.Duration
	Max       time.Duration
}

// Achieved is the rate delivered.
func (s loadStep) Achieved() float64 {
	if s.Took <= 0 {
		return 0
	}
	return float64(s.Delivered) / s.Took.Seconds()
}

// Sustained says the stack kept the rate: every message delivered, none held back, the
// 99th percentile within maxSustainedP99.
func (s loadStep) Sustained() bool {
	return total(s.Errors) == 0 && s.Backlog == 0 && s.Delivered == s.Sent && s.P99 <= maxSustainedP99
}

// backgroundLoad is what ran beside the messages.
type backgroundLoad struct {
	Discoveries, DiscoveryErrors int
	Syncs, SyncErrors            int
	FirstError                   string
}

type sustainedResults struct {
	Hold       loadStep
	Ramp       []loadStep
	Background backgroundLoad
	Instances  int // the route function's instances at the end
}

// Highest is the highest rate of the ramp that was sustained, 0 for none.
func (r sustainedResults) Highest() float64 {
	best := 0.0
	for _, s := range r.Ramp {
		if s.Sustained() {
			best = max(best, s.Rate)
		}
	}
	return best
}

// benchSustained holds the seed's 1,000 messages a minute through the local stack for
// hold, then doubles the rate every step (each held for step) until the stack no longer
// keeps it, and tries once between the last rate kept and the first missed. Discovery
// and the sync run all the while.
func benchSustained(ctx context.Context, tmplPath string, hold, step time.Duration) (sustainedResults, error) {
	b := &routingBench{run: fmt.Sprint(time.Now().UnixNano()), functions: []string{"SyncFunction", "RouteFunction", "DiscoverFunction"}}
	defer b.close()
	setup, cancel := context.WithTimeout(ctx, setupLimit)
	defer cancel()
	var res sustainedResults
	if err := b.setUp(setup, tmplPath); err != nil {
		return res, err
	}
	if err := b.warmUp(ctx); err != nil {
		return res, err
	}

	bgCtx, stopBackground := context.WithCancel(ctx)
	var bg sync.WaitGroup
	var bgMu sync.Mutex
	b.background(bgCtx, &bg, &bgMu, &res.Background)

	progress("sustained: %.1f messages a second (1,000 a minute) for %s, with discovery and syncs", seedRate, hold)
	res.Hold = b.load(ctx, seedRate, hold)
	for rate, i := seedRate*rampFactor, 0; i < maxRampSteps && ctx.Err() == nil; rate, i = rate*rampFactor, i+1 {
		progress("sustained: ramp, %.0f messages a second for %s", rate, step)
		s := b.load(ctx, rate, step)
		res.Ramp = append(res.Ramp, s)
		if !s.Sustained() {
			if between := rate / rampFactor * 1.5; i > 0 || between > seedRate {
				progress("sustained: ramp, %.0f messages a second for %s", between, step)
				res.Ramp = append(res.Ramp, b.load(ctx, between, step))
			}
			break
		}
	}
	stopBackground()
	bg.Wait()
	res.Instances = b.stack.Instances("RouteFunction")
	slices.SortFunc(res.Ramp, func(x, y loadStep) int { return int(x.Rate*1000) - int(y.Rate*1000) })
	return res, ctx.Err()
}

// background runs a discovery client and the sync until ctx ends.
func (b *routingBench) background(ctx context.Context, wg *sync.WaitGroup, mu *sync.Mutex, out *backgroundLoad) {
	fail := func(what string, err error) {
		if ctx.Err() != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if out.FirstError == "" {
			out.FirstError = what + ": " + firstLine(err.Error())
		}
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		for t := time.NewTicker(discoverEvery); ; {
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			_, err := b.get(ctx, b.stack.APIURL+"/api/v1/discover?capability=echo&limit=20")
			mu.Lock()
			out.Discoveries++
			if err != nil && ctx.Err() == nil {
				out.DiscoveryErrors++
			}
			mu.Unlock()
			if err != nil {
				fail("discover", err)
			}
		}
	}()
	go func() {
		defer wg.Done()
		event, err := os.ReadFile(filepath.Join(b.stack.Template.Dir, "events", "sync.json"))
		if err != nil {
			fail("sync event", err)
			return
		}
		for t := time.NewTicker(syncEvery); ; {
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			_, err := b.stack.Invoke(ctx, "SyncFunction", event)
			mu.Lock()
			out.Syncs++
			if err != nil && ctx.Err() == nil {
				out.SyncErrors++
			}
			mu.Unlock()
			if err != nil {
				fail("sync", err)
			}
		}
	}()
}

// load sends messages through the local HTTP API at rate a second for d, each at its
// own time whatever the answers before it (an open loop, as independent agents send),
// and measures each from its send to its answer.
func (b *routingBench) load(ctx context.Context, rate float64, d time.Duration) loadStep {
	s := loadStep{Rate: rate, Errors: map[string]int{}}
	n := int(rate * d.Seconds())
	interval := time.Duration(float64(time.Second) / rate)
	var (
		mu        sync.Mutex
		latencies = make([]time.Duration, 0, n)
		inFlight  atomic.Int64
		wg        sync.WaitGroup
	)
	start := time.Now()
	for i := 0; i < n && ctx.Err() == nil; i++ {
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
		}
		if inFlight.Load() >= maxInFlight {
			s.Backlog++
			continue
		}
		c, err := b.call()
		if err != nil {
			s.Errors["sign a credential: "+err.Error()]++
			continue
		}
		s.Sent++
		inFlight.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer inFlight.Add(-1)
			sent := time.Now()
			err := b.routeStack(ctx, c)
			took := time.Since(sent)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				s.Errors[errorKind(err)]++
				return
			}
			s.Delivered++
			latencies = append(latencies, took)
		}()
	}
	wg.Wait()
	s.Took = time.Since(start)
	slices.Sort(latencies)
	s.P50, s.P99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
	if len(latencies) > 0 {
		s.Max = latencies[len(latencies)-1]
	}
	return s
}

// call signs one message's credential now: its jti is accepted once, and a token signed
// minutes ahead would age.
func (b *routingBench) call() (routeCall, error) {
	calls, err := b.calls(1)
	if err != nil {
		return routeCall{}, err
	}
	return calls[0], nil
}

func reportSustained(w io.Writer, res sustainedResults) {
	fmt.Fprintf(w, `
Sustained load: POST /api/v1/route through the local stack (HTTP API, route function instances, local endpoint)
at a steady rate, each message sent at its own time whatever the answers before it (at most %d awaiting an answer),
with a discovery client polling every %s and the sync every %s; goal: the seed's 1,000 messages a minute with
0 errors; a rate is sustained with 0 errors, none held back, and p99 ≤ %s
`, maxInFlight, discoverEvery, syncEvery, maxSustainedP99)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "run\tasked/s\tdelivered/s\tfor\tsent\tdelivered\terrors\theld back\tp50\tp99\tmax\tsustained\t\n")
	row := func(name string, s loadStep) {
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t\n", name, s.Rate, s.Achieved(), s.Took.Round(time.Second),
			s.Sent, s.Delivered, total(s.Errors), s.Backlog, ms(s.P50), ms(s.P99), ms(s.Max), yesNo(s.Sustained()))
	}
	row("1,000 a minute", res.Hold)
	for _, s := range res.Ramp {
		row("ramp", s)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "  1,000 messages a minute: %s", pass(res.Hold.Sustained()))
	if h := res.Highest(); h > 0 {
		fmt.Fprintf(w, "; highest rate sustained: %.0f messages a second (%.0f a minute), %d route function instances\n", h, h*60, res.Instances)
	} else {
		fmt.Fprintf(w, "; no step of the ramp was sustained\n")
	}
	bg := res.Background
	fmt.Fprintf(w, "  meanwhile: %d discovery requests (%d failed), %d syncs (%d failed)\n", bg.Discoveries, bg.DiscoveryErrors, bg.Syncs, bg.SyncErrors)
	if bg.FirstError != "" {
		fmt.Fprintf(w, "  first background error: %s\n", bg.FirstError)
	}
	for _, s := range append([]loadStep{res.Hold}, res.Ramp...) {
		for kind, n := range s.Errors {
			fmt.Fprintf(w, "  at %.0f/s, %d× %s\n", s.Rate, n, kind)
		}
	}
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}
