package demo

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"iter"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/a2aproject/a2a-go/v2/a2a"
	"github.com/a2aproject/a2a-go/v2/a2asrv"
)

// Agent is one sample agent: a live A2A v1.0 server and the AgentVault card registries
// list for it.
type Agent struct {
	HumanReadableID string // "acme/weather-bot"; also its path under the agents' server
	Name            string
	Description     string
	ServiceType     string // capabilities.type of its AgentVault card: weather, translation, ...
	Provider        Provider
	Skills          []Skill // the first one answers a message that names no skill
	Tags            []string
	// DID is its decentralized identifier, "" for none. For a did:key, Key is the
	// matching private key: derived from the agent's name, for demos only.
	DID string
	Key ed25519.PrivateKey
	// ReplyWithTask makes it answer SendMessage with a completed task (the answer in an
	// artifact) instead of a message, the other shape a gateway must accept.
	ReplyWithTask bool
	// Registries lists the IDs of the registries that list it.
	Registries []string
	// URL is its base URL and JSON-RPC endpoint (POST); its A2A agent card is at
	// URL + "/.well-known/agent-card.json".
	URL string

	inactive bool
	checker  *signatureChecker // nil: forwarded messages are not checked
}

// Active reports whether its registries list it as active; a retired agent is listed
// inactive, and the gateway marks it gone.
func (a *Agent) Active() bool { return !a.inactive }

// SkillMetadataKey is the message (or request) metadata key that picks a skill by ID.
// A text that starts with "<skill id>:" picks it too; otherwise the first skill answers.
const SkillMetadataKey = "skill"

// newAgents builds the catalog's agents, served under base (http://host:port).
func newAgents(base string) []*Agent {
	var out []*Agent
	for _, s := range catalog {
		a := &Agent{
			HumanReadableID: s.id, Name: s.name, Description: s.description, ServiceType: s.serviceType,
			Provider: s.provider, Tags: s.tags, DID: s.did, ReplyWithTask: s.task,
			Registries: s.registries, URL: base + "/agents/" + s.id, inactive: s.inactive,
		}
		if s.did == "key" {
			a.DID, a.Key = didKey(s.id)
		}
		for _, id := range s.skills {
			sk, ok := skills[id]
			if !ok {
				panic("demo catalog: no skill " + id) // a typo in the table above
			}
			a.Skills = append(a.Skills, sk)
		}
		out = append(out, a)
	}
	return out
}

// Account is the agent's account on its registries' token services: its DID as the
// gateway's directory knows it (the card's did, else did:agentvault:<humanReadableId>),
// the way the TEG token service names accounts by DID.
func (a *Agent) Account() string {
	if a.DID != "" {
		return a.DID
	}
	return "did:agentvault:" + a.HumanReadableID
}

// AgentCard is the agent's A2A v1.0 agent card, as it serves it.
func (a *Agent) AgentCard() *a2a.AgentCard {
	card := &a2a.AgentCard{
		Name:                a.Name,
		Description:         a.Description,
		Version:             "1.0.0",
		SupportedInterfaces: []*a2a.AgentInterface{a2a.NewAgentInterface(a.URL, a2a.TransportProtocolJSONRPC)},
		Provider:            &a2a.AgentProvider{Org: a.Provider.Name, URL: a.Provider.URL},
		Capabilities:        a2a.AgentCapabilities{Streaming: true},
		DefaultInputModes:   []string{"text/plain", "application/json"},
		DefaultOutputModes:  []string{"text/plain", "application/json"},
	}
	for _, s := range a.Skills {
		card.Skills = append(card.Skills, a2a.AgentSkill{ID: s.ID, Name: s.Name, Description: s.Description, Tags: s.Tags, Examples: s.Examples})
	}
	return card
}

