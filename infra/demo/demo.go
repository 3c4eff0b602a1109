// Package demo runs a small federation of agent registries and live agents in-process, for
// `make run` and for tests: two AgentVault-compatible registries ("alpha" with the v1 API,
// "beta" with v1 and the v2 federation API) listing 15 sample agents, each a real A2A v1.0
// server built with the official Go SDK (a2a-go) with a few deterministic skills.
//
// Everything is mutable while it runs, so a demo or a test can show the gateway reacting:
// Registry.Put and Registry.SetActive change cards (bumping updated_at),
// Federation.StopRegistry takes a registry down and StartRegistry brings it back at the
// same URL.
//
// The registries speak the real contracts (docs/architecture.md, "External contracts")
// with their limits: v1 pages of at most 250, search in names and descriptions, inactive
// cards hidden unless active_only=false, 422 for a bad parameter or a card ID that is not
// a UUID, 404 for an unknown one; v2 returns the cards changed after `since` (strictly),
// oldest change first, at most 1000, inactive ones included. The registry tests run
// against the same registries, with Faults for the ways real ones misbehave.
package demo

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/federation-gateway/gateway/shared/config"
	"github.com/federation-gateway/gateway/shared/federation"
)

// Options says where the federation listens. An empty address means 127.0.0.1:0, a
// random port (tests); `make run` fixes them so the printed URLs stay the same.
type Options struct {
	AlphaAddr  string
	BetaAddr   string
	AgentsAddr string // one server for every agent, each under /agents/<humanReadableId>
	// Logger receives the A2A servers' log lines (failed executions and the like);
	// nil discards them.
	Logger *slog.Logger
	// GatewayURL is the gateway's base URL. The agents check the signature of every
	// message the gateway forwards against its keys (GatewayURL/.well-known/jwks.json)
	// and say in their reply whether it verified. Empty: they do not check.
	GatewayURL string
}

// Federation is a running demo federation.
type Federation struct {
	// AgentsURL is the agents' server; GET AgentsURL+"/agents" lists them.
	AgentsURL string

	registries []*Registry
	tegs       map[string]*TEG
	agents     []*Agent
	agentsSrv  *http.Server
	agentsDone chan struct{}
	gatewayURL string
}

