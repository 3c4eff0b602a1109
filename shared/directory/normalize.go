package directory

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/federation-gateway/gateway/shared/federation"
)

// Limits of a normalized record, which keep every item far below DynamoDB's 400 KB.
const (
	maxNameLen        = 200
	maxDescriptionLen = 2000
	maxSkills         = 64
	maxTags           = 32
	maxValueLen       = 100
)

// card is the union of the card shapes the registries serve: AgentVault cards
// (humanReadableId, url, capabilities.type/features, authSchemes) and A2A v1.0 agent cards
// (supportedInterfaces, skills with tags, signatures).
type card struct {
	DID             string `json:"did"`
	HumanReadableID string `json:"humanReadableId"`
	Name            string `json:"name"`
	Description     string `json:"description"`
	URL             string `json:"url"`
	Interfaces      []struct {
		URL             string `json:"url"`
		ProtocolBinding string `json:"protocolBinding"`
		ProtocolVersion string `json:"protocolVersion"`
	} `json:"supportedInterfaces"`
	PreferredTransport string `json:"preferredTransport"`
	ProtocolVersion    string `json:"protocolVersion"`
	Capabilities       struct {
		A2AVersion string   `json:"a2aVersion"`
		Type       string   `json:"type"`
		Features   []string `json:"features"`
	} `json:"capabilities"`
	Skills []struct {
		ID   string   `json:"id"`
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	} `json:"skills"`
	Tags       []string          `json:"tags"`
	Identities []string          `json:"identities"`
	SPIFFEID   string            `json:"spiffeId"`
	Signatures []json.RawMessage `json:"signatures"`
}

