// Package bridgesim drives token bridge transfers through the whole local gateway, as
// `make run` runs it: the demo federation and its token services, the real functions
// behind the local HTTP API, the real state machine on the local endpoint. It injects
// faults at every step and checks the outcome against the token services' own books.
// The fault-injection test and `make bench` both use it.
package bridgesim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/shopspring/decimal"

	"github.com/federation-gateway/gateway/infra/demo"
	"github.com/federation-gateway/gateway/infra/devstack"
	"github.com/federation-gateway/gateway/localstack"
	"github.com/federation-gateway/gateway/shared/bridge"
	"github.com/federation-gateway/gateway/shared/config"
	"github.com/federation-gateway/gateway/shared/dynamo"
)

// Options configure a Sim.
type Options struct {
	Root     string    // the repository (template.yaml)
	BuildDir string    // where the functions are built
	Log      io.Writer // the stack's log lines; nil discards them
	// TEGTimeout bounds one token service request of the gateway (default 1s), so that a
	// "timeout" fault costs little time, yet a loaded machine does not time out by itself.
	TEGTimeout time.Duration
	// Funding is what each sending agent is given on its registry (default 100000).
	Funding decimal.Decimal
}

// Sim is a running local gateway with its demo federation.
type Sim struct {
	Fed   *demo.Federation
	Stack *devstack.Stack
	Store *dynamo.Store

	client  *http.Client
	issued  decimal.Decimal
	initial decimal.Decimal
	faults  *faultPlan
}

// Senders are the demo agents with a did:key (they can sign credentials), by registry.
var Senders = map[string][]string{
	demo.Alpha: {"acme/weather-bot", "numerix/calculator"},
	demo.Beta:  {"polyglot/translator"},
}

// Receivers are active demo agents of each registry.
var Receivers = map[string][]string{
	demo.Alpha: {"did:agentvault:textkit/shouter", "did:agentvault:textkit/counter", "did:agentvault:findit/web-search"},
	demo.Beta:  {"did:agentvault:textkit/mirror", "did:agentvault:moodlabs/sentiment", "did:agentvault:numerix/statistics"},
}

