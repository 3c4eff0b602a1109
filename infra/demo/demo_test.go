package demo_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/a2aproject/a2a-go/v2/a2a"
	"github.com/a2aproject/a2a-go/v2/a2aclient"
	"github.com/a2aproject/a2a-go/v2/a2aclient/agentcard"

	"github.com/federation-gateway/gateway/infra/demo"
	"github.com/federation-gateway/gateway/shared/config"
	"github.com/federation-gateway/gateway/shared/federation"
)

func start(t *testing.T) *demo.Federation {
	t.Helper()
	f, err := demo.Start(context.Background(), demo.Options{})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return f
}

func TestConfigParses(t *testing.T) {
	t.Parallel()
	f := start(t)
	doc, err := config.Parse(f.Config())
	if err != nil {
		t.Fatalf("config.Parse: %v\n%s", err, f.Config())
	}
	want := map[string]string{"alpha": federation.KindAgentVault, "beta": federation.KindAgentVaultFederation}
	if len(doc.Registries) != 2 || !doc.AllowPrivateNetworks {
		t.Fatalf("document = %+v", doc)
	}
	for _, r := range doc.Registries {
		if want[r.ID] != r.Kind || r.URL != f.Registry(r.ID).URL() {
			t.Errorf("registry %+v; want kind %s, url %s", r, want[r.ID], f.Registry(r.ID).URL())
		}
	}
}

func TestCatalog(t *testing.T) {
	t.Parallel()
	f := start(t)
	if n := len(f.Agents()); n < 10 || n > 20 {
		t.Errorf("%d agents, want 10-20", n)
	}
	alpha, _ := f.Registry(demo.Alpha).Find("acme/weather-bot")
	beta, _ := f.Registry(demo.Beta).Find("acme/weather-bot")
	if alpha.ID == "" || beta.ID == "" {
		t.Fatal("acme/weather-bot is not listed by both registries")
	}
	if alpha.Card.DID == "" || alpha.Card.DID != beta.Card.DID || !strings.HasPrefix(alpha.Card.DID, "did:key:z6Mk") {
		t.Errorf("duplicate DIDs %q and %q: want the same did:key", alpha.Card.DID, beta.Card.DID)
	}
	if alpha.ID == beta.ID {
		t.Error("the duplicate has the same card ID in both registries; real registries assign their own")
	}
	if beta.SourceRegistry != f.Registry(demo.Alpha).Identity {
		t.Errorf("beta's copy has source_registry %q, want alpha's", beta.SourceRegistry)
	}
	for _, r := range f.Registries() {
		for _, rec := range r.Records() {
			c := rec.Card
			if c.HumanReadableID == "" || c.URL == "" || c.Capabilities.A2AVersion != "1.0" || c.Capabilities.Type == "" || len(c.Skills) == 0 || len(c.AuthSchemes) == 0 {
				t.Errorf("%s: incomplete card %+v", r.ID, c)
			}
			if f.Agent(c.HumanReadableID) == nil || f.Agent(c.HumanReadableID).URL != c.URL {
				t.Errorf("%s: card %s points at no live agent", r.ID, c.HumanReadableID)
			}
		}
	}
}

func TestStopRegistry(t *testing.T) {
	t.Parallel()
	f := start(t)
	list := f.Registry(demo.Alpha).URL() + "/api/v1/agent-cards/"
	client := &http.Client{Timeout: 2 * time.Second}
	if err := f.StopRegistry(demo.Alpha); err != nil {
		t.Fatal(err)
	}
	if resp, err := client.Get(list); err == nil {
		resp.Body.Close()
		t.Fatalf("GET a stopped registry: status %d, want a connection error", resp.StatusCode)
	}
	if code := getJSON(t, f.Registry(demo.Beta).URL()+"/api/v1/agent-cards/", nil); code != http.StatusOK {
		t.Errorf("beta while alpha is down: status %d", code)
	}
	if err := f.StartRegistry(demo.Alpha); err != nil {
		t.Fatal(err)
	}
	var p listPage
	if code := getJSON(t, list, &p); code != http.StatusOK || p.Pagination.TotalItems == 0 {
		t.Errorf("alpha after restart: status %d, %d cards", code, p.Pagination.TotalItems)
	}
	if err := f.StartRegistry(demo.Alpha); err == nil {
		t.Error("starting a running registry: no error")
	}
	if err := f.StopRegistry("nope"); err == nil {
		t.Error("stopping an unknown registry: no error")
	}
}

