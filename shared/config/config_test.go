package config_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/federation-gateway/gateway/infra/localtest"
	"github.com/federation-gateway/gateway/shared/bridge"
	"github.com/federation-gateway/gateway/shared/config"
	"github.com/federation-gateway/gateway/shared/ssmparam"
)

const validDoc = `{
  "registries": [
    {"id": "alpha", "url": "https://registry-a.example", "kind": "agentvault", "credentials_secret": "federation-gateway/alpha"},
    {"id": "beta", "url": "https://registry-b.example", "kind": "agentvault-federation"},
    {"id": "agents", "url": "https://agents.example", "kind": "a2a", "agents": ["https://agent-1.example"]}
  ]
}`

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadFromFile(t *testing.T) {
	cfg, err := config.Load(context.Background(), env(map[string]string{
		"STAGE": "dev", "TABLE_NAME": "t", "CONFIG_FILE": writeFile(t, validDoc), "GATEWAY_VERSION": "1.2.3",
	}), nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if cfg.Stage != "dev" || cfg.Table != "t" || cfg.Version != "1.2.3" || cfg.LogLevel != "info" {
		t.Errorf("settings = %+v", cfg)
	}
	if len(cfg.Registries) != 3 || cfg.Registries[0].CredentialsSecret != "federation-gateway/alpha" || cfg.Registries[2].Agents[0] != "https://agent-1.example" {
		t.Errorf("registries = %+v", cfg.Registries)
	}
	if cfg.LocalEndpoint {
		t.Error("LocalEndpoint is true without AWS_ENDPOINT_URL")
	}
}

// The SSM path is exercised against the real SSM API of the local endpoint.
func TestLoadFromSSMParameter(t *testing.T) {
	ctx := context.Background()
	client := ssm.NewFromConfig(localtest.AWSConfig(t))
	params := ssmparam.New(client)
	name := fmt.Sprintf("/federation-gateway/test-%d/config", time.Now().UnixNano())
	if _, err := client.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String(validDoc), Type: "String"}); err != nil {
		t.Fatalf("put parameter: %v", err)
	}
	cfg, err := config.Load(ctx, env(map[string]string{
		"STAGE": "dev", "TABLE_NAME": "t", "CONFIG_PARAMETER": name, "AWS_ENDPOINT_URL": localtest.Endpoint(t).URL,
	}), params)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if len(cfg.Registries) != 3 || !cfg.LocalEndpoint {
		t.Errorf("cfg = %+v", cfg)
	}

	_, err = config.Load(ctx, env(map[string]string{"STAGE": "dev", "TABLE_NAME": "t", "CONFIG_PARAMETER": name + "-missing"}), params)
	if err == nil || !strings.Contains(err.Error(), "read SSM parameter "+name+"-missing") {
		t.Errorf("missing parameter: err = %v", err)
	}
}

