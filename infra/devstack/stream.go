package devstack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/federation-gateway/gateway/shared/wait"
)

// The local event source mappings of DynamoDB streams. The emulator serves the DynamoDB
// Streams API (DescribeStream, GetShardIterator, GetRecords) but runs no event source
// mappings, so the dev stack polls each mapped table's stream as Lambda's pollers do, and
// invokes the function through the stack's one invoke path with the DynamoDBEvent Lambda
// sends, honouring what the template declares:
//
//   - FilterCriteria: records no filter matches are dropped before batching (see
//     FilterPattern.Match);
//   - BatchSize and MaximumBatchingWindowInSeconds: a batch is sent when it is full, or
//     when the window has passed since its first record (at once when there is none);
//   - FunctionResponseTypes ReportBatchItemFailures: a response naming failed records
//     checkpoints before the lowest and retries from it; an identifier that is empty or
//     not in the batch fails the whole batch;
//   - BisectBatchOnFunctionError: a batch of more than one record whose invocation fails
//     is split in two halves, retried in order; splitting does not count as a retry;
//   - MaximumRetryAttempts and MaximumRecordAgeInSeconds: a batch that keeps failing, or
//     records past the age, are skipped and described to the on-failure destination (an
//     SQS queue) as Lambda describes them (DDBStreamBatchInfo);
//   - one batch at a time per shard, in order: the next waits until the current one
//     succeeded or was skipped.
//
// Records are polled every pollInterval (Lambda polls a shard about four times a second).
type streamPoller struct {
	m        StreamMapping
	endpoint string // the local AWS endpoint's URL
	client   *http.Client
	invoke   func(ctx context.Context, function string, payload []byte) ([]byte, error)
	logs     *logSink
	interval time.Duration

	streamARN string
	queueURL  string
	shard     string // the shard read, and the iterator to read it from
	iter      string
	stats     StreamStats
	statsMu   sync.Mutex
	lastSeq   string // the last record read, to skip what a fresh iterator reads again
}

// StreamStats counts what a stream mapping did, for tests and benchmarks.
type StreamStats struct {
	Invocations int // of the function, retries included
	Records     int // records sent in invocations, retries included
	Failed      int // invocations that failed or reported failed records
	Discarded   int // records skipped to the on-failure destination
	Filtered    int // records no filter matched
	// Busy is the time the function took over its invocations, as Lambda bills it
	// (locally: with the dev stack's invoke path).
	Busy time.Duration
}

// DefaultStreamPoll is how often a shard is polled when it has no new records.
const DefaultStreamPoll = 250 * time.Millisecond

// startStreams starts a poller for every enabled mapping of a running function.
func (s *Stack) startStreams(ctx context.Context, running []Function, interval time.Duration) error {
	if interval <= 0 {
		interval = DefaultStreamPoll
	}
	s.pollers = map[string]*streamPoller{}
	for _, m := range s.Template.StreamMappings {
		if !m.Enabled || !slicesContainsFunc(running, m.Function) {
			continue
		}
		p := &streamPoller{m: m, endpoint: s.EndpointURL, client: &http.Client{Timeout: 30 * time.Second},
			invoke: s.Invoke, logs: s.logs, interval: interval}
		if err := p.setUp(ctx); err != nil {
			return fmt.Errorf("event source mapping %s: %w", m.LogicalID, err)
		}
		s.pollers[m.LogicalID] = p
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			p.run(ctx)
		}()
		s.logs.system(m.Function, fmt.Sprintf("polls the stream of %s (batches of %d, %d filters)", m.Table, m.BatchSize, len(m.Filters)))
	}
	return nil
}

func slicesContainsFunc(fns []Function, id string) bool {
	for _, f := range fns {
		if f.LogicalID == id {
			return true
		}
	}
	return false
}

// StreamStats returns what an event source mapping did so far.
func (s *Stack) StreamStats(mapping string) StreamStats {
	p, ok := s.pollers[mapping]
	if !ok {
		return StreamStats{}
	}
	p.statsMu.Lock()
	defer p.statsMu.Unlock()
	return p.stats
}

func (p *streamPoller) count(f func(*StreamStats)) {
	p.statsMu.Lock()
	f(&p.stats)
	p.statsMu.Unlock()
}