// Start starts the agents, fills the registries from the catalog and starts them. On
// failure it stops what it started. Start is quick (no network beyond binding the
// listeners), so ctx is only checked before it begins; the federation runs until Close.
func Start(ctx context.Context, opts Options) (_ *Federation, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", orRandom(opts.AgentsAddr))
	if err != nil {
		return nil, fmt.Errorf("demo agents: %w", err)
	}
	f := &Federation{AgentsURL: "http://" + ln.Addr().String(), agentsDone: make(chan struct{}), gatewayURL: opts.GatewayURL}
	f.agents = newAgents(f.AgentsURL)
	if opts.GatewayURL != "" {
		checker := &signatureChecker{jwksURL: strings.TrimRight(opts.GatewayURL, "/") + "/.well-known/jwks.json", client: &http.Client{Timeout: 2 * time.Second}}
		for _, a := range f.agents {
			a.checker = checker
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/", agentsHandler(f.agents, logger))
	mux.HandleFunc("POST /demo/registries/{id}/{action}", f.control)
	mux.HandleFunc("GET /demo/token", f.token)
	f.tegs = map[string]*TEG{Alpha: NewTEG(Alpha), Beta: NewTEG(Beta)}
	for id, t := range f.tegs {
		mux.Handle("/teg/"+id+"/", http.StripPrefix("/teg/"+id, t.Handler()))
		t.Open(GatewayAccount, GatewayStartBalance)
	}
	for _, a := range f.agents {
		for _, id := range a.Registries {
			f.tegs[id].Open(a.Account(), AgentStartBalance)
		}
	}
	mux.HandleFunc("GET /demo/teg/token", f.tegToken)
	mux.HandleFunc("POST /demo/teg/{registry}/faults", f.tegFaults)
	f.agentsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		defer close(f.agentsDone)
		_ = f.agentsSrv.Serve(ln)
	}()
	defer func() {
		if err != nil {
			_ = f.Close()
		}
	}()

	alpha, beta := NewRegistry(Alpha, false), NewRegistry(Beta, true)
	f.registries = []*Registry{alpha, beta}
	for _, a := range f.agents {
		for _, id := range a.Registries {
			r := f.Registry(id)
			source := r.Identity
			if id == Beta && len(a.Registries) > 1 {
				source = alpha.Identity // beta federated its copy from alpha
			}
			rec := r.put(a.Card(), source)
			if a.inactive {
				if _, err := r.SetActive(rec.ID, false); err != nil {
					return nil, err
				}
			}
		}
	}
	for _, r := range []struct {
		reg  *Registry
		addr string
	}{{alpha, opts.AlphaAddr}, {beta, opts.BetaAddr}} {
		if err := r.reg.Start(orRandom(r.addr)); err != nil {
			return nil, fmt.Errorf("demo %w", err)
		}
	}
	return f, nil
}

func orRandom(addr string) string {
	if addr == "" {
		return "127.0.0.1:0"
	}
	return addr
}

// Registries returns the registries, alpha first.
func (f *Federation) Registries() []*Registry { return f.registries }

// Registry returns the registry with the given ID, nil if there is none.
func (f *Federation) Registry(id string) *Registry {
	for _, r := range f.registries {
		if r.ID == id {
			return r
		}
	}
	return nil
}

// Agents returns the live agents in catalog order.
func (f *Federation) Agents() []*Agent { return f.agents }

// Agent returns the agent with the given humanReadableId, nil if there is none.
func (f *Federation) Agent(humanReadableID string) *Agent {
	for _, a := range f.agents {
		if a.HumanReadableID == humanReadableID {
			return a
		}
	}
	return nil
}

// Config is a gateway configuration document (shared/config) that federates the two
// registries and bridges tokens between their token services both ways, with the default
// lane limits. It allows private networks, since everything listens on 127.0.0.1 over
// http.
func (f *Federation) Config() []byte {
	doc := config.Document{AllowPrivateNetworks: true, Registries: []federation.Registry{}, Gateway: config.Gateway{URL: f.gatewayURL},
		Bridge: config.Bridge{Registries: map[string]config.BridgeRegistry{}, Lanes: map[string]config.BridgeLane{
			Alpha + "->" + Beta: {}, Beta + "->" + Alpha: {}}}}
	for _, r := range f.registries {
		doc.Registries = append(doc.Registries, federation.Registry{ID: r.ID, Kind: r.Kind, URL: r.URL()})
		doc.Bridge.Registries[r.ID] = config.BridgeRegistry{TEGURL: f.TEGURL(r.ID), Account: GatewayAccount}
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		panic(err) // plain strings and bools always marshal
	}
	return append(b, '\n')
}

// TEG returns a registry's token service, nil if there is none.
func (f *Federation) TEG(registry string) *TEG { return f.tegs[registry] }

// TEGURL is the base URL of a registry's token service.
func (f *Federation) TEGURL(registry string) string { return f.AgentsURL + "/teg/" + registry }

// GatewayTEGTokens returns the gateway's Bearer token on each registry's token service:
// what an operator puts in the Secrets Manager secret federation-gateway/<stage>/teg/<id>.
func (f *Federation) GatewayTEGTokens() map[string]string {
	out := map[string]string{}
	for id, t := range f.tegs {
		out[id] = t.Token(GatewayAccount)
	}
	return out
}

// Secrets returns the Secrets Manager secrets an operator would create for the gateway on
// a stage: its Bearer token on each demo token service, under
// federation-gateway/<stage>/teg/<registry>.
func (f *Federation) Secrets(stage string) map[string]string {
	out := map[string]string{}
	for id, tok := range f.GatewayTEGTokens() {
		out["federation-gateway/"+stage+"/teg/"+id] = tok
	}
	return out
}

// tegToken answers a demo agent's Bearer token on a registry's token service, for curl:
//
//	curl '127.0.0.1:8200/demo/teg/token?registry=alpha&agent=acme/weather-bot'
func (f *Federation) tegToken(w http.ResponseWriter, r *http.Request) {
	t := f.TEG(r.URL.Query().Get("registry"))
	a := f.Agent(r.URL.Query().Get("agent"))
	if t == nil || a == nil || !slices.Contains(a.Registries, t.Registry) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "registry= names a demo registry (alpha, beta) and agent= one of its agents"})
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte(t.Token(a.Account())))
}