// Normalize turns a registry's card into the directory's record, as of now. The DID is the
// card's "did"; else did:agentvault:<humanReadableId>; else, for an A2A card, the did:web
// of its endpoint's host and path. The service type is capabilities.type; else the first of
// the card's tags; else the first tag of its first skill; else "general". Capabilities are
// capabilities.features and the skill IDs. Names, tags and values are trimmed and
// lower-cased where they are matched on (tags, capabilities, service type).
func Normalize(registryID string, c Card, now time.Time) (federation.Agent, error) {
	var raw card
	if err := json.Unmarshal(c.Data, &raw); err != nil {
		return federation.Agent{}, fmt.Errorf("card %s: not a JSON object: %w", c.SourceID, err)
	}
	a := federation.Agent{
		Name:        clip(strings.TrimSpace(raw.Name), maxNameLen),
		Description: clip(strings.TrimSpace(raw.Description), maxDescriptionLen),
		Registry:    registryID,
		SourceID:    c.SourceID,
		Status:      federation.StatusActive,
		LastSeen:    now.UTC(),
		Signature:   federation.SignatureNone,
	}
	if a.Name == "" {
		return a, fmt.Errorf("card %s: no name", c.SourceID)
	}

	a.Endpoint, a.Protocol, a.Version = endpoint(raw)
	if a.Endpoint == "" {
		return a, fmt.Errorf("card %s: no endpoint (url or supportedInterfaces)", c.SourceID)
	}
	if u, err := url.Parse(a.Endpoint); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return a, fmt.Errorf("card %s: endpoint %q is not an http(s) URL", c.SourceID, a.Endpoint)
	}

	switch {
	case validDID(raw.DID):
		a.DID = raw.DID
	case raw.HumanReadableID != "":
		a.DID = "did:agentvault:" + raw.HumanReadableID
	default:
		a.DID = didWeb(a.Endpoint)
	}
	if !validDID(a.DID) {
		return a, fmt.Errorf("card %s: no usable DID (did, humanReadableId or endpoint)", c.SourceID)
	}

	for _, s := range raw.Skills {
		if len(a.Skills) == maxSkills {
			break
		}
		id := normal(s.ID)
		if id == "" {
			continue
		}
		a.Skills = append(a.Skills, federation.Skill{ID: id, Name: clip(strings.TrimSpace(s.Name), maxNameLen), Tags: values(s.Tags, maxTags)})
	}
	a.Tags = values(raw.Tags, maxTags)

	a.ServiceType = normal(raw.Capabilities.Type)
	if a.ServiceType == "" && len(a.Tags) > 0 {
		a.ServiceType = a.Tags[0]
	}
	if a.ServiceType == "" && len(a.Skills) > 0 && len(a.Skills[0].Tags) > 0 {
		a.ServiceType = a.Skills[0].Tags[0]
	}
	if a.ServiceType == "" {
		a.ServiceType = "general"
	}
	caps := slices.Clone(raw.Capabilities.Features)
	for _, s := range a.Skills {
		caps = append(caps, s.ID)
	}
	a.Capabilities = values(caps, maxSkills+maxTags)

	ids := []string{a.DID}
	for _, id := range append(slices.Clone(raw.Identities), raw.DID, raw.SPIFFEID) {
		id = strings.TrimSpace(id)
		if validDID(id) || strings.HasPrefix(id, "spiffe://") {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	a.Identities = slices.Compact(ids)

	if len(raw.Signatures) > 0 {
		a.Signature = verifyCardSignatures(c.Data)
	}
	a.ContentHash = contentHash(a)
	return a, nil
}

// endpoint picks the card's A2A endpoint: the first JSON-RPC interface of an A2A v1.0
// card, else its first interface, else the card's url.
func endpoint(c card) (url, binding, version string) {
	for _, i := range c.Interfaces {
		if strings.EqualFold(i.ProtocolBinding, "JSONRPC") && i.URL != "" {
			return i.URL, "JSONRPC", i.ProtocolVersion
		}
	}
	if len(c.Interfaces) > 0 && c.Interfaces[0].URL != "" {
		return c.Interfaces[0].URL, strings.ToUpper(c.Interfaces[0].ProtocolBinding), c.Interfaces[0].ProtocolVersion
	}
	binding = strings.ToUpper(c.PreferredTransport)
	if binding == "" {
		binding = "JSONRPC"
	}
	version = c.ProtocolVersion
	if version == "" {
		version = c.Capabilities.A2AVersion
	}
	return c.URL, binding, version
}

// didWeb is the did:web identifier of an endpoint URL: its host (port percent-encoded)
// and path segments joined by ':'.
func didWeb(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return ""
	}
	parts := []string{strings.ReplaceAll(strings.ToLower(u.Host), ":", "%3A")}
	for _, seg := range strings.Split(strings.Trim(u.EscapedPath(), "/"), "/") {
		if seg != "" && seg != ".well-known" {
			parts = append(parts, seg)
		}
	}
	return "did:web:" + strings.Join(parts, ":")
}

// validDID checks the DID syntax, did:<method>:<method-specific-id>, and a length that
// fits a table key. It admits '/' in the ID, which DID syntax keeps for paths, because
// AgentVault's humanReadableIds ("org/agent") make did:agentvault IDs with one.
func validDID(s string) bool {
	rest, ok := strings.CutPrefix(s, "did:")
	if !ok || len(s) > 512 {
		return false
	}
	method, id, ok := strings.Cut(rest, ":")
	if !ok || method == "" || id == "" {
		return false
	}
	for _, c := range method {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	for _, c := range id {
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && !strings.ContainsRune("._:%-/", c) {
			return false
		}
	}
	return true
}

// normal is a matched-on value: trimmed, lower case, at most maxValueLen bytes.
func normal(s string) string {
	return clip(strings.ToLower(strings.TrimSpace(s)), maxValueLen)
}

// values normalizes, sorts and de-duplicates a list of matched-on values.
func values(in []string, limit int) []string {
	out := make([]string, 0, len(in))
	for _, v := range in {
		if v = normal(v); v != "" && !strings.Contains(v, "#") {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	return out[:min(len(out), limit)]
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// contentHash hashes what a resync compares: every normalized field but the ones that
// change without the card changing (status, last seen, conflicts).
func contentHash(a federation.Agent) string {
	a.Status, a.LastSeen, a.AlsoListedBy, a.ContentHash = "", time.Time{}, nil, ""
	b, _ := json.Marshal(a) // struct fields marshal in a fixed order; slices are sorted
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
