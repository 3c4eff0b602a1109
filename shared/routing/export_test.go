package routing

import "time"

// SetClock sets the clock of r: the minute its rate limits count in. Tests that fill a
// minute's limit fix it, so that the minute cannot turn while they run.
func (r *Router) SetClock(now func() time.Time) { r.now = now }