// Card is the AgentVault card registries list for the agent.
func (a *Agent) Card() Card {
	features := []string{"streaming"}
	if a.ReplyWithTask {
		features = append(features, "tasks")
	}
	c := Card{
		SchemaVersion: "1.0", HumanReadableID: a.HumanReadableID, AgentVersion: "1.0.0",
		Name: a.Name, Description: a.Description, URL: a.URL, Provider: a.Provider,
		Capabilities: Capabilities{A2AVersion: "1.0", Type: a.ServiceType, Features: features},
		AuthSchemes:  []AuthScheme{{Scheme: "none"}},
		Tags:         slices.Clone(a.Tags),
		DID:          a.DID,
	}
	for _, s := range a.Skills {
		c.Skills = append(c.Skills, CardSkill{ID: s.ID, Name: s.Name, Description: s.Description, Tags: s.Tags})
	}
	return c
}

// Answer is what the agent replies to a message with text and data, and the skill that
// answered; ok is false when the message names a skill the agent does not have.
func (a *Agent) Answer(msg *a2a.Message, requestMeta map[string]any) (out Output, skill Skill, ok bool) {
	in := readInput(msg)
	skill, in, ok = a.pick(msg, requestMeta, in)
	if !ok {
		return Output{}, Skill{}, false
	}
	return skill.Run(in), skill, true
}

// requestedSkill is the skill ID the message or the request names in its metadata.
func requestedSkill(msg *a2a.Message, requestMeta map[string]any) string {
	if want, _ := msg.Metadata[SkillMetadataKey].(string); want != "" {
		return want
	}
	want, _ := requestMeta[SkillMetadataKey].(string)
	return want
}

func (a *Agent) pick(msg *a2a.Message, requestMeta map[string]any, in Input) (Skill, Input, bool) {
	want := requestedSkill(msg, requestMeta)
	if want == "" {
		if id, rest, found := strings.Cut(in.Text, ":"); found {
			if i := slices.IndexFunc(a.Skills, func(s Skill) bool { return s.ID == strings.TrimSpace(id) }); i >= 0 {
				in.Text = strings.TrimSpace(rest)
				return a.Skills[i], in, true
			}
		}
		return a.Skills[0], in, true
	}
	i := slices.IndexFunc(a.Skills, func(s Skill) bool { return s.ID == want })
	if i < 0 {
		return Skill{}, in, false
	}
	return a.Skills[i], in, true
}

func readInput(msg *a2a.Message) Input {
	var in Input
	var texts []string
	for _, p := range msg.Parts {
		switch c := p.Content.(type) {
		case a2a.Text:
			texts = append(texts, string(c))
		case a2a.Data:
			if m, ok := c.Value.(map[string]any); ok && in.Data == nil {
				in.Data = m
			}
		}
	}
	in.Text = strings.Join(texts, "\n")
	// A message forwarded by a gateway carries its payload as a data part: its "text"
	// stands for the text when there is no text part.
	if t, ok := in.Data["text"].(string); ok && in.Text == "" {
		in.Text = t
	}
	return in
}

func (o Output) parts() []*a2a.Part {
	parts := []*a2a.Part{a2a.NewTextPart(o.Text)}
	if o.Data != nil {
		parts = append(parts, a2a.NewDataPart(o.Data))
	}
	return parts
}

// executor runs an agent's skills for the a2a-go request handler.
type executor struct{ agent *Agent }

// Execute answers with one message, or with a task that goes submitted -> artifact ->
// completed. An unknown skill is a rejected task that names the skills there are.
func (e executor) Execute(ctx context.Context, ec *a2asrv.ExecutorContext) iter.Seq2[a2a.Event, error] {
	return func(yield func(a2a.Event, error) bool) {
		out, skill, ok := e.agent.Answer(ec.Message, ec.Metadata)
		meta := map[string]any{"agent": e.agent.HumanReadableID, "skill": skill.ID}
		for k, v := range received(ctx, ec.Message) {
			meta[k] = v
		}
		if e.agent.checker != nil {
			if verdict := e.agent.checker.check(ctx, ec.Message); verdict != "" {
				meta["gateway_signature"] = verdict
			}
		}
		if !ok {
			var ids []string
			for _, s := range e.agent.Skills {
				ids = append(ids, s.ID)
			}
			task := a2a.NewSubmittedTask(ec, ec.Message)
			reason := a2a.NewMessageForTask(a2a.MessageRoleAgent, ec, a2a.NewTextPart(fmt.Sprintf(
				"%s has no skill %q; it offers %s", e.agent.HumanReadableID, requestedSkill(ec.Message, ec.Metadata), strings.Join(ids, ", "))))
			task.Status = a2a.TaskStatus{State: a2a.TaskStateRejected, Message: reason}
			yield(task, nil)
			return
		}
		if !e.agent.ReplyWithTask {
			reply := a2a.NewMessage(a2a.MessageRoleAgent, out.parts()...)
			reply.ContextID = ec.ContextID
			reply.Metadata = meta
			yield(reply, nil)
			return
		}
		if !yield(a2a.NewSubmittedTask(ec, ec.Message), nil) {
			return
		}
		artifact := a2a.NewArtifactEvent(ec, out.parts()...)
		artifact.Artifact.Name = skill.ID
		artifact.Artifact.Metadata = meta
		if !yield(artifact, nil) {
			return
		}
		done := a2a.NewMessageForTask(a2a.MessageRoleAgent, ec, a2a.NewTextPart(out.Text))
		done.Metadata = meta
		yield(a2a.NewStatusUpdateEvent(ec, a2a.TaskStateCompleted, done), nil)
	}
}

