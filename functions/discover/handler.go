package main

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/federation-gateway/gateway/shared/apigw"
	"github.com/federation-gateway/gateway/shared/directory"
	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/metrics"
)

// Discoverer answers discovery queries; *directory.Discoverer is one.
type Discoverer interface {
	Discover(ctx context.Context, q directory.Query) (directory.Page, error)
}

// result is one agent in a discovery answer.
type result struct {
	DID          string             `json:"did"`
	Name         string             `json:"name"`
	Description  string             `json:"description"`
	Registry     string             `json:"registry"`
	ServiceType  string             `json:"service_type"`
	Capabilities []string           `json:"capabilities"`
	Skills       []federation.Skill `json:"skills"`
	Tags         []string           `json:"tags"`
	Endpoint     string             `json:"endpoint"`
	Status       string             `json:"status"`
	LastSeen     time.Time          `json:"last_seen"`
}

// answer is the body of GET /api/v1/discover. registries_searched counts the registries
// searched and registries names them.
type answer struct {
	Results            []result `json:"results"`
	Count              int      `json:"count"`
	NextCursor         *string  `json:"next_cursor"`
	RegistriesSearched int      `json:"registries_searched"`
	Registries         []string `json:"registries"`
}

// known are the query parameters; any other is refused, so a misspelt filter is not
// silently ignored.
var known = map[string]bool{"service_type": true, "capability": true, "tag": true, "registry": true, "q": true, "status": true, "limit": true, "cursor": true}

// Handler serves GET /api/v1/discover. Each page is counted: DiscoveryResults,
// DiscoveryItemsRead, and their ratio DiscoveryItemsReadPerResult, what a result cost.
func Handler(d Discoverer, log *slog.Logger, m *metrics.Recorder) http.Handler {
	mux := apigw.NewMux()
	mux.HandleFunc("GET /api/v1/discover", func(w http.ResponseWriter, r *http.Request) {
		q, err := parseQuery(r.URL.Query())
		if err != nil {
			apigw.Error(w, r, log, err)
			return
		}
		page, err := d.Discover(r.Context(), q)
		if err != nil {
			apigw.Error(w, r, log, err)
			return
		}
		a := answer{Results: make([]result, 0, len(page.Results)), RegistriesSearched: len(page.Registries), Registries: page.Registries}
		for _, ag := range page.Results {
			a.Results = append(a.Results, result{
				DID: ag.DID, Name: ag.Name, Description: ag.Description, Registry: ag.Registry, ServiceType: ag.ServiceType,
				Capabilities: ag.Capabilities, Skills: ag.Skills, Tags: ag.Tags, Endpoint: ag.Endpoint, Status: ag.Status, LastSeen: ag.LastSeen,
			})
		}
		a.Count = len(a.Results)
		if page.NextCursor != "" {
			a.NextCursor = &page.NextCursor
		}
		log.DebugContext(r.Context(), "discover", "results", a.Count, "items_read", page.ItemsRead)
		perResult := float64(page.ItemsRead)
		if a.Count > 0 {
			perResult /= float64(a.Count)
		}
		m.Emit(r.Context(), nil, metrics.Count(metrics.DiscoveryResults, a.Count), metrics.Count(metrics.DiscoveryItemsRead, page.ItemsRead),
			metrics.Gauge(metrics.DiscoveryItemsReadPerResult, perResult))
		apigw.JSON(w, http.StatusOK, a)
	})
	return mux
}

func parseQuery(v url.Values) (directory.Query, error) {
	for name := range v {
		if !known[name] {
			return directory.Query{}, federation.Errorf(federation.EINVALID, "unknown query parameter %q", name)
		}
	}
	for _, name := range []string{"service_type", "tag", "registry", "q", "status", "limit", "cursor"} {
		if len(v[name]) > 1 {
			return directory.Query{}, federation.Errorf(federation.EINVALID, "%s is given %d times; it takes one value", name, len(v[name]))
		}
	}
	q := directory.Query{
		ServiceType: v.Get("service_type"), Capabilities: v["capability"], Tag: v.Get("tag"), Registry: v.Get("registry"),
		Text: v.Get("q"), Status: v.Get("status"), Cursor: v.Get("cursor"),
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return q, federation.Errorf(federation.EINVALID, "limit %q is not a whole number", s)
		}
		if n == 0 {
			return q, federation.Errorf(federation.EINVALID, "limit 0: want 1 to %d", directory.MaxLimit)
		}
		q.Limit = n
	}
	return q, nil
}
