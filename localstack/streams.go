package localstack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// The emulator (kumo v0.33.1) writes a table's stream records for PutItem, UpdateItem and
// DeleteItem only: the writes of TransactWriteItems and BatchWriteItem change the table
// but never reach its stream (TestKumoStreamMissesTransactionsAndBatchWrites shows it).
// DynamoDB streams every write, and the gateway's routing and bridge write in
// transactions, so their changes would never make events locally.
//
// streamWrites puts the transactions' writes in, here and nowhere else. It holds the
// table still around a transaction: it reads the items the transaction names, lets the
// emulator apply it, reads them again, and for each item that changed it sets the old item
// back with a BatchWriteItem (which the emulator does not stream) and writes the new one
// with PutItem or DeleteItem, which the emulator streams with the right old and new
// images. Every other write waits while it does, so none is applied to an old item set
// back.
//
// Reads of the partitions a streamed transaction writes wait until it is streamed, and
// only those: while the old items are set back and the new ones written again, a reader
// could otherwise see one item of the transaction as after it and then another as before
// it (the event log's head moved on, the entry it points to not there yet), which
// DynamoDB never shows once a transaction is committed. Holding every read instead made
// discovery time out while the events function appended a sync's events: streaming a
// transaction of a hundred items takes some two hundred calls to the emulator. A GetItem,
// BatchGetItem, TransactGetItems or a Query of the table itself names its partitions; a
// Query of an index and a Scan do not wait, and may see such a transaction half applied.
//
// What stays different from DynamoDB: BatchWriteItem's writes are still not streamed
// (doing the same for them tripled the cost of the sync's index writes; no item that
// makes an event is written in a batch); items deleted by TTL make no REMOVE record; and a PutItem or UpdateItem
// that changes nothing makes a MODIFY record (DynamoDB makes none), which readers of the
// stream must ignore as they would a record of an attribute they do not use.
type streamWrites struct {
	emulator string // kumo's URL
	client   *http.Client

	mu         sync.RWMutex // held for writing around a streamed transaction, for reading around other writes and stream reads
	partitions partitionLocks
	schema     sync.Map // table name -> *tableSchema
	// describe is held around every DescribeTable the emulator serves, the endpoint's
	// callers' and streamWrites' own: kumo v0.33.1 sets the table's item count under a
	// read lock and describes the table after releasing it, so two DescribeTables at once
	// race (TestEndpointDescribesTablesConcurrently, under -race).
	describe sync.Mutex
}

type tableSchema struct {
	streamed bool
	keys     []string
	hash     string // the partition key's attribute
}

func newStreamWrites(emulator string) *streamWrites {
	return &streamWrites{emulator: emulator, client: &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16}}}
}

// reads are the DynamoDB operations that write nothing.
var reads = map[string]bool{"GetItem": true, "BatchGetItem": true, "Query": true, "Scan": true, "TransactGetItems": true,
	"DescribeTable": true, "ListTables": true, "DescribeTimeToLive": true, "DescribeContinuousBackups": true, "ListTagsOfResource": true}

const (
	dynamoTarget  = "DynamoDB_20120810."
	streamsTarget = "DynamoDBStreams_20120810."
)

// wrap serves DynamoDB requests through next, streaming the writes the emulator leaves
// out of the stream.
func (s *streamWrites) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target := r.Header.Get("X-Amz-Target")
		if strings.HasPrefix(target, streamsTarget) {
			// Stream reads wait too, so the records of a transaction appear at once.
			s.mu.RLock()
			defer s.mu.RUnlock()
			next.ServeHTTP(w, r)
			return
		}
		op, ok := strings.CutPrefix(target, dynamoTarget)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		if op == "DescribeTable" {
			s.describe.Lock()
			defer s.describe.Unlock()
		}
		if reads[op] {
			s.serveRead(w, r, next, op)
			return
		}
		if op != "TransactWriteItems" {
			s.mu.RLock()
			defer s.mu.RUnlock()
			next.ServeHTTP(w, r)
			return
		}
		body, ok := readBody(w, r)
		if !ok {
			return
		}
		keys := s.writtenKeys(r.Context(), op, body)
		if len(keys) == 0 {
			s.mu.RLock()
			defer s.mu.RUnlock()
			next.ServeHTTP(w, r)
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k.partition
		}
		s.partitions.lock(parts)
		defer s.partitions.unlock(parts)
		s.serveStreamed(w, r, next, keys)
	})
}