// tegFaults queues faults on a registry's token service, as the demo registries can be
// stopped, so that a developer can watch the bridge resolve them:
//
//	curl -X POST 127.0.0.1:8200/demo/teg/beta/faults -d '{"kind":"apply-lose","op":"transfer","count":1}'
func (f *Federation) tegFaults(w http.ResponseWriter, r *http.Request) {
	t := f.TEG(r.PathValue("registry"))
	var req struct {
		Kind    string `json:"kind"`
		Op      string `json:"op"`
		Count   int    `json:"count"`
		DelayMS int    `json:"delay_ms"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10))
	dec.DisallowUnknownFields()
	if t == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no demo registry " + r.PathValue("registry")})
		return
	}
	if err := dec.Decode(&req); err != nil || !slices.Contains(FaultKinds, req.Kind) || req.Count < 1 ||
		!slices.Contains([]string{"", "transfer", "transactions", "balance"}, req.Op) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": `want {"kind": one of ` + strings.Join(FaultKinds, ", ") +
			`, "op": transfer|transactions|balance (default any), "count": 1 or more, "delay_ms": for slow and apply-later}`})
		return
	}
	t.Queue(req.Op, Fault{Kind: req.Kind, Delay: time.Duration(req.DelayMS) * time.Millisecond}, req.Count)
	writeJSON(w, http.StatusOK, map[string]any{"registry": t.Registry, "queued": req})
}

// StopRegistry takes a registry down: its connections are closed and new ones refused.
func (f *Federation) StopRegistry(id string) error {
	r := f.Registry(id)
	if r == nil {
		return fmt.Errorf("no demo registry %q", id)
	}
	return r.Stop()
}

// StartRegistry brings a stopped registry back on its previous address.
func (f *Federation) StartRegistry(id string) error {
	r := f.Registry(id)
	if r == nil {
		return fmt.Errorf("no demo registry %q", id)
	}
	return r.Start("")
}

// Close stops the registries and the agents.
func (f *Federation) Close() error {
	var errs []error
	for _, r := range f.registries {
		errs = append(errs, r.Stop())
	}
	if f.agentsSrv != nil {
		errs = append(errs, f.agentsSrv.Close())
		<-f.agentsDone
	}
	return errors.Join(errs...)
}

// control stops or starts a demo registry on request, so that a developer can watch the
// gateway notice a registry going down during `make run`:
//
//	curl -X POST http://127.0.0.1:8200/demo/registries/alpha/stop
func (f *Federation) control(w http.ResponseWriter, r *http.Request) {
	id, action := r.PathValue("id"), r.PathValue("action")
	var err error
	switch {
	case f.Registry(id) == nil:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no demo registry " + id})
		return
	case action == "stop":
		err = f.StopRegistry(id)
	case action == "start":
		err = f.StartRegistry(id)
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "actions are stop and start"})
		return
	}
	if err != nil {
		writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"registry": id, "running": f.Registry(id).Running()})
}

// token issues a credential for a demo agent that has a did:key: a JWT it signs with its
// demo key, naming the audience asked for (default "federation-gateway"), valid 5 minutes.
// The keys are derived from public names, so this proves nothing outside the demo:
//
//	curl '127.0.0.1:8200/demo/token?agent=acme/weather-bot'
func (f *Federation) token(w http.ResponseWriter, r *http.Request) {
	a := f.Agent(r.URL.Query().Get("agent"))
	if a == nil || a.Key == nil {
		var ids []string
		for _, ag := range f.agents {
			if ag.Key != nil {
				ids = append(ids, ag.HumanReadableID)
			}
		}
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "agent= names a demo agent with a did:key: " + strings.Join(ids, ", ")})
		return
	}
	aud := r.URL.Query().Get("aud")
	if aud == "" {
		aud = "federation-gateway"
	}
	tok, err := SignToken(a.Key, a.DID, aud, 5*time.Minute)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte(tok))
}

// SignToken returns a JWT from did, signed with key: iss and sub are the DID, kid names
// its key, aud the audience; it expires after ttl and has a fresh jti.
func SignToken(key ed25519.PrivateKey, did, aud string, ttl time.Duration) (string, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", did+"#"+strings.TrimPrefix(did, "did:key:")))
	if err != nil {
		return "", err
	}
	now := time.Now()
	claims, _ := json.Marshal(map[string]any{
		"iss": did, "sub": did, "aud": aud, "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(ttl).Unix(), "jti": rand.Text(),
	})
	jws, err := signer.Sign(claims)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}
