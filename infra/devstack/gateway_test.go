package devstack_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/a2aproject/a2a-go/v2/a2a"
	"github.com/a2aproject/a2a-go/v2/a2aclient"
	"github.com/a2aproject/a2a-go/v2/a2aclient/agentcard"

	"github.com/federation-gateway/gateway/infra/demo"
	"github.com/federation-gateway/gateway/infra/devstack"
	"github.com/federation-gateway/gateway/infra/localtest"
	"github.com/federation-gateway/gateway/shared/metrics"
)

// bearer adds a fresh demo credential to every request, as an agent's client would.
type bearer struct {
	agent *demo.Agent
	next  http.RoundTripper
}

func (b bearer) RoundTrip(req *http.Request) (*http.Response, error) {
	tok, err := demo.SignToken(b.agent.Key, b.agent.DID, "federation-gateway", time.Minute)
	if err != nil {
		return nil, err
	}
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+tok)
	return b.next.RoundTrip(req)
}

// The whole gateway as `make run` runs it: the demo federation, the real functions behind
// the local HTTP API. A demo agent of registry alpha reaches one of registry beta through
// POST /api/v1/route and, with the official a2a-go client, through the gateway's own A2A
// interface; the target checks the gateway's signature.
func TestGatewayEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every function")
	}
	ctx := context.Background()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	apiAddr := ln.Addr().String()
	ln.Close()
	fed, err := demo.Start(ctx, demo.Options{GatewayURL: "http://" + apiAddr})
	if err != nil {
		t.Fatal(err)
	}
	defer fed.Close()
	cfg := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(cfg, fed.Config(), 0o600); err != nil {
		t.Fatal(err)
	}
	root := localtest.RepoRoot(t)
	s, err := devstack.Start(ctx, devstack.Options{
		Template: filepath.Join(root, "template.yaml"), Config: cfg, StackName: "e2e",
		EndpointAddr: "127.0.0.1:0", APIAddr: apiAddr, WebSocketAddr: "127.0.0.1:0", Log: io.Discard, Secrets: fed.Secrets("local"),
		BuildDir: filepath.Join(os.TempDir(), "devstack-test-gateway-build"),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Invoke(ctx, "SyncFunction", []byte(`{"version":"0","detail-type":"Scheduled Event","source":"aws.events","detail":{}}`)); err != nil {
		t.Fatal(err)
	}

	sender := fed.Agent("acme/weather-bot")
	target := "did:agentvault:textkit/mirror"
	tok, _ := demo.SignToken(sender.Key, sender.DID, "federation-gateway", time.Minute)
	body := `{"from":"` + sender.DID + `","to":"` + target + `","payload":{"text":"hello"},"message_id":"e2e-1"}`
	resp, raw := do(t, "POST", s.APIURL+"/api/v1/route", strings.NewReader(body), map[string]string{"Authorization": "Bearer " + tok, "Content-Type": "application/json"})
	if resp.StatusCode != 200 || !strings.Contains(string(raw), `"gateway_signature":"valid"`) {
		t.Fatalf("route: %d %s", resp.StatusCode, raw)
	}
	// Without a traceparent, the correlation ID is the API Gateway request ID.
	if id := resp.Header.Get("X-Correlation-ID"); id == "" || id != resp.Header.Get("Apigw-Requestid") {
		t.Errorf("correlation ID %q, request ID %q", id, resp.Header.Get("Apigw-Requestid"))
	}

	card, err := agentcard.DefaultResolver.Resolve(ctx, s.APIURL)
	if err != nil {
		t.Fatalf("resolve the gateway's card: %v", err)
	}
	hc := &http.Client{Transport: bearer{agent: sender, next: http.DefaultTransport}, Timeout: 20 * time.Second}
	client, err := a2aclient.NewFromCard(ctx, card, a2aclient.WithJSONRPCTransport(hc))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Destroy()
	msg := a2a.NewMessage(a2a.MessageRoleUser, a2a.NewDataPart(map[string]any{"text": "hello over A2A"}))
	msg.Metadata = map[string]any{"federation.to": target}
	res, err := client.SendMessage(ctx, &a2a.SendMessageRequest{Message: msg})
	if err != nil {
		t.Fatalf("SendMessage through /a2a: %v", err)
	}
	reply, ok := res.(*a2a.Message)
	if !ok {
		t.Fatalf("the gateway answered %T", res)
	}
	out, _ := json.Marshal(reply)
	if !strings.Contains(string(out), `delivered`) || !strings.Contains(string(out), `"gateway_signature":"valid"`) {
		t.Errorf("the gateway's answer: %s", out)
	}

	// The functions' metrics, read from their output as CloudWatch reads their logs: the
	// two messages delivered (route and /a2a), and the sync of each registry.
	var page struct {
		Namespace string
		Series    []metrics.Series
	}
	read := func() {
		resp, raw = do(t, "GET", s.APIURL+devstack.MetricsPath+"?format=json", nil, nil)
		if resp.StatusCode != 200 || json.Unmarshal(raw, &page) != nil || page.Namespace != metrics.Namespace {
			t.Fatalf("%s: %d %s", devstack.MetricsPath, resp.StatusCode, raw)
		}
	}
	sum := func(metric string, dims map[string]string) (total float64, n int) {
		for _, s := range page.Series {
			match := s.Metric == metric && len(s.Dimensions) == len(dims)+1 // and Stage
			for k, v := range dims {
				match = match && s.Dimensions[k] == v
			}
			if match {
				total, n = total+s.Sum, n+s.SampleCount
			}
		}
		return total, n
	}
	// The lines are read from the functions' output as they come: the last may trail
	// the answer by a moment.
	delivered := map[string]string{metrics.DimFunction: "route", metrics.DimOutcome: "delivered"}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		read()
		if got, _ := sum(metrics.RoutedMessages, delivered); got >= 2 || time.Now().After(deadline) {
			break
		}
	}
	if got, _ := sum(metrics.RoutedMessages, delivered); got != 2 {
		t.Errorf("delivered messages: %v, want 2; %s", got, raw)
	}
	if _, n := sum(metrics.RouteDeliveryTime, map[string]string{metrics.DimFunction: "route", metrics.DimOutcome: "delivered"}); n != 2 {
		t.Errorf("delivery times: %d, want 2", n)
	}
	for _, reg := range []string{"alpha", "beta"} {
		if got, _ := sum(metrics.SyncChanges, map[string]string{metrics.DimFunction: "sync", metrics.DimRegistry: reg}); got < 1 {
			t.Errorf("changes synced from %s: %v", reg, got)
		}
		if got, n := sum(metrics.RegistryHealthy, map[string]string{metrics.DimFunction: "sync", metrics.DimRegistry: reg}); n == 0 || got != float64(n) {
			t.Errorf("%s healthy %v of %d", reg, got, n)
		}
	}
	if resp, raw := do(t, "GET", s.APIURL+devstack.MetricsPath, nil, nil); resp.StatusCode != 200 ||
		!strings.Contains(string(raw), "RoutedMessages") || !strings.Contains(string(raw), "Registry=alpha") {
		t.Errorf("the metrics table: %d %s", resp.StatusCode, raw)
	}
}
