// Package config loads the gateway's configuration: a few settings from the environment
// (which the template sets) and the configuration document, a JSON object kept in an SSM
// parameter on AWS or in a local file during development.
package config

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/federation-gateway/gateway/shared/federation"
)

// Environment variables the functions read. The template sets all of them.
const (
	EnvStage           = "STAGE"
	EnvLogLevel        = "LOG_LEVEL"
	EnvTable           = "TABLE_NAME"
	EnvVersion         = "GATEWAY_VERSION"
	EnvConfigParameter = "CONFIG_PARAMETER" // SSM parameter name of the configuration document
	EnvConfigFile      = "CONFIG_FILE"      // a local file instead, for development and tests
)

// MaxDocumentSize is the largest configuration document accepted: the size of an SSM
// Advanced-tier parameter.
const MaxDocumentSize = 8 << 10

// Config is the gateway's configuration.
type Config struct {
	// From the environment.
	Stage    string
	LogLevel string
	Table    string
	Version  string
	// LocalEndpoint is true when AWS is reached through a local endpoint
	// (AWS_ENDPOINT_URL or AWS_ENDPOINT_URL_DYNAMODB is set).
	LocalEndpoint bool
	// AWSEndpoints are the host:port of the local AWS endpoint variables that are set
	// (AWS_ENDPOINT_URL and the per-service ones the functions use): addresses no
	// outbound request may reach (outbound.Options.Deny).
	AWSEndpoints []string

	// From the configuration document.
	Registries []federation.Registry
	// AllowPrivateNetworks lets registry and agent URLs use http and private, loopback or
	// link-local addresses. For local development only.
	AllowPrivateNetworks bool
	Sync                 Sync
	Gateway              Gateway
	TrustDomains         []federation.TrustDomain
	Policy               Policy
	Bridge               Bridge
}

// Gateway is how the gateway names itself to the agents.
type Gateway struct {
	// ID is the audience every credential presented to the gateway must name, and the
	// issuer of what it signs (default "federation-gateway").
	ID string `json:"id,omitempty"`
	// URL is the gateway's public base URL, as its A2A agent card states it.
	URL string `json:"url,omitempty"`
}

// Policy is the federation's routing policy.
type Policy struct {
	// Allow lists the registry pairs whose agents may message each other, as
	// "from->to"; "*" matches any registry. Empty: every pair is allowed.
	Allow []string `json:"allow,omitempty"`
	// AgentRate and GlobalRate are messages per minute (defaults 100 and 1000).
	AgentRate  int `json:"agent_rate,omitempty"`
	GlobalRate int `json:"global_rate,omitempty"`
	// RoutingFee is the fee of one delivery, a decimal string (default "0.01").
	RoutingFee string `json:"routing_fee,omitempty"`
}

// Sync tunes the registry sync; zero values take the sync's defaults.
type Sync struct {
	// StaleAfter is how many failed runs in a row make a registry's agents stale.
	StaleAfter int `json:"stale_after,omitempty"`
	// FullRefreshMinutes is how often every card is fetched again, cache or not.
	FullRefreshMinutes int `json:"full_refresh_minutes,omitempty"`
	// GoneTTLHours is how long a gone agent is kept.
	GoneTTLHours int `json:"gone_ttl_hours,omitempty"`
	// Concurrency bounds the card fetches in flight per registry.
	Concurrency int `json:"concurrency,omitempty"`
}

// Document is the JSON configuration document. Unknown fields are an error, so that a
// misspelt setting fails loudly instead of being ignored.
type Document struct {
	Registries           []federation.Registry    `json:"registries"`
	AllowPrivateNetworks bool                     `json:"allow_private_networks"`
	Sync                 Sync                     `json:"sync"`
	Gateway              Gateway                  `json:"gateway"`
	TrustDomains         []federation.TrustDomain `json:"trust_domains"`
	Policy               Policy                   `json:"policy"`
	Bridge               Bridge                   `json:"bridge"`
}

// ParameterReader reads the value of an SSM parameter by name, decrypted; ssmparam.Reader
// is one.
type ParameterReader interface {
	Parameter(ctx context.Context, name string) (string, error)
}