// Start starts the demo federation and the gateway on free ports.
func Start(ctx context.Context, opts Options) (_ *Sim, err error) {
	if opts.TEGTimeout == 0 {
		opts.TEGTimeout = time.Second
	}
	if opts.Funding.IsZero() {
		opts.Funding = decimal.NewFromInt(100000)
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	fed, err := demo.Start(ctx, demo.Options{})
	if err != nil {
		return nil, err
	}
	s := &Sim{Fed: fed, client: &http.Client{Timeout: 30 * time.Second}, faults: newFaultPlan()}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	for reg, names := range Senders {
		for _, n := range names {
			fed.TEG(reg).Issue(fed.Agent(n).Account(), opts.Funding)
			s.issued = s.issued.Add(opts.Funding)
		}
	}
	s.initial = s.Value()
	for _, reg := range []string{demo.Alpha, demo.Beta} {
		fed.TEG(reg).SetFaults(s.faults.pick(reg, s))
	}

	var doc config.Document
	if err := json.Unmarshal(fed.Config(), &doc); err != nil {
		return nil, err
	}
	doc.Bridge.TEGTimeoutMS = int(opts.TEGTimeout / time.Millisecond)
	raw, _ := json.Marshal(doc)
	dir, err := os.MkdirTemp("", "bridgesim")
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "config.json")
	if err := os.WriteFile(cfgPath, raw, 0o600); err != nil {
		return nil, err
	}
	s.Stack, err = devstack.Start(ctx, devstack.Options{
		Template: filepath.Join(opts.Root, "template.yaml"), Config: cfgPath, StackName: "bridgesim",
		EndpointAddr: "127.0.0.1:0", APIAddr: "127.0.0.1:0", WebSocketAddr: "127.0.0.1:0", BuildDir: opts.BuildDir, Log: opts.Log, QuietFunctions: opts.Log == io.Discard,
		Secrets: fed.Secrets("local"),
		// The schedules (sync, reconcile) run when the sim says so.
		Functions: []string{"BridgeFunction", "BridgeTaskFunction", "OperatorFunction", "ReconcileFunction", "SyncFunction", "StatusFunction"},
	})
	if err != nil {
		return nil, err
	}
	// The sim's own reads are not the gateway's: the endpoint's meter leaves them out.
	db := dynamodb.NewFromConfig(devstack.LocalAWSConfig(s.Stack.EndpointURL), func(o *dynamodb.Options) {
		o.DisableValidateResponseChecksum = true
		o.APIOptions = append(o.APIOptions, smithyhttp.AddHeaderValue(localstack.UnmeteredHeader, "1"))
	})
	s.Store = dynamo.NewStore(db, s.Stack.Template.Tables[0].Name)
	if _, err := s.Stack.Invoke(ctx, "SyncFunction", []byte(`{"detail-type":"Scheduled Event","source":"aws.events","detail":{}}`)); err != nil {
		return nil, fmt.Errorf("sync: %w", err)
	}
	for _, reg := range []string{demo.Alpha, demo.Beta} {
		if _, err := s.Operate(ctx, bridge.OperatorRequest{Action: bridge.ActionSeed, Registry: reg, RequestID: "sim-seed-" + reg, Operator: "bridgesim"}); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Close stops everything.
func (s *Sim) Close() {
	if s.Stack != nil {
		s.Stack.Close()
	}
	_ = s.Fed.Close()
}

// Operate invokes the operator function.
func (s *Sim) Operate(ctx context.Context, req bridge.OperatorRequest) (bridge.OperatorResult, error) {
	payload, _ := json.Marshal(req)
	out, err := s.Stack.Invoke(ctx, "OperatorFunction", payload)
	if err != nil {
		return bridge.OperatorResult{}, err
	}
	var res bridge.OperatorResult
	return res, json.Unmarshal(out, &res)
}

// Reconcile invokes the reconciliation function and returns each registry's drift.
func (s *Sim) Reconcile(ctx context.Context) (map[string]string, error) {
	out, err := s.Stack.Invoke(ctx, "ReconcileFunction", []byte(`{"detail-type":"Scheduled Event","source":"aws.events","detail":{}}`))
	if err != nil {
		return nil, err
	}
	var res struct {
		Registries []struct{ Registry, Drift, Error string }
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return nil, err
	}
	drift := map[string]string{}
	for _, r := range res.Registries {
		drift[r.Registry] = r.Drift
		if r.Error != "" {
			drift[r.Registry] = "error: " + r.Error
		}
	}
	return drift, nil
}

// Value is the sum of every balance on both token services.
func (s *Sim) Value() decimal.Decimal {
	sum := decimal.Zero
	for _, reg := range []string{demo.Alpha, demo.Beta} {
		for _, b := range s.Fed.TEG(reg).Balances() {
			sum = sum.Add(b)
		}
	}
	return sum
}

// Submit asks the gateway to bridge a deposit as the demo agent sender, as an agent would
// over HTTP; a 429 waits its Retry-After and a 5xx is tried again.
func (s *Sim) Submit(ctx context.Context, sender string, req bridge.Request, key string) (int, bridge.View, error) {
	a := s.Fed.Agent(sender)
	body, _ := json.Marshal(req)
	for attempt := 0; ; attempt++ {
		tok, err := demo.SignToken(a.Key, a.DID, "federation-gateway", time.Minute)
		if err != nil {
			return 0, bridge.View{}, err
		}
		hr, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.Stack.APIURL+"/api/v1/bridge", bytes.NewReader(body))
		hr.Header.Set("Authorization", "Bearer "+tok)
		hr.Header.Set("Content-Type", "application/json")
		if key != "" {
			hr.Header.Set("Idempotency-Key", key)
		}
		resp, err := s.client.Do(hr)
		if err != nil {
			if attempt < 5 {
				continue
			}
			return 0, bridge.View{}, err
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusTooManyRequests && attempt < 20:
			secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
			time.Sleep(time.Duration(max(secs, 1)) * time.Second)
			continue
		case resp.StatusCode >= 500 && attempt < 5:
			time.Sleep(200 * time.Millisecond)
			continue
		case resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK:
			return resp.StatusCode, bridge.View{}, fmt.Errorf("POST /api/v1/bridge: %d %s", resp.StatusCode, raw)
		}
		var v bridge.View
		return resp.StatusCode, v, json.Unmarshal(raw, &v)
	}
}

// Get follows a transfer over HTTP as the demo agent who sent it.
func (s *Sim) Get(ctx context.Context, sender, id string) (bridge.View, error) {
	a := s.Fed.Agent(sender)
	tok, err := demo.SignToken(a.Key, a.DID, "federation-gateway", time.Minute)
	if err != nil {
		return bridge.View{}, err
	}
	hr, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.Stack.APIURL+"/api/v1/bridge/"+id, nil)
	hr.Header.Set("Authorization", "Bearer "+tok)
	resp, err := s.client.Do(hr)
	if err != nil {
		return bridge.View{}, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return bridge.View{}, fmt.Errorf("GET %s: %d %s", id, resp.StatusCode, raw)
	}
	var v bridge.View
	return v, json.Unmarshal(raw, &v)
}

// wait polls the table until every transfer is final or parked, or the deadline.
func (s *Sim) wait(ctx context.Context, ids []string, deadline time.Duration) (map[string]bridge.Transfer, error) {
	end := time.Now().Add(deadline)
	for {
		got := map[string]bridge.Transfer{}
		for start := 0; start < len(ids); start += 100 {
			part, err := s.Store.Transfers(ctx, ids[start:min(len(ids), start+100)])
			if err != nil {
				return nil, err
			}
			for k, v := range part {
				got[k] = v
			}
		}
		done := 0
		for _, t := range got {
			if bridge.Final(t.Status) || t.Status == bridge.StatusManualReview {
				done++
			}
		}
		if done == len(ids) || time.Now().After(end) {
			return got, nil
		}
		select {
		case <-ctx.Done():
			return got, ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}