func TestLoadReportsEveryProblem(t *testing.T) {
	tests := []struct {
		name string
		vars map[string]string
		want []string
	}{
		{"nothing set", map[string]string{},
			[]string{"STAGE is not set", "TABLE_NAME is not set", "neither CONFIG_PARAMETER", "CONFIG_FILE"}},
		{"bad log level", map[string]string{"STAGE": "s", "TABLE_NAME": "t", "LOG_LEVEL": "loud", "CONFIG_FILE": writeFile(t, `{}`)},
			[]string{`LOG_LEVEL="loud"`}},
		{"missing file", map[string]string{"STAGE": "s", "TABLE_NAME": "t", "CONFIG_FILE": "/nonexistent/config.json"},
			[]string{"CONFIG_FILE", "no such file"}},
		{"invalid document", map[string]string{"STAGE": "s", "TABLE_NAME": "t", "CONFIG_FILE": writeFile(t, `{"registries": [{"id": "A"}]}`)},
			[]string{"registries[0].id", "registries[0].kind", "registries[0].url"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Load(context.Background(), env(tt.vars), nil)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name, doc string
		wantErr   string // "" for valid
	}{
		{"empty registries", `{"registries": []}`, ""},
		{"empty object", `{}`, ""},
		{"valid", validDoc, ""},
		{"http allowed for local development", `{"allow_private_networks": true, "registries": [{"id": "a", "url": "http://127.0.0.1:9000", "kind": "static"}]}`, ""},
		{"not JSON", `registries: []`, "not a valid configuration document"},
		{"unknown field", `{"registrys": []}`, `unknown field "registrys"`},
		{"trailing data", `{} {}`, "data after the JSON object"},
		{"duplicate id", `{"registries": [{"id": "a", "url": "https://a.example", "kind": "static"}, {"id": "a", "url": "https://b.example", "kind": "static"}]}`, `"a" is used twice`},
		{"unknown kind", `{"registries": [{"id": "a", "url": "https://a.example", "kind": "ldap"}]}`, `kind "ldap"`},
		{"http without the flag", `{"registries": [{"id": "a", "url": "http://a.example", "kind": "static"}]}`, "https is required"},
		{"relative URL", `{"registries": [{"id": "a", "url": "/agents", "kind": "static"}]}`, "not an absolute URL"},
		{"credentials in URL", `{"registries": [{"id": "a", "url": "https://user:pw@a.example", "kind": "static"}]}`, "credentials do not belong in a URL"},
		{"ftp", `{"registries": [{"id": "a", "url": "ftp://a.example", "kind": "static"}]}`, `scheme "ftp"`},
		{"a2a without agents", `{"registries": [{"id": "a", "url": "https://a.example", "kind": "a2a"}]}`, `lists its agents`},
		{"bad agent URL", `{"registries": [{"id": "a", "url": "https://a.example", "kind": "a2a", "agents": ["nope"]}]}`, `agents[0]`},
		{"mutual TLS", `{"registries": [{"id": "a", "url": "https://a.example", "kind": "agentvault-federation", "client_certificate_secret": "federation-gateway/prod/registries/a/client-certificate"}]}`, ""},
		{"mutual TLS over http", `{"allow_private_networks": true, "registries": [{"id": "a", "url": "http://a.example", "kind": "agentvault", "client_certificate_secret": "s"}]}`, "over https only"},
		{"too large", `{"registries": [], "x": "` + strings.Repeat("x", config.MaxDocumentSize) + `"}`, "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tt.doc))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Parse: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Parse: err = %v, want it to mention %q", err, tt.wantErr)
			}
		})
	}
}

// FuzzParse checks that no document crashes the parser, and that every accepted one has
// registries with unique IDs and supported kinds.
func FuzzParse(f *testing.F) {
	f.Add([]byte(validDoc))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"registries": [{"id": "a", "url": "http://[::1]:80", "kind": "static"}], "allow_private_networks": true}`))
	f.Add([]byte(`{"registries": null}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"registries": [{"id": "a", "url": "https://a.example", "kind": "a2a", "agents": [""]}]}`))
	f.Add([]byte(`{"registries": [{"id": "a", "url": "https://a.example", "kind": "agentvault-federation", "client_certificate_secret": "federation-gateway/prod/registries/a/client-certificate"}]}`))
	f.Add([]byte(`{"registries": [{"id": "a", "url": "http://a.example", "kind": "agentvault", "client_certificate_secret": "x"}], "allow_private_networks": true}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		doc, err := config.Parse(raw)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, r := range doc.Registries {
			if seen[r.ID] || r.ID == "" || r.URL == "" {
				t.Fatalf("accepted registry %+v in %q", r, raw)
			}
			if r.ClientCertificateSecret != "" && r.Kind != "a2a" && !strings.HasPrefix(r.URL, "https://") {
				t.Fatalf("accepted a client certificate for a plain http registry: %+v", r)
			}
			seen[r.ID] = true
		}
	})
}