// setUp finds the table's stream and the on-failure queue.
func (p *streamPoller) setUp(ctx context.Context) error {
	var table struct {
		Table struct{ LatestStreamArn string }
	}
	if err := p.call(ctx, "DynamoDB_20120810.DescribeTable", map[string]any{"TableName": p.m.Table}, &table); err != nil {
		return err
	}
	if p.streamARN = table.Table.LatestStreamArn; p.streamARN == "" {
		return fmt.Errorf("table %s has no stream", p.m.Table)
	}
	if p.m.OnFailure != "" {
		name := p.m.OnFailure[strings.LastIndex(p.m.OnFailure, ":")+1:]
		var q struct{ QueueUrl string }
		if err := p.call(ctx, "AmazonSQS.GetQueueUrl", map[string]any{"QueueName": name}, &q); err != nil {
			return fmt.Errorf("on-failure destination %s: %w", p.m.OnFailure, err)
		}
		p.queueURL = q.QueueUrl
	}
	// The iterator is taken now, not when polling starts: a mapping created at LATEST
	// gets every record written after it exists.
	var err error
	p.shard, p.iter, err = p.iterator(ctx, p.m.StartingPosition)
	return err
}

// streamRecord is one record read from the stream.
type streamRecord struct {
	raw     json.RawMessage // as Lambda sends it, with eventSourceARN
	seq     string
	created time.Time
}

// run polls until ctx ends.
func (p *streamPoller) run(ctx context.Context) {
	shard, iter := p.shard, p.iter
	var pending []streamRecord
	for ctx.Err() == nil {
		recs, next, err := p.getRecords(ctx, iter)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			// An iterator expires after five minutes unused (a long retry). The emulator
			// cannot start one after a sequence number, so read from the start again,
			// skipping what was read (lastSeq).
			p.logs.system(p.m.Function, fmt.Sprintf("stream %s: %v; reading it again from the start", p.m.Table, err))
			_, next, err = p.iterator(ctx, "TRIM_HORIZON")
			if err != nil {
				_ = wait.Sleep(ctx, time.Second)
				continue
			}
		}
		iter = next
		pending = append(pending, p.filter(recs)...)
		for len(pending) > 0 {
			if len(pending) < p.m.BatchSize && p.m.Window > 0 && time.Since(pending[0].created) < p.m.Window && len(recs) < 1000 {
				break // wait for the batch to fill or its window to pass
			}
			n := min(len(pending), p.m.BatchSize)
			p.deliver(ctx, shard, pending[:n])
			pending = pending[n:]
		}
		if len(recs) == 0 || len(pending) > 0 {
			if wait.Sleep(ctx, p.interval) != nil {
				return
			}
		}
	}
}

// filter keeps the records some filter matches (all of them without filters), and notes
// the last one read.
func (p *streamPoller) filter(recs []json.RawMessage) []streamRecord {
	var out []streamRecord
	for _, raw := range recs {
		var rec map[string]any
		if err := json.Unmarshal(raw, &rec); err != nil {
			continue
		}
		d, _ := rec["dynamodb"].(map[string]any)
		seq, _ := d["SequenceNumber"].(string)
		if p.lastSeq != "" && !seqAfter(seq, p.lastSeq) {
			continue // read before
		}
		p.lastSeq = seq
		rec["eventSourceARN"] = p.streamARN
		if len(p.m.Filters) > 0 {
			matched := false
			for _, f := range p.m.Filters {
				if f.Match(rec) {
					matched = true
					break
				}
			}
			if !matched {
				p.count(func(s *StreamStats) { s.Filtered++ })
				continue
			}
		}
		b, _ := json.Marshal(rec)
		created := time.Now()
		if t, ok := d["ApproximateCreationDateTime"].(float64); ok && t > 0 {
			created = time.Unix(int64(t), 0)
		}
		out = append(out, streamRecord{raw: b, seq: seq, created: created})
	}
	return out
}

// seqAfter compares two sequence numbers (decimal strings of any length).
func seqAfter(a, b string) bool {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		return len(a) > len(b)
	}
	return a > b
}

// batch is a run of records to deliver and the failed attempts it had.
type batch struct {
	recs     []streamRecord
	attempts int
}