// Load reads the configuration. getenv is os.Getenv in production; params reads the SSM
// parameter named by CONFIG_PARAMETER and may be nil when CONFIG_FILE is used instead.
// Every problem is reported at once, each with what to do about it.
func Load(ctx context.Context, getenv func(string) string, params ParameterReader) (Config, error) {
	cfg := Config{
		Stage:         getenv(EnvStage),
		LogLevel:      getenv(EnvLogLevel),
		Table:         getenv(EnvTable),
		Version:       getenv(EnvVersion),
		LocalEndpoint: getenv("AWS_ENDPOINT_URL") != "" || getenv("AWS_ENDPOINT_URL_DYNAMODB") != "",
	}
	cfg.AWSEndpoints = awsEndpoints(getenv)
	if cfg.LogLevel == "" {
		cfg.LogLevel = "info"
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}

	var problems []string
	if cfg.Stage == "" {
		problems = append(problems, EnvStage+" is not set")
	}
	if cfg.Table == "" {
		problems = append(problems, EnvTable+" is not set (the DynamoDB table name)")
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, cfg.LogLevel) {
		problems = append(problems, fmt.Sprintf("%s=%q: want debug, info, warn or error", EnvLogLevel, cfg.LogLevel))
	}

	raw, source, err := readDocument(ctx, getenv, params)
	if err != nil {
		problems = append(problems, err.Error())
	} else {
		doc, err := Parse(raw)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", source, err))
		}
		cfg.Registries = doc.Registries
		cfg.AllowPrivateNetworks = doc.AllowPrivateNetworks
		cfg.Sync = doc.Sync
		cfg.Gateway, cfg.TrustDomains, cfg.Policy, cfg.Bridge = doc.Gateway, doc.TrustDomains, doc.Policy, doc.Bridge
		for _, id := range sortedKeys(doc.Bridge.Registries) {
			if s := doc.Bridge.Registries[id].CredentialsSecret; s != "" && cfg.Stage != "" && !strings.HasPrefix(s, "federation-gateway/"+cfg.Stage+"/teg/") {
				problems = append(problems, fmt.Sprintf("%s: bridge.registries.%s.credentials_secret: the functions may read only federation-gateway/%s/teg/* secrets", source, id, cfg.Stage))
			}
		}
		if cfg.Gateway.ID == "" {
			cfg.Gateway.ID = "federation-gateway"
		}
	}
	if len(problems) > 0 {
		return Config{}, fmt.Errorf("invalid configuration:\n  - %s", strings.Join(problems, "\n  - "))
	}
	return cfg, nil
}

// endpointVariables are the AWS SDK's endpoint variables for the services the functions
// call.
var endpointVariables = []string{
	"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_SSM", "AWS_ENDPOINT_URL_SECRETS_MANAGER",
	"AWS_ENDPOINT_URL_SFN", "AWS_ENDPOINT_URL_LAMBDA", "AWS_ENDPOINT_URL_STS",
}

// awsEndpoints returns the host:port of every endpoint variable set, once each.
func awsEndpoints(getenv func(string) string) []string {
	var out []string
	for _, name := range endpointVariables {
		u, err := url.Parse(getenv(name))
		if err != nil || u.Host == "" {
			continue
		}
		port := u.Port()
		if port == "" {
			port = map[string]string{"https": "443"}[u.Scheme]
			if port == "" {
				port = "80"
			}
		}
		hp := net.JoinHostPort(u.Hostname(), port)
		if !slices.Contains(out, hp) {
			out = append(out, hp)
		}
	}
	return out
}

