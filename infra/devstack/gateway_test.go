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
}