// deliver invokes the function with recs until every record is handled or skipped.
func (p *streamPoller) deliver(ctx context.Context, shard string, recs []streamRecord) {
	queue := []batch{{recs: recs}}
	for len(queue) > 0 && ctx.Err() == nil {
		b := &queue[0]
		if p.m.MaxRecordAge > 0 {
			var fresh []streamRecord
			for i, r := range b.recs {
				if time.Since(r.created) <= p.m.MaxRecordAge {
					fresh = b.recs[i:]
					break
				}
			}
			if old := b.recs[:len(b.recs)-len(fresh)]; len(old) > 0 {
				p.discard(ctx, shard, old, "RecordAgeExceeded", b.attempts, "")
				b.recs = fresh
			}
			if len(b.recs) == 0 {
				queue = queue[1:]
				continue
			}
		}
		failedAt, ferr := p.invokeOnce(ctx, b.recs)
		if ctx.Err() != nil {
			return
		}
		if ferr == nil && failedAt < 0 {
			queue = queue[1:]
			continue
		}
		p.count(func(s *StreamStats) { s.Failed++ })
		if ferr != nil && p.m.Bisect && len(b.recs) > 1 {
			half := len(b.recs) / 2
			first, second := batch{recs: b.recs[:half], attempts: b.attempts}, batch{recs: b.recs[half:], attempts: b.attempts}
			queue = append([]batch{first, second}, queue[1:]...)
			p.logs.system(p.m.Function, fmt.Sprintf("stream batch of %d failed (%v); retrying it in halves", len(b.recs), ferr))
			continue
		}
		if failedAt > 0 {
			b.recs = b.recs[failedAt:] // the records before the first failure are checkpointed
		}
		b.attempts++
		if p.m.MaxRetries >= 0 && b.attempts > p.m.MaxRetries {
			why := "Unhandled"
			if ferr == nil {
				why = "" // the function answered, reporting failed records
			}
			p.discard(ctx, shard, b.recs, "RetryAttemptsExhausted", b.attempts, why)
			queue = queue[1:]
			continue
		}
		if ferr != nil {
			p.logs.system(p.m.Function, fmt.Sprintf("stream batch of %d failed (%v); retry %d", len(b.recs), ferr, b.attempts))
		}
		if wait.Sleep(ctx, min(50*time.Millisecond<<b.attempts, 2*time.Second)) != nil {
			return
		}
	}
}

// invokeOnce invokes the function with a batch. It returns the index of the first record
// the function reported failed (-1 for none) or the invocation's error.
func (p *streamPoller) invokeOnce(ctx context.Context, recs []streamRecord) (int, error) {
	raws := make([]json.RawMessage, len(recs))
	for i, r := range recs {
		raws[i] = r.raw
	}
	payload, err := json.Marshal(map[string]any{"Records": raws})
	if err != nil {
		return -1, err
	}
	p.count(func(s *StreamStats) { s.Invocations++; s.Records += len(recs) })
	start := time.Now()
	out, err := p.invoke(ctx, p.m.Function, payload)
	p.count(func(s *StreamStats) { s.Busy += time.Since(start) })
	if err != nil || !p.m.ReportBatchItemFailures {
		return -1, err
	}
	var resp *events.DynamoDBEventResponse
	if len(bytes.TrimSpace(out)) > 0 && json.Unmarshal(out, &resp) != nil {
		return -1, nil // not a batch response: success, as Lambda reads it
	}
	if resp == nil || len(resp.BatchItemFailures) == 0 {
		return -1, nil
	}
	lowest := -1
	for _, f := range resp.BatchItemFailures {
		i := -1
		for j, r := range recs {
			if r.seq == f.ItemIdentifier {
				i = j
			}
		}
		if f.ItemIdentifier == "" || i < 0 {
			return -1, fmt.Errorf("the batch response names %q, no record of the batch", f.ItemIdentifier)
		}
		if lowest < 0 || i < lowest {
			lowest = i
		}
	}
	return lowest, nil
}

