package demo

import (
	"crypto/sha1"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Limits of the AgentVault APIs (docs/architecture.md, "External contracts"): a v1 list
// page holds at most 250 cards, a v2 federation page at most 1000.
const (
	MaxListLimit       = 250
	MaxFederationLimit = 1000
	defaultListLimit   = 100
	cardsPath          = "/api/v1/agent-cards/"
)

// TimeLayout is how the registries write timestamps: UTC with microseconds, the precision
// AgentVault's database keeps. Timestamps are stored at that precision too, so an
// updated_at a client reads back and sends as `since` compares exactly.
const TimeLayout = "2006-01-02T15:04:05.000000Z07:00"

// ErrNotFound is returned for a card ID a registry does not hold.
var ErrNotFound = errors.New("agent card not found")

// Card is an AgentVault agent card: the card_data a registry stores and serves.
type Card struct {
	SchemaVersion   string       `json:"schemaVersion"`
	HumanReadableID string       `json:"humanReadableId"`
	AgentVersion    string       `json:"agentVersion"`
	Name            string       `json:"name"`
	Description     string       `json:"description"`
	URL             string       `json:"url"` // the agent's A2A endpoint
	Provider        Provider     `json:"provider"`
	Capabilities    Capabilities `json:"capabilities"`
	AuthSchemes     []AuthScheme `json:"authSchemes"`
	Skills          []CardSkill  `json:"skills"`
	Tags            []string     `json:"tags"`
	DID             string       `json:"did,omitempty"`
}

// Provider is the organization behind an agent.
type Provider struct {
	Name string `json:"name"`
	URL  string `json:"url,omitempty"`
}

// Capabilities says which A2A version an agent speaks, its service type and features.
type Capabilities struct {
	A2AVersion string         `json:"a2aVersion"`
	Type       string         `json:"type,omitempty"`
	Features   []string       `json:"features,omitempty"`
	TEEDetails map[string]any `json:"teeDetails,omitempty"`
}

// AuthScheme is how a client authenticates to the agent; the demo agents take "none".
type AuthScheme struct {
	Scheme string `json:"scheme"`
}

// CardSkill is a skill as an AgentVault card lists it.
type CardSkill struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Tags        []string `json:"tags,omitempty"`
}

// Record is a card as a registry stores it.
type Record struct {
	ID          string // a UUID, the registry's own ID for the card
	Card        Card
	Active      bool
	CreatedAt   time.Time
	UpdatedAt   time.Time
	DeveloperID int
	// SourceRegistry is the identity of the registry the card originates from: this
	// registry's own for its cards, another's for a card it federated from it.
	SourceRegistry string
	// RawCardData, when set, is served as card_data instead of Card (see SetRawCardData).
	RawCardData json.RawMessage
}

// cardData is the card_data the registry serves for the record.
func (rec Record) cardData() any {
	if rec.RawCardData != nil {
		return rec.RawCardData
	}
	return rec.Card
}

// Registry is an in-process AgentVault registry: the v1 list and card API and, when
// built with the federation API, the v2 incremental endpoint. Its cards can be changed
// while it serves, and its listener stopped and started again on the same address.
type Registry struct {
	// ID names the registry in the gateway's configuration ("alpha").
	ID string
	// Kind is the configuration kind its API matches: agentvault or agentvault-federation.
	Kind string
	// Identity is its SPIFFE ID, what the v2 API reports as a card's source_registry.
	Identity string

	mu      sync.Mutex
	records map[string]*Record
	last    time.Time // the latest timestamp issued
	addr    string    // the address it last listened on
	srv     *http.Server
	done    chan struct{}
	handler http.Handler // serve: the request log and the faults, then api
	api     http.Handler

	faults    Faults
	requests  []Request
	listPages int // v1 pages served since the faults were set, for AfterListPage
}