// itemKey is one item a write names, in a table with a stream.
type itemKey struct {
	table     string
	key       map[string]json.RawMessage
	partition string // partitionID of its partition key
}

// serveStreamed applies a write and streams its changes.
func (s *streamWrites) serveStreamed(w http.ResponseWriter, r *http.Request, next http.Handler, keys []itemKey) {
	ctx := r.Context()
	old, err := s.getItems(ctx, keys)
	if err != nil {
		http.Error(w, "local AWS endpoint: "+err.Error(), http.StatusInternalServerError)
		return
	}
	rec := httptest.NewRecorder()
	next.ServeHTTP(rec, r)
	defer func() {
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	}()
	if rec.Code != http.StatusOK {
		return // nothing was written
	}
	// The transaction is applied: what follows must finish even if its caller goes away
	// (a function's deadline), or the old items set back would stay, and a committed
	// transaction would be lost (TestStreamedTransactionOutlivesItsCaller).
	ctx = context.WithoutCancel(ctx)
	now, err := s.getItems(ctx, keys)
	if err != nil {
		return
	}
	// Set the old items back unseen by the stream (BatchWriteItem, 25 writes a call), then
	// write the new ones seen, one by one in the transaction's order.
	var changed []int
	for i := range keys {
		if !sameItem(old[i], now[i]) {
			changed = append(changed, i)
		}
	}
	for start := 0; start < len(changed); start += maxBatchWrite {
		chunk := changed[start:min(start+maxBatchWrite, len(changed))]
		restores := map[string][]any{}
		for _, i := range chunk {
			restore := map[string]any{"DeleteRequest": map[string]any{"Key": keys[i].key}}
			if old[i] != nil {
				restore = map[string]any{"PutRequest": map[string]any{"Item": old[i]}}
			}
			restores[keys[i].table] = append(restores[keys[i].table], restore)
		}
		if err := s.call(ctx, "BatchWriteItem", map[string]any{"RequestItems": restores}, nil); err != nil {
			continue // the table keeps the transaction's writes, unstreamed
		}
		for _, i := range chunk {
			op, in := "PutItem", map[string]any{"TableName": keys[i].table, "Item": now[i]}
			if now[i] == nil {
				op, in = "DeleteItem", map[string]any{"TableName": keys[i].table, "Key": keys[i].key}
			}
			// The emulator in process fails a call only when it is stopping; try again
			// a few times rather than leave the old item.
			for attempt := 0; attempt < 3 && s.call(ctx, op, in, nil) != nil; attempt++ {
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
}

// maxBatchWrite is the most writes one BatchWriteItem takes.
const maxBatchWrite = 25

// writtenKeys returns the items a TransactWriteItems writes in tables with a stream; nil
// when it cannot tell (the emulator then answers the request alone).
func (s *streamWrites) writtenKeys(ctx context.Context, op string, body []byte) []itemKey {
	type put struct {
		TableName string
		Item      map[string]json.RawMessage
		Key       map[string]json.RawMessage
	}
	var in struct {
		TransactItems []struct{ Put, Update, Delete *put }
	}
	if op != "TransactWriteItems" || json.Unmarshal(body, &in) != nil {
		return nil
	}
	var writes []put
	for _, it := range in.TransactItems {
		for _, p := range []*put{it.Put, it.Update, it.Delete} {
			if p != nil {
				writes = append(writes, *p)
			}
		}
	}
	var keys []itemKey
	seen := map[string]bool{}
	for _, p := range writes {
		sch := s.tableSchema(ctx, p.TableName)
		if sch == nil || !sch.streamed {
			continue
		}
		k := p.Key
		if k == nil {
			k = map[string]json.RawMessage{}
			for _, name := range sch.keys {
				if v, ok := p.Item[name]; ok {
					k[name] = v
				}
			}
		}
		if len(k) != len(sch.keys) {
			continue
		}
		// An item named twice (DynamoDB refuses such a transaction; the emulator takes it)
		// is streamed once.
		id, _ := json.Marshal([]any{p.TableName, k})
		if !seen[string(id)] {
			seen[string(id)] = true
			keys = append(keys, itemKey{table: p.TableName, key: k, partition: partitionID(p.TableName, k[sch.hash])})
		}
	}
	return keys
}

// tableSchema describes a table once; nil when it cannot (no such table).
func (s *streamWrites) tableSchema(ctx context.Context, table string) *tableSchema {
	if v, ok := s.schema.Load(table); ok {
		return v.(*tableSchema)
	}
	s.describe.Lock()
	defer s.describe.Unlock()
	if v, ok := s.schema.Load(table); ok {
		return v.(*tableSchema) // described while this waited
	}
	var out struct {
		Table struct {
			KeySchema           []struct{ AttributeName, KeyType string }
			StreamSpecification *struct{ StreamEnabled bool }
			LatestStreamArn     string
		}
	}
	if err := s.call(ctx, "DescribeTable", map[string]any{"TableName": table}, &out); err != nil {
		return nil
	}
	sch := &tableSchema{streamed: out.Table.LatestStreamArn != "" || (out.Table.StreamSpecification != nil && out.Table.StreamSpecification.StreamEnabled)}
	for _, k := range out.Table.KeySchema {
		sch.keys = append(sch.keys, k.AttributeName)
		if k.KeyType == "HASH" {
			sch.hash = k.AttributeName
		}
	}
	s.schema.Store(table, sch)
	return sch
}

// getItems reads the items of keys (at most 100, a transaction's) straight from the
// emulator in one BatchGetItem: nil for an item there is none of.
func (s *streamWrites) getItems(ctx context.Context, keys []itemKey) ([]json.RawMessage, error) {
	req := map[string]map[string]any{}
	for _, k := range keys {
		if req[k.table] == nil {
			req[k.table] = map[string]any{"Keys": []any{}, "ConsistentRead": true}
		}
		req[k.table]["Keys"] = append(req[k.table]["Keys"].([]any), k.key)
	}
	var out struct {
		Responses map[string][]map[string]json.RawMessage
	}
	if err := s.call(ctx, "BatchGetItem", map[string]any{"RequestItems": req}, &out); err != nil {
		return nil, err
	}
	items := make([]json.RawMessage, len(keys))
	for i, k := range keys {
		for _, it := range out.Responses[k.table] {
			if hasKey(it, k.key) {
				items[i], _ = json.Marshal(it)
				break
			}
		}
	}
	return items, nil
}

// hasKey reports whether an item has the key's attributes.
func hasKey(item, key map[string]json.RawMessage) bool {
	for name, v := range key {
		if !sameItem(item[name], v) {
			return false
		}
	}
	return true
}

// call makes a DynamoDB API call straight to the emulator, past the endpoint's handlers.
func (s *streamWrites) call(ctx context.Context, op string, in any, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.emulator, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("X-Amz-Target", dynamoTarget+op)
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %d %s", op, resp.StatusCode, raw)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// sameItem compares two items as JSON values (attribute order does not count).
func sameItem(a, b json.RawMessage) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// serveRead serves a read once no streamed transaction writes a partition it names.
func (s *streamWrites) serveRead(w http.ResponseWriter, r *http.Request, next http.Handler, op string) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	parts := s.readPartitions(r.Context(), op, body)
	s.partitions.rlock(parts)
	defer s.partitions.runlock(parts)
	next.ServeHTTP(w, r)
}

// readPartitions returns the partitions a read names: those of its keys, or of a Query
// of a table (not of an index) by its partition key; nil for a read that names none.
func (s *streamWrites) readPartitions(ctx context.Context, op string, body []byte) []string {
	type get struct {
		TableName string
		Key       map[string]json.RawMessage
	}
	var gets []get
	switch op {
	case "GetItem":
		var in get
		if json.Unmarshal(body, &in) == nil {
			gets = append(gets, in)
		}
	case "BatchGetItem":
		var in struct {
			RequestItems map[string]struct{ Keys []map[string]json.RawMessage }
		}
		if json.Unmarshal(body, &in) == nil {
			for table, req := range in.RequestItems {
				for _, k := range req.Keys {
					gets = append(gets, get{table, k})
				}
			}
		}
	case "TransactGetItems":
		var in struct{ TransactItems []struct{ Get *get } }
		if json.Unmarshal(body, &in) == nil {
			for _, it := range in.TransactItems {
				if it.Get != nil {
					gets = append(gets, *it.Get)
				}
			}
		}
	case "Query":
		var in struct {
			TableName, IndexName, KeyConditionExpression string
			ExpressionAttributeNames                     map[string]string
			ExpressionAttributeValues                    map[string]json.RawMessage
		}
		if json.Unmarshal(body, &in) != nil || in.IndexName != "" {
			return nil
		}
		sch := s.tableSchema(ctx, in.TableName)
		if sch == nil || !sch.streamed {
			return nil
		}
		for _, m := range keyCondition.FindAllStringSubmatch(in.KeyConditionExpression, -1) {
			name := m[1]
			if alias, ok := in.ExpressionAttributeNames[name]; ok {
				name = alias
			}
			if v, ok := in.ExpressionAttributeValues[m[2]]; ok && name == sch.hash {
				return []string{partitionID(in.TableName, v)}
			}
		}
		return nil
	}
	var parts []string
	for _, g := range gets {
		if sch := s.tableSchema(ctx, g.TableName); sch != nil && sch.streamed {
			if v, ok := g.Key[sch.hash]; ok {
				parts = append(parts, partitionID(g.TableName, v))
			}
		}
	}
	return parts
}

// keyCondition finds the equality conditions of a KeyConditionExpression: name = :value.
var keyCondition = regexp.MustCompile(`(#?[A-Za-z0-9_]+)\s*=\s*(:[A-Za-z0-9_]+)`)

// partitionID names a table's partition by its partition key's value, as JSON whatever its
// attribute order or spacing.
func partitionID(table string, value json.RawMessage) string {
	var v any
	if json.Unmarshal(value, &v) == nil {
		value, _ = json.Marshal(v)
	}
	return table + "\x00" + string(value)
}

// partitionLocks are readers-writer locks of partitions: the streamed transaction (one at a
// time: streamWrites.mu) holds its partitions for writing, reads hold theirs for reading.
// A writer waiting for readers keeps new readers out of its partitions.
type partitionLocks struct {
	mu      sync.Mutex
	cond    *sync.Cond
	readers map[string]int
	writing map[string]bool
}

func (p *partitionLocks) init() {
	if p.cond == nil {
		p.cond = sync.NewCond(&p.mu)
		p.readers, p.writing = map[string]int{}, map[string]bool{}
	}
}

func (p *partitionLocks) rlock(parts []string) {
	if len(parts) == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.init()
	for slices.ContainsFunc(parts, func(k string) bool { return p.writing[k] }) {
		p.cond.Wait()
	}
	for _, k := range parts {
		p.readers[k]++
	}
}

func (p *partitionLocks) runlock(parts []string) {
	if len(parts) == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, k := range parts {
		if p.readers[k]--; p.readers[k] == 0 {
			delete(p.readers, k)
		}
	}
	p.cond.Broadcast()
}

func (p *partitionLocks) lock(parts []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.init()
	for _, k := range parts {
		p.writing[k] = true
	}
	for slices.ContainsFunc(parts, func(k string) bool { return p.readers[k] > 0 }) {
		p.cond.Wait()
	}
}

func (p *partitionLocks) unlock(parts []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, k := range parts {
		delete(p.writing, k)
	}
	p.cond.Broadcast()
}