// send resolves the agent's card from its base URL and sends it one message with an
// a2a-go client, the way the gateway's router does.
func send(t *testing.T, baseURL string, msg *a2a.Message) (a2a.SendMessageResult, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	card, err := agentcard.DefaultResolver.Resolve(ctx, baseURL)
	if err != nil {
		t.Fatalf("resolve %s: %v", baseURL, err)
	}
	client, err := a2aclient.NewFromCard(ctx, card)
	if err != nil {
		t.Fatalf("client for %s: %v", baseURL, err)
	}
	defer client.Destroy()
	return client.SendMessage(ctx, &a2a.SendMessageRequest{Message: msg})
}

// replyText is the text of a message reply, or of a completed task's artifacts.
func replyText(t *testing.T, res a2a.SendMessageResult) (string, map[string]any) {
	t.Helper()
	var parts []*a2a.Part
	switch r := res.(type) {
	case *a2a.Message:
		parts = r.Parts
	case *a2a.Task:
		if r.Status.State != a2a.TaskStateCompleted {
			t.Fatalf("task %s is %s", r.ID, r.Status.State)
		}
		for _, a := range r.Artifacts {
			parts = append(parts, a.Parts...)
		}
	default:
		t.Fatalf("result %T", res)
	}
	var text []string
	var data map[string]any
	for _, p := range parts {
		if s := p.Text(); s != "" {
			text = append(text, s)
		}
		if d, ok := p.Data().(map[string]any); ok {
			data = d
		}
	}
	return strings.Join(text, "\n"), data
}

func TestA2ARoundTrip(t *testing.T) {
	t.Parallel()
	f := start(t)
	withSkill := func(text, skill string) *a2a.Message {
		m := a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart(text))
		m.Metadata = map[string]any{demo.SkillMetadataKey: skill}
		return m
	}
	tests := []struct {
		agent string
		msg   *a2a.Message
		want  string
		task  bool
	}{
		{"textkit/shouter", a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart("hello federation")), "HELLO FEDERATION", false},
		{"textkit/shouter", withSkill("hello federation", "echo"), "hello federation", false},
		{"lingua/pig-latin", a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart("Hello world!")), "Ellohay orldway!", false},
		{"polyglot/translator", a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart("hello friend")), "hola amigo", false},
		{"acme/weather-bot", a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart("weather in paris")), "Paris: sunny, 21°C", false},
		{"acme/weather-bot", a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart("echo: ping")), "ping", false},
		{"textkit/counter", a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart("one two three")), "3 words, 13 characters, 1 lines", false},
		{"textkit/mirror", a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart("stressed")), "desserts", false},
		{"moodlabs/sentiment", a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart("I love this great gateway")), "positive (score 4)", false},
		{"numerix/calculator", a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart("0.1 0.2 3")), "sum = 3.3", true},
		{"numerix/calculator", a2a.NewMessage(a2a.MessageRoleUser, a2a.NewDataPart(map[string]any{"numbers": []any{2, 3, 7}})), "sum = 12", true},
		{"numerix/statistics", a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart("4 8 15 16 23 42")), "mean = 18", true},
		{"findit/doc-search", a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart("agent card")), `3 results for "agent card": Agent cards; Identity verification; Registries`, false},
	}
	for _, tt := range tests {
		a := f.Agent(tt.agent)
		res, err := send(t, a.URL, tt.msg)
		if err != nil {
			t.Errorf("%s: SendMessage: %v", tt.agent, err)
			continue
		}
		if _, isTask := res.(*a2a.Task); isTask != tt.task {
			t.Errorf("%s: result %T, want a task: %v", tt.agent, res, tt.task)
		}
		if got, _ := replyText(t, res); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.agent, got, tt.want)
		}
	}
}

func TestA2AReplyNamesAgentAndSkill(t *testing.T) {
	t.Parallel()
	f := start(t)
	res, err := send(t, f.Agent("acme/weather-bot").URL, a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart("Tokyo")))
	if err != nil {
		t.Fatal(err)
	}
	msg, ok := res.(*a2a.Message)
	if !ok {
		t.Fatalf("result %T, want a message", res)
	}
	if msg.Role != a2a.MessageRoleAgent || msg.Metadata["agent"] != "acme/weather-bot" || msg.Metadata["skill"] != "weather-lookup" {
		t.Errorf("reply role %s, metadata %v", msg.Role, msg.Metadata)
	}
	if _, data := replyText(t, res); data["city"] != "Tokyo" || data["temperature_c"] != float64(18) {
		t.Errorf("data part = %v", data)
	}
}

