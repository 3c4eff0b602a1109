package localstack

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Meter counts what callers asked of the endpoint, the way AWS bills it: Lambda
// invocations per function, Step Functions API calls, and DynamoDB request units —
// write units per item written (1 KB each, twice for a transactional write) and read
// units per item read (4 KB each, half for an eventually consistent read). Item sizes
// are computed from the items' attribute names and values as DynamoDB does, to the
// byte or close to it. Benchmarks read it (make bench); it costs a JSON parse of the
// DynamoDB requests and answers it sees.
type Meter struct {
	mu     sync.Mutex
	counts map[string]float64
}

func newMeter() *Meter { return &Meter{counts: map[string]float64{}} }

// Snapshot returns the counts so far: "lambda:<function>" invocations and
// "lambda-ms:<function>" their billed milliseconds,
// "states:<Action>" calls, "dynamodb:<Operation>" calls, "dynamodb:WRU" and
// "dynamodb:RRU" request units.
func (m *Meter) Snapshot() map[string]float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]float64, len(m.counts))
	for k, v := range m.counts {
		out[k] = v
	}
	return out
}

// addDuration adds an invocation's duration, in milliseconds rounded up as Lambda bills
// it, to "lambda-ms:<function>".
func (m *Meter) addDuration(fn string, d time.Duration) {
	m.add("lambda-ms:"+fn, math.Ceil(float64(d)/float64(time.Millisecond)))
}

func (m *Meter) add(key string, n float64) {
	m.mu.Lock()
	m.counts[key] += n
	m.mu.Unlock()
}

// UnmeteredHeader marks a request the meter does not count: a benchmark's own reads.
const UnmeteredHeader = "X-Localstack-Unmetered"

// watch counts the requests through next.
func (m *Meter) watch(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(UnmeteredHeader) != "" {
			next.ServeHTTP(w, r)
			return
		}
		target := r.Header.Get("X-Amz-Target")
		switch {
		case strings.HasPrefix(r.URL.Path, "/2015-03-31/functions/") && strings.HasSuffix(r.URL.Path, "/invocations"):
			fn := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/2015-03-31/functions/"), "/invocations")
			m.add("lambda:"+fn, 1)
			start := time.Now()
			next.ServeHTTP(w, r)
			// Step Functions Tasks' invocations too: sfntasks.go makes them through the
			// endpoint, after the engine's hand-over, which the meter never sees.
			m.addDuration(fn, time.Since(start))
			return
		case strings.HasPrefix(target, "AWSStepFunctions."):
			m.add("states:"+strings.TrimPrefix(target, "AWSStepFunctions."), 1)
		case strings.HasPrefix(target, "DynamoDB_20120810."):
			op := strings.TrimPrefix(target, "DynamoDB_20120810.")
			m.add("dynamodb:"+op, 1)
			body, ok := readBody(w, r)
			if !ok {
				return
			}
			m.writeUnits(op, body)
			if isRead(op) {
				rec := &recorder{ResponseWriter: w}
				next.ServeHTTP(rec, r)
				m.readUnits(op, body, rec.body.Bytes())
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func isRead(op string) bool {
	return op == "GetItem" || op == "BatchGetItem" || op == "Query" || op == "Scan" || op == "TransactGetItems"
}

type recorder struct {
	http.ResponseWriter
	body bytes.Buffer
}

func (r *recorder) Write(b []byte) (int, error) {
	r.body.Write(b)
	return r.ResponseWriter.Write(b)
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (m *Meter) writeUnits(op string, body []byte) {
	var req struct {
		Item          map[string]any
		TransactItems []map[string]struct{ Item map[string]any }
		RequestItems  map[string][]struct {
			PutRequest *struct{ Item map[string]any }
		}
	}
	switch op {
	case "PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem":
	default:
		return
	}
	if json.Unmarshal(body, &req) != nil {
		return
	}
	units := 0.0
	switch op {
	case "PutItem":
		units = wu(itemSize(req.Item))
	case "UpdateItem", "DeleteItem":
		units = 1 // the item's size after the update is not in the request: its floor
	case "TransactWriteItems":
		for _, ti := range req.TransactItems {
			for kind, x := range ti {
				if kind == "Put" {
					units += 2 * wu(itemSize(x.Item))
				} else {
					units += 2
				}
			}
		}
	case "BatchWriteItem":
		for _, reqs := range req.RequestItems {
			for _, wr := range reqs {
				if wr.PutRequest != nil {
					units += wu(itemSize(wr.PutRequest.Item))
				} else {
					units++
				}
			}
		}
	}
	m.add("dynamodb:WRU", units)
}

func (m *Meter) readUnits(op string, reqBody, respBody []byte) {
	var req struct {
		ConsistentRead bool
		RequestItems   map[string]struct{ ConsistentRead bool }
	}
	_ = json.Unmarshal(reqBody, &req)
	var resp struct {
		Item      map[string]any
		Items     []map[string]any
		Responses json.RawMessage
	}
	if json.Unmarshal(respBody, &resp) != nil {
		return
	}
	factor := 0.5
	if req.ConsistentRead {
		factor = 1
	}
	units := 0.0
	switch op {
	case "GetItem":
		units = factor * ru(itemSize(resp.Item))
	case "Query", "Scan":
		size := 0
		for _, it := range resp.Items {
			size += itemSize(it)
		}
		units = factor * ru(size) // a query is billed on the total size it read
	case "BatchGetItem":
		var byTable map[string][]map[string]any
		_ = json.Unmarshal(resp.Responses, &byTable)
		for table, items := range byTable {
			f := 0.5
			if req.RequestItems[table].ConsistentRead {
				f = 1
			}
			for _, it := range items {
				units += f * ru(itemSize(it))
			}
		}
	case "TransactGetItems":
		var list []struct{ Item map[string]any }
		_ = json.Unmarshal(resp.Responses, &list)
		for _, x := range list {
			units += 2 * ru(itemSize(x.Item))
		}
	}
	m.add("dynamodb:RRU", units)
}

func wu(size int) float64 { return math.Max(1, math.Ceil(float64(size)/1024)) }
func ru(size int) float64 { return math.Max(1, math.Ceil(float64(size)/4096)) }

// itemSize is an item's size as DynamoDB counts it: each attribute's name and value.
func itemSize(item map[string]any) int {
	n := 0
	for name, v := range item {
		n += len(name) + valueSize(v)
	}
	return n
}

func valueSize(v any) int {
	av, ok := v.(map[string]any)
	if !ok {
		return 0
	}
	for typ, x := range av {
		switch typ {
		case "S", "B":
			s, _ := x.(string)
			return len(s)
		case "N":
			s, _ := x.(string)
			return (len(strings.TrimLeft(s, "-0."))+1)/2 + 1
		case "BOOL", "NULL":
			return 1
		case "L":
			n := 3
			for _, e := range asSlice(x) {
				n += 1 + valueSize(e)
			}
			return n
		case "M":
			m, _ := x.(map[string]any)
			return 3 + itemSize(m) + len(m)
		case "SS", "NS", "BS":
			n := 0
			for _, e := range asSlice(x) {
				s, _ := e.(string)
				n += len(s)
			}
			return n
		}
	}
	return 0
}