// NewRegistry returns a registry with no cards and no listener. federationAPI adds the v2
// endpoint GET /api/v1/federation/agent-cards.
func NewRegistry(id string, federationAPI bool) *Registry {
	r := &Registry{
		ID:       id,
		Kind:     "agentvault",
		Identity: "spiffe://demo.agentvault.local/ns/agentvault/sa/registry-" + id,
		records:  map[string]*Record{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+cardsPath+"{$}", r.list)
	mux.HandleFunc("GET /api/v1/agent-cards", r.list) // FastAPI redirects this to the slash form; answering saves a hop
	mux.HandleFunc("GET /api/v1/agent-cards/{id}", r.details)
	if federationAPI {
		r.Kind = "agentvault-federation"
		mux.HandleFunc("GET /api/v1/federation/agent-cards", r.federation)
	}
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.api = mux
	r.handler = http.HandlerFunc(r.serve)
	return r
}

// Handler serves the registry's API, for a caller that runs its own server (httptest).
func (r *Registry) Handler() http.Handler { return r.handler }

// now issues a timestamp later than every one issued before, at the stored precision, so
// that every change has its own updated_at and a `since` cursor never splits a tie.
func (r *Registry) now() time.Time {
	t := time.Now().UTC().Truncate(time.Microsecond)
	if !t.After(r.last) {
		t = r.last.Add(time.Microsecond)
	}
	r.last = t
	return t
}

// Put adds a card, or replaces the card_data of the card with the same humanReadableId,
// and bumps its updated_at. A new card is active.
func (r *Registry) Put(card Card) Record {
	return r.put(card, r.Identity)
}

func (r *Registry) put(card Card, source string) Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	for _, rec := range r.records {
		if rec.Card.HumanReadableID == card.HumanReadableID {
			rec.Card, rec.UpdatedAt = card, now
			return *rec
		}
	}
	rec := &Record{
		ID: cardID(r.ID, card.HumanReadableID), Card: card, Active: true, CreatedAt: now, UpdatedAt: now,
		DeveloperID: developerID(card.Provider.Name), SourceRegistry: source,
	}
	r.records[rec.ID] = rec
	return *rec
}

// SetActive activates or deactivates (AgentVault's soft delete) a card and bumps its
// updated_at. It returns ErrNotFound for an unknown ID.
func (r *Registry) SetActive(id string, active bool) (Record, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec, ok := r.records[id]
	if !ok {
		return Record{}, fmt.Errorf("registry %s: card %s: %w", r.ID, id, ErrNotFound)
	}
	rec.Active, rec.UpdatedAt = active, r.now()
	return *rec, nil
}

// Get returns the card with the registry's ID id.
func (r *Registry) Get(id string) (Record, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec, ok := r.records[id]
	if !ok {
		return Record{}, false
	}
	return *rec, true
}

// Find returns the card with the given humanReadableId.
func (r *Registry) Find(humanReadableID string) (Record, bool) {
	for _, rec := range r.Records() {
		if rec.Card.HumanReadableID == humanReadableID {
			return rec, true
		}
	}
	return Record{}, false
}

// Records returns every card, active or not, oldest first.
func (r *Registry) Records() []Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Record, 0, len(r.records))
	for _, rec := range r.records {
		out = append(out, *rec)
	}
	// Creation order is stable under updates, so a client paging through the v1 list
	// while cards change neither skips nor repeats a card that was there all along.
	slices.SortFunc(out, func(a, b Record) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// Start serves the registry on addr, or, when addr is "", on the address it listened on
// before, so that a stopped registry comes back at the URL the gateway was given.
func (r *Registry) Start(addr string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.srv != nil {
		return fmt.Errorf("registry %s is already running on %s", r.ID, r.addr)
	}
	if addr == "" {
		addr = r.addr
	}
	if addr == "" {
		return fmt.Errorf("registry %s has no address to start on", r.ID)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("registry %s: %w", r.ID, err)
	}
	r.addr = ln.Addr().String()
	srv := &http.Server{Handler: r.handler, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	r.srv, r.done = srv, done
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	return nil
}

// Stop closes the listener and every open connection, as a registry that went down
// would: requests in flight fail, new connections are refused. Stopping a stopped
// registry does nothing.
func (r *Registry) Stop() error {
	r.mu.Lock()
	srv, done := r.srv, r.done
	r.srv, r.done = nil, nil
	r.mu.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.Close()
	<-done
	return err
}

// Running reports whether the registry is serving.
func (r *Registry) Running() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.srv != nil
}

// URL is the registry's base URL (the configuration's registries[].url), "" before its
// first Start. It stays the same across Stop and Start.
func (r *Registry) URL() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.addr == "" {
		return ""
	}
	return "http://" + r.addr
}