// The local AWS endpoints are named for the outbound guard to deny, once each.
func TestAWSEndpoints(t *testing.T) {
	cfg, err := config.Load(context.Background(), env(map[string]string{
		"STAGE": "dev", "TABLE_NAME": "t", "CONFIG_FILE": writeFile(t, validDoc),
		"AWS_ENDPOINT_URL": "http://127.0.0.1:4566", "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:4566/",
		"AWS_ENDPOINT_URL_SSM": "https://localstack.internal",
	}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.AWSEndpoints, " "); got != "127.0.0.1:4566 localstack.internal:443" {
		t.Errorf("AWSEndpoints = %q", got)
	}
}

func TestParseBridge(t *testing.T) {
	base := `{"allow_private_networks": true, "registries": [
	  {"id": "alpha", "url": "https://a.example", "kind": "agentvault"},
	  {"id": "beta", "url": "https://b.example", "kind": "agentvault"}],
	 "bridge": %s}`
	tests := []struct {
		bridge, wantErr string
	}{
		{`{"registries": {"alpha": {"teg_url": "https://teg-a.example", "account": "did:agentvault:gw"},
		   "beta": {"teg_url": "http://127.0.0.1:1/teg", "account": "did:agentvault:gw", "initial_liquidity": "500.5", "low_liquidity": "0"}},
		   "lanes": {"alpha->beta": {}, "beta->alpha": {"fee_rate": "0.0025", "max": "50", "capacity": "100", "refill_per_second": "0.5"}},
		   "operators": ["did:key:zOperator"], "deposit_window_hours": 48, "teg_timeout_ms": 500}`, ""},
		{`{"registries": {"gamma": {"teg_url": "https://g.example", "account": "x"}}}`, "bridge.registries.gamma: no such registry"},
		{`{"registries": {"alpha": {"teg_url": "ftp://g.example", "account": "x"}}}`, "teg_url"},
		{`{"registries": {"alpha": {"teg_url": "https://g.example"}}}`, "account"},
		{`{"registries": {"alpha": {"teg_url": "https://g.example", "account": "x", "credentials_secret": "prod/teg"}}}`, "credentials_secret"},
		{`{"registries": {"alpha": {"teg_url": "https://g.example", "account": "x", "initial_liquidity": "1e4"}}}`, "initial_liquidity"},
		{`{"registries": {"alpha": {"teg_url": "https://g.example", "account": "x"}}, "lanes": {"alpha->beta": {}}}`, "registry beta has no entry"},
		{`{"registries": {"alpha": {"teg_url": "https://g.example", "account": "x"}}, "lanes": {"alpha": {}}}`, "want \"from->to\""},
		{`{"registries": {"alpha": {"teg_url": "https://g.example", "account": "x"}, "beta": {"teg_url": "https://g.example", "account": "x"}},
		   "lanes": {"alpha->beta": {"min": "10", "max": "5"}}}`, "max must be at least min"},
		{`{"registries": {"alpha": {"teg_url": "https://g.example", "account": "x"}, "beta": {"teg_url": "https://g.example", "account": "x"}},
		   "lanes": {"alpha->beta": {"fee_rate": 0.001}}}`, "fee_rate"},
		{`{"registries": {"alpha": {"teg_url": "https://g.example", "account": "x"}, "beta": {"teg_url": "https://g.example", "account": "x"}},
		   "lanes": {"alpha->beta": {"capacity": "10"}}}`, "capacity must be at least max"},
		{`{"operators": ["a", "a"]}`, "listed once"},
		{`{"lanes_typo": {}}`, "lanes_typo"},
		{`{"teg_timeout_ms": 60000}`, "teg_timeout_ms"},
	}
	for _, tt := range tests {
		doc, err := config.Parse([]byte(fmt.Sprintf(base, tt.bridge)))
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tt.bridge, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s: err = %v, want it to mention %q", tt.bridge, err, tt.wantErr)
		case tt.wantErr == "":
			limits, err := doc.Bridge.Limits()
			if err != nil || len(limits) != 2 || limits[bridge.LaneID{From: "beta", To: "alpha"}].Refill.String() != "0.5" ||
				limits[bridge.LaneID{From: "alpha", To: "beta"}].FeeRate.String() != "0.001" {
				t.Errorf("limits = %v, %v", limits, err)
			}
			initial, low, err := doc.Bridge.Registries["beta"].Amounts()
			if err != nil || initial.String() != "500.5" || !low.IsZero() {
				t.Errorf("amounts = %s %s %v", initial, low, err)
			}
			cfg := config.Config{Stage: "prod", Bridge: doc.Bridge}
			if s := cfg.TEGSecret("alpha"); s != "federation-gateway/prod/teg/alpha" {
				t.Errorf("TEGSecret = %q", s)
			}
			if doc.Bridge.DepositWindow() != 48*time.Hour {
				t.Errorf("deposit window %s", doc.Bridge.DepositWindow())
			}
		}
	}
}