func readDocument(ctx context.Context, getenv func(string) string, params ParameterReader) ([]byte, string, error) {
	file, param := getenv(EnvConfigFile), getenv(EnvConfigParameter)
	switch {
	case file != "":
		f, err := os.Open(file)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", EnvConfigFile, err)
		}
		defer f.Close()
		raw, err := io.ReadAll(io.LimitReader(f, MaxDocumentSize+1))
		if err != nil {
			return nil, "", fmt.Errorf("read %s: %w", file, err)
		}
		return raw, file, nil
	case param != "":
		if params == nil {
			return nil, "", fmt.Errorf("%s=%s but no SSM client was given", EnvConfigParameter, param)
		}
		value, err := params.Parameter(ctx, param)
		if err != nil {
			return nil, "", fmt.Errorf("read SSM parameter %s: %w", param, err)
		}
		return []byte(value), "SSM parameter " + param, nil
	default:
		return nil, "", fmt.Errorf("neither %s (an SSM parameter name) nor %s (a local file) is set", EnvConfigParameter, EnvConfigFile)
	}
}

// validRegistryID reports whether id is 1-63 lower-case letters, digits or '-', starting
// with a letter or digit: safe in table keys, URLs and log lines.
func validRegistryID(id string) bool {
	if id == "" || len(id) > 63 || id[0] == '-' {
		return false
	}
	for _, c := range id {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// Parse decodes and validates a configuration document.
func Parse(raw []byte) (Document, error) {
	var doc Document
	if len(raw) > MaxDocumentSize {
		return doc, fmt.Errorf("the document is larger than %d bytes", MaxDocumentSize)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return doc, fmt.Errorf("not a valid configuration document: %w", err)
	}
	if dec.More() {
		return doc, errors.New("not a valid configuration document: data after the JSON object")
	}

	var problems []string
	seen := map[string]bool{}
	for i, r := range doc.Registries {
		where := fmt.Sprintf("registries[%d]", i)
		if !validRegistryID(r.ID) {
			problems = append(problems, fmt.Sprintf("%s.id %q: want 1-63 lower-case letters, digits or '-'", where, r.ID))
		} else if seen[r.ID] {
			problems = append(problems, fmt.Sprintf("%s.id %q is used twice", where, r.ID))
		}
		seen[r.ID] = true
		if !slices.Contains(federation.RegistryKinds, r.Kind) {
			problems = append(problems, fmt.Sprintf("%s.kind %q: want one of %s", where, r.Kind, strings.Join(federation.RegistryKinds, ", ")))
		}
		if err := checkURL(r.URL, doc.AllowPrivateNetworks); err != nil {
			problems = append(problems, fmt.Sprintf("%s.url: %v", where, err))
		}
		for j, a := range r.Agents {
			if err := checkURL(a, doc.AllowPrivateNetworks); err != nil {
				problems = append(problems, fmt.Sprintf("%s.agents[%d]: %v", where, j, err))
			}
		}
		if r.ClientCertificateSecret != "" && !strings.HasPrefix(r.URL, "https://") && r.Kind != federation.KindA2A {
			problems = append(problems, where+".client_certificate_secret: a client certificate is presented over https only")
		}
		if r.Kind == federation.KindA2A && len(r.Agents) == 0 {
			problems = append(problems, where+`: an "a2a" registry lists its agents' base URLs in "agents"`)
		}
	}
	for name, v := range map[string]int{"stale_after": doc.Sync.StaleAfter, "full_refresh_minutes": doc.Sync.FullRefreshMinutes,
		"gone_ttl_hours": doc.Sync.GoneTTLHours, "concurrency": doc.Sync.Concurrency} {
		if v < 0 || v > 100000 {
			problems = append(problems, fmt.Sprintf("sync.%s %d: want 0 (the default) to 100000", name, v))
		}
	}
	problems = append(problems, checkBridge(doc)...)
	if len(problems) > 0 {
		return doc, errors.New(strings.Join(problems, "; "))
	}
	return doc, nil
}

// checkURL checks the form of a configured URL. Whether its host resolves to a private
// address is checked when it is fetched, on every request and redirect.
func checkURL(raw string, allowHTTP bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL", raw)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && allowHTTP:
	case u.Scheme == "http":
		return fmt.Errorf("%q: https is required (allow_private_networks permits http for local development)", raw)
	default:
		return fmt.Errorf("%q: scheme %q is not supported", raw, u.Scheme)
	}
	if u.User != nil {
		return fmt.Errorf("%q: credentials do not belong in a URL; name a Secrets Manager secret in credentials_secret", raw)
	}
	return nil
}