// cardID derives a stable, UUID-shaped (version 5 layout) card ID from the registry and
// the card's humanReadableId, so a restarted demo serves the same IDs and the same agent
// has a different ID in each registry, as it would in two real ones.
func cardID(registry, humanReadableID string) string {
	h := sha1.Sum([]byte("agentvault-demo/" + registry + "/" + humanReadableID))
	h[6] = h[6]&0x0f | 0x50
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

func developerID(provider string) int {
	h := sha1.Sum([]byte(provider))
	return 1 + int(h[0])%100
}

// isUUID accepts the 8-4-4-4-12 hex form FastAPI's UUID path parameter accepts.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
				return false
			}
		}
	}
	return true
}

type summary struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
}

type pagination struct {
	TotalItems  int `json:"total_items"`
	Limit       int `json:"limit"`
	Offset      int `json:"offset"`
	TotalPages  int `json:"total_pages"`
	CurrentPage int `json:"current_page"`
}

// validationError is FastAPI's 422 body, which AgentVault returns for a bad parameter.
type validationError struct {
	Detail []fieldError `json:"detail"`
}

type fieldError struct {
	Loc  []string `json:"loc"`
	Msg  string   `json:"msg"`
	Type string   `json:"type"`
}

func invalid(w http.ResponseWriter, field, msg string) {
	writeJSON(w, http.StatusUnprocessableEntity, validationError{Detail: []fieldError{{Loc: []string{"query", field}, Msg: msg, Type: "value_error"}}})
}

// intParam reads an integer query parameter within [min, max].
func intParam(w http.ResponseWriter, req *http.Request, name string, def, min, max int) (int, bool) {
	s := req.URL.Query().Get(name)
	if s == "" {
		return def, true
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		invalid(w, name, "Input should be a valid integer")
		return 0, false
	}
	if n < min || n > max {
		invalid(w, name, fmt.Sprintf("Input should be between %d and %d", min, max))
		return 0, false
	}
	return n, true
}

// boolParam reads a boolean query parameter the way pydantic does.
func boolParam(w http.ResponseWriter, req *http.Request, name string, def bool) (value, set, ok bool) {
	s := strings.ToLower(req.URL.Query().Get(name))
	switch s {
	case "":
		return def, false, true
	case "true", "1", "yes", "on", "t", "y":
		return true, true, true
	case "false", "0", "no", "off", "f", "n":
		return false, true, true
	}
	invalid(w, name, "Input should be a valid boolean")
	return false, false, false
}

// list serves GET /api/v1/agent-cards/: the v1 summaries, paged by skip and limit.
func (r *Registry) list(w http.ResponseWriter, req *http.Request) {
	skip, ok := intParam(w, req, "skip", 0, 0, 1<<31-1)
	if !ok {
		return
	}
	limit, ok := intParam(w, req, "limit", defaultListLimit, 1, MaxListLimit)
	if !ok {
		return
	}
	activeOnly, _, ok := boolParam(w, req, "active_only", true)
	if !ok {
		return
	}
	hasTEE, teeSet, ok := boolParam(w, req, "has_tee", false)
	if !ok {
		return
	}
	// AgentVault matches search against the name and the description only, case
	// insensitively: not the humanReadableId, which is why a client looking a card up
	// by it has to check the candidates' cards.
	search := strings.ToLower(req.URL.Query().Get("search"))
	if len(search) > 100 {
		invalid(w, "search", "String should have at most 100 characters")
		return
	}
	tags := req.URL.Query()["tags"]
	faults := r.currentFaults()
	if faults.MaxLimit > 0 {
		limit = min(limit, faults.MaxLimit)
	}

	recs := r.Records()
	if faults.NewestFirst {
		slices.SortStableFunc(recs, func(a, b Record) int { return b.UpdatedAt.Compare(a.UpdatedAt) })
	}
	var matched []Record
	for _, rec := range recs {
		switch {
		case activeOnly && !rec.Active:
		case search != "" && !strings.Contains(strings.ToLower(rec.Card.Name+"\x00"+rec.Card.Description), search):
		case teeSet && hasTEE != (rec.Card.Capabilities.TEEDetails != nil):
		case !containsAll(rec.Card.Tags, tags):
		default:
			matched = append(matched, rec)
		}
	}
	items := []summary{}
	for i := skip; i < len(matched) && i < skip+limit; i++ {
		items = append(items, summary{ID: matched[i].ID, Name: matched[i].Card.Name, Description: matched[i].Card.Description})
	}
	if faults.AfterListPage != nil {
		r.mu.Lock()
		r.listPages++
		page := r.listPages
		r.mu.Unlock()
		faults.AfterListPage(r, page)
	}
	body := map[string]any{"items": items}
	if !faults.NoPagination {
		body["pagination"] = pagination{
			TotalItems: len(matched), Limit: limit, Offset: skip,
			TotalPages: (len(matched) + limit - 1) / limit, CurrentPage: skip/limit + 1,
		}
	}
	writeJSON(w, http.StatusOK, body)
}

