package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"text/tabwriter"
)

// AWS list prices (us-east-1) the events section costs its counts at, beside the
// DynamoDB and Lambda prices of routing_cost.go.
const (
	priceWebSocketMessage = 1.00 / 1e6 // API Gateway WebSocket: per message (of up to 32 KB), first billion
	priceConnectionMinute = 0.25 / 1e6 // per connection minute
	assumedEventRate      = 1.0        // events per second, for connection minutes per million events
	costMillion           = 1e6        // events the cost is given for
	streamReadsNote       = "stream reads by Lambda are free"
	kb                    = 1024
)

// reportEvents prints the latency and cost tables of the events section.
func reportEvents(w io.Writer, res eventsResults) {
	fmt.Fprintf(w, `
Events: a change written to the local table (a registry's first sync failed: registry.unhealthy) reaches every
subscriber's WebSocket as an event frame: the stream poller reads the stream every %s (as Lambda polls a shard
about 4 times a second) and invokes EventsFunction, which logs the event and posts it through @connections to
the local WebSocket API. Latency: from the write's return to the frame read by the subscriber, every subscriber's
`, res.Poll)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	width := len("run")
	for _, r := range res.Runs {
		width = max(width, len(r.Name))
	}
	fmt.Fprintf(tw, "%-*s\tframes\tmissing\tdup\tp50\tp99\tmax\tevents/s\tposts/event\tinvocations/event\tDynamoDB calls/event\t\n", width, "run")
	for _, r := range res.Runs {
		s := slices.Sorted(slices.Values(r.Latencies))
		rate := "-"
		if r.Burst {
			rate = fmt.Sprintf("%.0f", float64(r.Events)/r.Took.Seconds())
		}
		fmt.Fprintf(tw, "%-*s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%.2f\t%.3f\t%.2f\t\n", width, r.Name, len(r.Latencies), r.Missing, r.Duplicates,
			ms(percentile(s, 0.5)), ms(percentile(s, 0.99)), ms(percentile(s, 1)), rate,
			per(r.Posts, r.Events), per(r.Invocations, r.Events), per(r.Calls, max(r.Appended, 1)))
	}
	tw.Flush()
	fmt.Fprintf(w, `  one at a time: each write at a random moment of the poller's interval, after the last event reached everyone;
  at once: written back to back (events/s: the last frame's arrival after the first write)
  posts: @connections POSTs the local API served (one per subscriber that wants the event); calls: what
  EventsFunction's batches logged per event appended (read the head, one transaction to append, list the live
  subscriptions, mark the head sent: 4 a batch, whatever its size, so a burst costs less per event)
`)

	fmt.Fprintf(w, "\nCost per million events at AWS list prices (us-east-1), from the counts above; item sizes: log entry %d B,\nevent ID claim %d B, subscription %d B; EventsFunction %d MB arm64, its local invocation time as duration; %s\n",
		res.Sizes.Entry, res.Sizes.Claim, res.Sizes.Connection, res.Memory, streamReadsNote)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-*s\tAPI GW messages\tLambda requests\tLambda duration\tDynamoDB writes\tDynamoDB reads\ttotal\t\n", width, "run")
	for _, r := range res.Runs {
		c := eventCost(r, res)
		fmt.Fprintf(tw, "%-*s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", width, r.Name, usd(c.messages), usd(c.requests), usd(c.duration), usd(c.writes), usd(c.reads), usd(c.total()))
	}
	tw.Flush()
	fmt.Fprintf(w, `  writes: each event is two items written in a transaction (2 units per KB each: %.0f WRU), each batch moves
  the head in it (2) and marks it sent (1); reads: each batch reads the head (1 RRU) and the subscriptions (0.5 a 4 KB)
  connection minutes, not per event: $%.6f per subscriber-hour; at %.0f event/s a million events take %.0f hours,
  so %s per million events with 500 subscribers connected throughout
`, 2*units(res.Sizes.Entry, kb)+2*units(res.Sizes.Claim, kb), 60*priceConnectionMinute, assumedEventRate,
		costMillion/assumedEventRate/3600, usd(500*costMillion/assumedEventRate/60*priceConnectionMinute))

	phasesTable(w, "Events", res.Phases)
}

// cost is what a million events cost, by line.
type cost struct{ messages, requests, duration, writes, reads float64 }

func (c cost) total() float64 { return c.messages + c.requests + c.duration + c.writes + c.reads }

func eventCost(r eventsRun, res eventsResults) cost {
	events := float64(max(r.Events, 1))
	batches := float64(r.Invocations) / events // per event
	wru := 2*units(res.Sizes.Entry, kb) + 2*units(res.Sizes.Claim, kb) + 3*batches
	subs := float64(r.Subscribers * res.Sizes.Connection)
	rru := (1 + 0.5*math.Max(1, units(int(subs), 4*kb))) * batches
	gbs := r.Busy.Seconds() * float64(res.Memory) / 1024 / events
	return cost{
		messages: costMillion * float64(r.Posts) / events * priceWebSocketMessage,
		requests: costMillion * batches * priceLambdaReq,
		duration: costMillion * gbs * priceGBSecond,
		writes:   costMillion * wru * priceWRU,
		reads:    costMillion * rru * priceRRU,
	}
}

// units is how many units of size unit n bytes take (at least one).
func units(n, unit int) float64 { return math.Max(1, math.Ceil(float64(n)/float64(unit))) }

func per(n, d int) float64 { return float64(n) / float64(max(d, 1)) }

func usd(v float64) string {
	if v < 10 {
		return fmt.Sprintf("$%.3f", v)
	}
	return fmt.Sprintf("$%.2f", v)
}
