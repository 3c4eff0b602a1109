package devstack

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// progressTick is how often Start says what it is still doing: under 10 s, with room for
// a busy machine's delays.
const progressTick = 8 * time.Second

// progress tells Options.Progress each step of Start as it begins and, every
// progressTick, what it is still doing ("still building RouteFunction, SyncFunction
// (40s)"): a first run compiles for minutes and must never sit silent.
type progress struct {
	report func(string)

	mu      sync.Mutex
	phase   string
	since   time.Time
	pending []string // functions still building
	done    chan struct{}
	once    sync.Once
}

func newProgress(report func(string)) *progress {
	p := &progress{report: report, done: make(chan struct{})}
	if report == nil {
		p.report = func(string) {}
		return p
	}
	go func() {
		t := time.NewTicker(progressTick)
		defer t.Stop()
		for {
			select {
			case <-p.done:
				return
			case <-t.C:
				p.mu.Lock()
				what := p.phase
				if len(p.pending) > 0 {
					what = "building " + strings.Join(p.pending, ", ")
				}
				if what != "" {
					p.report(fmt.Sprintf("still %s (%ds)", what, int(time.Since(p.since).Seconds())))
				}
				p.mu.Unlock()
			}
		}
	}()
	return p
}

// step reports a step and makes it the one the ticker repeats.
func (p *progress) step(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.phase, p.since = s, time.Now()
	p.report(s)
}

// building reports the start of the functions' build.
func (p *progress) building(names []string) {
	p.mu.Lock()
	p.pending = slices.Clone(names)
	p.mu.Unlock()
	p.step(fmt.Sprintf("building %d functions: %s", len(names), strings.Join(names, ", ")))
}

// built reports a function built.
func (p *progress) built(name string, took time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pending = slices.DeleteFunc(p.pending, func(n string) bool { return n == name })
	p.report(fmt.Sprintf("built %s in %.1fs", name, took.Seconds()))
}

func (p *progress) stop() { p.once.Do(func() { close(p.done) }) }