func TestA2AUnknownSkillIsRejected(t *testing.T) {
	t.Parallel()
	f := start(t)
	m := a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart("x"))
	m.Metadata = map[string]any{demo.SkillMetadataKey: "teleport"}
	res, err := send(t, f.Agent("textkit/mirror").URL, m)
	if err != nil {
		t.Fatal(err)
	}
	task, ok := res.(*a2a.Task)
	if !ok || task.Status.State != a2a.TaskStateRejected {
		t.Fatalf("result %#v, want a rejected task", res)
	}
	if task.Status.Message == nil || !strings.Contains(task.Status.Message.Parts[0].Text(), "reverse, echo") {
		t.Errorf("rejection does not name the skills: %+v", task.Status.Message)
	}
}

// TestA2AVersionHeader checks the JSON-RPC binding on the wire: a request for another
// major version gets VersionNotSupportedError (-32009).
func TestA2AVersionHeader(t *testing.T) {
	t.Parallel()
	f := start(t)
	body := `{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"message":{"messageId":"m1","role":"ROLE_USER","parts":[{"text":"hi"}]}}}`
	for _, tt := range []struct {
		version string
		code    int // 0: a result
	}{{"1.0", 0}, {"", 0}, {"0.3", -32009}} {
		req, _ := http.NewRequest(http.MethodPost, f.Agent("textkit/shouter").URL, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if tt.version != "" {
			req.Header.Set("A2A-Version", tt.version)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			Result map[string]json.RawMessage `json:"result"`
			Error  *struct{ Code int }        `json:"error"`
		}
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case tt.code == 0 && (out.Error != nil || out.Result["message"] == nil):
			t.Errorf("A2A-Version %q: error %+v, result %s; want a message", tt.version, out.Error, out.Result)
		case tt.code != 0 && (out.Error == nil || out.Error.Code != tt.code):
			t.Errorf("A2A-Version %q: error %+v, want code %d", tt.version, out.Error, tt.code)
		}
	}
}

func TestAgentCardServed(t *testing.T) {
	t.Parallel()
	f := start(t)
	a := f.Agent("globex/storm-watch")
	card, err := agentcard.DefaultResolver.Resolve(context.Background(), a.URL)
	if err != nil {
		t.Fatal(err)
	}
	iface := card.SupportedInterfaces[0]
	if iface.URL != a.URL || iface.ProtocolBinding != a2a.TransportProtocolJSONRPC || iface.ProtocolVersion != "1.0" {
		t.Errorf("interface = %+v", iface)
	}
	if len(card.Skills) != 2 || card.Skills[0].ID != "severe-alerts" || len(card.Skills[0].Tags) == 0 {
		t.Errorf("skills = %+v", card.Skills)
	}
	var index []map[string]string
	if code := getJSON(t, f.AgentsURL+"/agents", &index); code != http.StatusOK || len(index) != len(f.Agents()) {
		t.Errorf("index: status %d, %d agents", code, len(index))
	}
}

func TestStartFailsOnBusyPort(t *testing.T) {
	t.Parallel()
	f := start(t)
	busy := strings.TrimPrefix(f.Registry(demo.Alpha).URL(), "http://")
	_, err := demo.Start(context.Background(), demo.Options{AlphaAddr: busy})
	if err == nil || !strings.Contains(err.Error(), "alpha") {
		t.Errorf("Start on a busy port: %v, want an error naming alpha", err)
	}
}

func TestControlEndpoint(t *testing.T) {
	f, err := demo.Start(context.Background(), demo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	post := func(path string) int {
		resp, err := http.Post(f.AgentsURL+path, "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("/demo/registries/alpha/stop"); code != 200 || f.Registry("alpha").Running() {
		t.Fatalf("stop: %d, running %v", code, f.Registry("alpha").Running())
	}
	if code := post("/demo/registries/alpha/stop"); code != 200 || f.Registry("alpha").Running() {
		t.Errorf("stopping a stopped registry: %d", code)
	}
	if code := post("/demo/registries/alpha/start"); code != 200 || !f.Registry("alpha").Running() {
		t.Errorf("start: %d", code)
	}
	if code := post("/demo/registries/gamma/stop"); code != 404 {
		t.Errorf("unknown registry: %d", code)
	}
	if code := post("/demo/registries/alpha/explode"); code != 404 {
		t.Errorf("unknown action: %d", code)
	}
}
