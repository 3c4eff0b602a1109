package devstack

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

var rateExpr = regexp.MustCompile(`^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$`)

// ScheduleInterval returns the interval of an EventBridge rate expression. Cron
// expressions are not run locally.
func ScheduleInterval(expr string) (time.Duration, error) {
	m := rateExpr.FindStringSubmatch(expr)
	if m == nil {
		return 0, fmt.Errorf("schedule %q: the dev stack runs rate(N minutes|hours|days) expressions only", expr)
	}
	n, err := strconv.Atoi(m[1])
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("schedule %q: want a positive rate", expr)
	}
	unit := map[string]time.Duration{"minute": time.Minute, "minutes": time.Minute, "hour": time.Hour,
		"hours": time.Hour, "day": 24 * time.Hour, "days": 24 * time.Hour}[m[2]]
	return time.Duration(n) * unit, nil
}

// startSchedules fires each enabled Schedule event of the functions, as EventBridge does:
// a "Scheduled Event" each interval, the first one interval after the start.
func (s *Stack) startSchedules(ctx context.Context, functions []Function, every time.Duration, atStart bool) {
	for _, fn := range functions {
		for _, sc := range fn.Schedules {
			if !sc.Enabled {
				continue
			}
			interval, err := ScheduleInterval(sc.Expression)
			if err != nil {
				s.logs.system(fn.LogicalID, err.Error())
				continue
			}
			if every > 0 {
				interval = every
			}
			s.logs.system(fn.LogicalID, fmt.Sprintf("schedule %s fires every %s", sc.Name, interval))
			s.runService(ctx, func(ctx context.Context) { s.fire(ctx, fn.LogicalID, sc.Name, interval, atStart) })
		}
	}
}

func (s *Stack) fire(ctx context.Context, function, rule string, interval time.Duration, atStart bool) {
	t := time.NewTicker(interval)
	defer t.Stop()
	first := make(chan time.Time, 1)
	if atStart {
		first <- time.Now()
	}
	for {
		var now time.Time
		select {
		case <-ctx.Done():
			return
		case now = <-first:
		case now = <-t.C:
		}
		payload, _ := json.Marshal(events.EventBridgeEvent{
			Version:    "0",
			ID:         newRequestID(),
			DetailType: "Scheduled Event",
			Source:     "aws.events",
			AccountID:  localAccountID,
			Time:       now.UTC(),
			Region:     localRegion,
			Resources:  []string{fmt.Sprintf("arn:aws:events:%s:%s:rule/%s-%s", localRegion, localAccountID, function, rule)},
			Detail:     json.RawMessage(`{}`),
		})
		start := time.Now()
		if _, err := s.Invoke(ctx, function, payload); err != nil && ctx.Err() == nil {
			s.logs.system(function, fmt.Sprintf("schedule %s: %v", rule, err))
		} else if err == nil {
			s.logs.system(function, fmt.Sprintf("schedule %s ran in %dms", rule, time.Since(start).Milliseconds()))
		}
	}
}
