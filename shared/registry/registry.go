// Package registry speaks the external registries' real contracts (DESIGN §6): the
// AgentVault registry v1 list and card API, the AgentVault v2 federation API, A2A agent
// cards at /.well-known/agent-card.json, and a static JSON document of cards. Each kind is a
// Client; the sync normalizes the cards they return.
package registry

import (
	"context"
	"encoding/json"
	"time"
)

// Client fetches the agent cards of one registry.
type Client interface {
	// Fetch lists the registry's agents. It fetches a card again only when it is new, its
	// listing entry changed (ListHash), its ETag no longer matches, or req.FullRefresh is
	// set; it stops fetching cards when ctx's deadline is near and reports how many it
	// deferred. Errors: EUNAVAILABLE (the registry failed, timed out, or answered
	// something that is not its contract), EINVALID (an address refused by the outbound
	// guard), EINTERNAL.
	Fetch(ctx context.Context, req Request) (Listing, error)
	// Lookup fetches one card by the registry's own ID for it (an AgentVault card ID, or
	// an A2A agent's base URL). Errors: ENOTFOUND, EUNAVAILABLE, EINVALID.
	Lookup(ctx context.Context, sourceID string) (Card, error)
}

// Request is what the sync knows of the registry from its previous runs.
type Request struct {
	// Cursor is the Listing.Cursor of the previous successful run ("" for none).
	Cursor string
	// Known holds what was stored of each card, by source ID.
	Known map[string]Known
	// FullRefresh asks for every card to be fetched again, cache or not.
	FullRefresh bool
}

// Known is what the directory stored of a card when it was last fetched.
type Known struct {
	ListHash string // of its listing entry, for kinds whose listing does not carry the card
	ETag     string // of the card document, for kinds served over plain HTTP GET
}

// Card is one agent card as the registry serves it, before normalization.
type Card struct {
	SourceID  string          // the registry's own ID for the agent (AgentVault card ID, A2A base URL)
	Data      json.RawMessage // the card document (AgentVault card_data, an A2A AgentCard, ...)
	Active    bool            // the registry lists it as active
	UpdatedAt time.Time       // when the registry says it last changed; zero if it does not say
	ListHash  string          // see Known.ListHash
	ETag      string          // see Known.ETag
}

// Listing is the result of one Fetch.
type Listing struct {
	// Cards are the cards fetched this run: new, changed or refreshed ones.
	Cards []Card
	// Complete says the registry was listed in full: Listed is then its whole
	// membership, and a known agent absent from it is gone.
	Complete bool
	// Listed is the source ID of every agent the listing named, fetched or not.
	Listed []string
	// Cursor is where the next run resumes (AgentVault v2: the newest updated_at seen).
	Cursor string
	// Deferred counts listed cards that are new or changed but were not fetched within the
	// time budget; the next run fetches them.
	Deferred int
	// Requests and Pages count the HTTP requests made and the listing pages read. Fetch
	// sets them on error too, so a failed run's cost is still known.
	Requests int
	Pages    int
	// Skipped counts entries the registry served that are not usable cards (no ID, a
	// card document that is not a JSON object, an oversized card); the registry's
	// other cards are still returned.
	Skipped int
	// Problems says, in a few caller-safe lines, what went wrong without failing the run:
	// skipped entries, cards deferred after errors, why a listing is not Complete.
	Problems []string
}
