package directory

import (
	"context"
	"encoding/json"
	"time"
)

// Source is one registry as the directory consumes it: a listing of its agents' cards, and
// one agent's card by its DID. The registry package implements it for each kind of registry
// (AgentVault v1 and v2, A2A agents, a static document); the directory never sees HTTP.
type Source interface {
	// Fetch lists the registry's agents. It fetches a card again only when it is new, its
	// version in req.Known no longer matches, or req.FullRefresh is set; it stops
	// fetching cards when ctx's deadline is near and reports how many it deferred.
	// Errors: EUNAVAILABLE (the registry failed, timed out, or answered something that is
	// not its contract), EINVALID (an address refused by the outbound guard), EINTERNAL.
	Fetch(ctx context.Context, req Request) (Listing, error)
	// LookupDID finds the card of the agent with that DID by the registry's own means,
	// without listing the whole registry. The card's DID is the caller's to check, as
	// Normalize derives it. Errors: ENOTFOUND (the registry does not list such an agent,
	// or cannot be asked for that kind of DID), EUNAVAILABLE (the registry failed),
	// EINVALID (an address refused by the outbound guard).
	LookupDID(ctx context.Context, did string) (Card, error)
}

// Request is what the sync knows of a registry from its previous runs.
type Request struct {
	// Cursor is the Listing.Cursor of the previous successful run ("" for none).
	Cursor string
	// Known holds the Version of each stored card, by source ID.
	Known map[string]string
	// FullRefresh asks for every card to be fetched again, whatever its version.
	FullRefresh bool
}

// Card is one agent card as the registry serves it, before normalization.
type Card struct {
	SourceID  string          // the registry's own ID for the agent (AgentVault card ID, A2A base URL)
	Data      json.RawMessage // the card document (AgentVault card_data, an A2A AgentCard, ...)
	Active    bool            // the registry lists it as active
	UpdatedAt time.Time       // when the registry says it last changed; zero if it does not say
	// Version is the Source's token for what it served (a listing entry's hash, an ETag):
	// opaque to the directory, which stores it beside the record and hands it back in
	// Request.Known, so the Source can tell a changed card from one it served before.
	Version string
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
	// Requests and Pages count the requests made and the listing pages read. Fetch sets
	// them on error too, so a failed run's cost is still known.
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