func containsAll(have, want []string) bool {
	for _, t := range want {
		if !slices.Contains(have, t) {
			return false
		}
	}
	return true
}

// details serves GET /api/v1/agent-cards/{id}: one card, active or not.
func (r *Registry) details(w http.ResponseWriter, req *http.Request) {
	id := req.PathValue("id")
	if !isUUID(id) {
		writeJSON(w, http.StatusUnprocessableEntity, validationError{Detail: []fieldError{{Loc: []string{"path", "card_id"}, Msg: "Input should be a valid UUID", Type: "uuid_parsing"}}})
		return
	}
	rec, ok := r.Get(strings.ToLower(id))
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"detail": "Agent Card not found"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id": rec.ID, "developer_id": rec.DeveloperID, "developer_is_verified": false,
		"card_data": rec.cardData(), "name": rec.Card.Name, "description": rec.Card.Description,
		"is_active": rec.Active, "created_at": rec.CreatedAt.Format(TimeLayout), "updated_at": rec.UpdatedAt.Format(TimeLayout),
	})
}

// federation serves the v2 GET /api/v1/federation/agent-cards: the cards changed after
// `since` (strictly), oldest change first, inactive ones included so that a
// deactivation reaches the peers that federate the card.
func (r *Registry) federation(w http.ResponseWriter, req *http.Request) {
	limit, ok := intParam(w, req, "limit", defaultListLimit, 1, MaxFederationLimit)
	if !ok {
		return
	}
	var since time.Time
	if s := req.URL.Query().Get("since"); s != "" {
		t, err := parseTime(s)
		if err != nil {
			invalid(w, "since", "Input should be a valid datetime")
			return
		}
		since = t
	}
	faults := r.currentFaults()
	recs := r.Records()
	slices.SortStableFunc(recs, func(a, b Record) int { return a.UpdatedAt.Compare(b.UpdatedAt) })
	out := []map[string]any{}
	for _, rec := range recs {
		if len(out) == limit {
			break
		}
		if !rec.UpdatedAt.After(since) && !(faults.SinceInclusive && rec.UpdatedAt.Equal(since)) {
			continue
		}
		out = append(out, map[string]any{
			"id": rec.ID, "developer_id": rec.DeveloperID, "card_data": rec.cardData(),
			"name": rec.Card.Name, "description": rec.Card.Description, "is_active": rec.Active,
			"created_at": rec.CreatedAt.Format(TimeLayout), "updated_at": rec.UpdatedAt.Format(TimeLayout),
			"source_registry": rec.SourceRegistry,
		})
	}
	if faults.WrapFederation {
		writeJSON(w, http.StatusOK, map[string]any{"items": out})
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// parseTime accepts RFC 3339 with any fraction, a time without zone (UTC, as pydantic
// reads it) and a '+' that arrived as a space because the client did not escape it.
func parseTime(s string) (time.Time, error) {
	s = strings.ReplaceAll(s, " ", "+")
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.ParseInLocation("2006-01-02T15:04:05.999999999", s, time.UTC)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"detail":"Internal Server Error"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