// received is what the agent says it received of the trace it was called in: the
// traceparent of the message's metadata and of the HTTP request, and the message's
// federation.correlation_id, so that a caller can see a message's correlation reach its
// target.
func received(ctx context.Context, msg *a2a.Message) map[string]any {
	out := map[string]any{}
	for _, k := range []string{"traceparent", "federation.correlation_id"} {
		if v, ok := msg.Metadata[k].(string); ok {
			out["received."+k] = v
		}
	}
	if cc, ok := a2asrv.CallContextFrom(ctx); ok {
		if v, ok := cc.ServiceParams().Get("traceparent"); ok && len(v) > 0 {
			out["received.traceparent_header"] = v[0]
		}
	}
	return out
}

// Cancel has nothing to stop (every answer is immediate), so it only records the state.
func (executor) Cancel(ctx context.Context, ec *a2asrv.ExecutorContext) iter.Seq2[a2a.Event, error] {
	return func(yield func(a2a.Event, error) bool) {
		yield(a2a.NewStatusUpdateEvent(ec, a2a.TaskStateCanceled, nil), nil)
	}
}

// versionCheck refuses a request whose A2A-Version header names another major version.
// a2a-go's server does not check the header itself. A request without the header is
// served, so that curl works; the spec would read it as 0.3.
type versionCheck struct {
	a2asrv.PassthroughCallInterceptor
}

func (versionCheck) Before(ctx context.Context, cc *a2asrv.CallContext, _ *a2asrv.Request) (context.Context, any, error) {
	if v, ok := cc.ServiceParams().Get(a2a.SvcParamVersion); ok && len(v) > 0 && v[0] != "" {
		if major, _, _ := strings.Cut(v[0], "."); major != "1" {
			return ctx, nil, a2a.NewError(a2a.ErrVersionNotSupported, fmt.Sprintf("A2A-Version %s is not supported; this agent speaks %s", v[0], a2a.Version))
		}
	}
	return ctx, nil, nil
}

// agentsHandler serves every agent under /agents/<humanReadableId>: the JSON-RPC endpoint
// at the base path and the agent card below it, plus an index of the agents at /agents.
func agentsHandler(agents []*Agent, logger *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	var index []map[string]string
	for _, a := range agents {
		handler := a2asrv.NewHandler(executor{agent: a},
			a2asrv.WithLogger(logger),
			a2asrv.WithCallInterceptors(versionCheck{}),
		)
		path := "/agents/" + a.HumanReadableID
		rpc := a2asrv.NewJSONRPCHandler(handler)
		mux.Handle(path, rpc)
		mux.Handle(path+"/", rpc) // a client that keeps the trailing slash of a base URL
		mux.Handle(path+a2asrv.WellKnownAgentCardPath, a2asrv.NewStaticAgentCardHandler(a.AgentCard()))
		entry := map[string]string{"humanReadableId": a.HumanReadableID, "name": a.Name, "url": a.URL}
		if a.DID != "" {
			entry["did"] = a.DID
		}
		index = append(index, entry)
	}
	mux.HandleFunc("GET /agents", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, index) })
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/agents", http.StatusFound) })
	return mux
}