// discard skips records, describing them to the on-failure destination.
func (p *streamPoller) discard(ctx context.Context, shard string, recs []streamRecord, condition string, attempts int, functionError string) {
	p.count(func(s *StreamStats) { s.Discarded += len(recs) })
	p.logs.system(p.m.Function, fmt.Sprintf("stream: %d records skipped (%s)", len(recs), condition))
	if p.queueURL == "" {
		return
	}
	resp := map[string]any{"statusCode": 200, "executedVersion": "$LATEST"}
	if functionError != "" {
		resp["functionError"] = functionError
	}
	msg, _ := json.Marshal(map[string]any{
		"requestContext": map[string]any{
			"requestId": newRequestID(), "condition": condition, "approximateInvokeCount": attempts,
			"functionArn": fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", localRegion, localAccountID, p.m.Function),
		},
		"responseContext": resp,
		"version":         "1.0",
		"timestamp":       time.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
		"DDBStreamBatchInfo": map[string]any{
			"shardId": shard, "streamArn": p.streamARN, "batchSize": len(recs),
			"startSequenceNumber": recs[0].seq, "endSequenceNumber": recs[len(recs)-1].seq,
			"approximateArrivalOfFirstRecord": recs[0].created.UTC().Format(time.RFC3339),
			"approximateArrivalOfLastRecord":  recs[len(recs)-1].created.UTC().Format(time.RFC3339),
		},
	})
	if err := p.call(ctx, "AmazonSQS.SendMessage", map[string]any{"QueueUrl": p.queueURL, "MessageBody": string(msg)}, nil); err != nil {
		p.logs.system(p.m.Function, "stream: on-failure destination: "+err.Error())
	}
}

// iterator returns the stream's (first open) shard and an iterator of it.
func (p *streamPoller) iterator(ctx context.Context, position string) (string, string, error) {
	var desc struct {
		StreamDescription struct {
			Shards []struct {
				ShardId             string
				SequenceNumberRange struct{ EndingSequenceNumber string }
			}
		}
	}
	if err := p.call(ctx, "DynamoDBStreams_20120810.DescribeStream", map[string]any{"StreamArn": p.streamARN}, &desc); err != nil {
		return "", "", err
	}
	var shard string
	for _, sh := range desc.StreamDescription.Shards {
		if sh.SequenceNumberRange.EndingSequenceNumber == "" {
			shard = sh.ShardId // the open shard: the emulator never splits one
		}
	}
	if shard == "" {
		return "", "", errors.New("the stream has no open shard")
	}
	var it struct{ ShardIterator string }
	err := p.call(ctx, "DynamoDBStreams_20120810.GetShardIterator", map[string]any{
		"StreamArn": p.streamARN, "ShardId": shard, "ShardIteratorType": position,
	}, &it)
	return shard, it.ShardIterator, err
}

func (p *streamPoller) getRecords(ctx context.Context, iter string) ([]json.RawMessage, string, error) {
	var out struct {
		Records           []json.RawMessage
		NextShardIterator string
	}
	if err := p.call(ctx, "DynamoDBStreams_20120810.GetRecords", map[string]any{"ShardIterator": iter, "Limit": 1000}, &out); err != nil {
		return nil, "", err
	}
	if out.NextShardIterator == "" {
		return nil, "", errors.New("the shard is closed")
	}
	return out.Records, out.NextShardIterator, nil
}

// call makes a JSON-protocol AWS call (DynamoDB, DynamoDB Streams, SQS) to the local
// endpoint, which takes the emulator's dummy credentials: none are needed.
func (p *streamPoller) call(ctx context.Context, target string, in, out any) error {
	return callJSON(ctx, p.client, p.endpoint, target, in, out)
}

func callJSON(ctx context.Context, client *http.Client, endpoint, target string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("X-Amz-Target", target)
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", target, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s: %w", target, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %d %s", target, resp.StatusCode, bytes.TrimSpace(raw))
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s: %w", target, err)
		}
	}
	return nil
}

// createQueue creates an SQS queue (an on-failure destination); one that exists is kept.
func (c *Cloud) createQueue(ctx context.Context, q Queue) error {
	err := callJSON(ctx, http.DefaultClient, c.endpoint, "AmazonSQS.CreateQueue", map[string]any{"QueueName": q.Name}, nil)
	if err != nil {
		return fmt.Errorf("create queue %s: %w", q.Name, err)
	}
	return nil
}
