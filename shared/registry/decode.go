package registry

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// The decoders below take a whole response body and return what the adapters use. They
// are separate from the HTTP code so the fuzz targets can reach them; they must never
// panic, whatever the bytes.

// v1Page is a page of the AgentVault v1 listing.
type v1Page struct {
	Items      []v1Item
	Pagination *v1Pagination // nil when the registry did not send one
}

type v1Item struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
}

type v1Pagination struct {
	TotalItems  *int `json:"total_items"`
	Limit       *int `json:"limit"`
	Offset      *int `json:"offset"`
	TotalPages  *int `json:"total_pages"`
	CurrentPage *int `json:"current_page"`
}

func decodeV1Page(body []byte) (v1Page, error) {
	var raw struct {
		Items      *[]json.RawMessage `json:"items"`
		Pagination *v1Pagination      `json:"pagination"`
	}
	if err := decodeJSON(body, &raw); err != nil {
		return v1Page{}, err
	}
	if raw.Items == nil {
		return v1Page{}, errors.New(`no "items" list`)
	}
	p := v1Page{Pagination: raw.Pagination, Items: make([]v1Item, 0, len(*raw.Items))}
	for _, r := range *raw.Items {
		var it v1Item
		// An item whose fields have the wrong types is kept with an empty ID, for the
		// caller to skip and count: one bad entry does not hide the others.
		if !isObject(r) || json.Unmarshal(r, &it) != nil {
			it = v1Item{}
		}
		p.Items = append(p.Items, it)
	}
	return p, nil
}

// avCard is an AgentVault card record: the v1 details endpoint's answer and an entry of the
// v2 federation listing.
type avCard struct {
	ID        string          `json:"id"`
	CardData  json.RawMessage `json:"card_data"`
	IsActive  *bool           `json:"is_active"`
	UpdatedAt string          `json:"updated_at"`
}

// active defaults to true: the v1 listing asked for active cards only, and a v2 record that
// does not say it is inactive is not.
func (c avCard) active() bool { return c.IsActive == nil || *c.IsActive }

func decodeAVCard(body []byte) (avCard, error) {
	var c avCard
	if err := decodeJSON(body, &c); err != nil {
		return avCard{}, err
	}
	return c, nil
}

// decodeV2Page decodes a page of the v2 federation listing: a JSON list of card records,
// or, defensively, an object wrapping it in "items". Records that are not objects or have
// wrongly typed fields come back as zero records, for the caller to skip and count.
func decodeV2Page(body []byte) ([]avCard, error) {
	var list []json.RawMessage
	if first(body) == '{' {
		var wrapped struct {
			Items *[]json.RawMessage `json:"items"`
		}
		if err := decodeJSON(body, &wrapped); err != nil {
			return nil, err
		}
		if wrapped.Items == nil {
			return nil, errors.New(`an object without an "items" list`)
		}
		list = *wrapped.Items
	} else if err := decodeJSON(body, &list); err != nil {
		return nil, err
	}
	if list == nil {
		// null is not an empty page: taken as one, it would empty the directory.
		return nil, errors.New("null instead of a list")
	}
	cards := make([]avCard, 0, len(list))
	for _, r := range list {
		var c avCard
		if !isObject(r) || json.Unmarshal(r, &c) != nil {
			c = avCard{}
		}
		cards = append(cards, c)
	}
	return cards, nil
}

// decodeStatic decodes a static document: a JSON list of cards, or an object holding it
// in "agents" or "cards".
func decodeStatic(body []byte) ([]json.RawMessage, error) {
	var list []json.RawMessage
	if first(body) != '{' {
		if err := decodeJSON(body, &list); err != nil {
			return nil, err
		}
		if list == nil {
			return nil, errors.New("null instead of a list")
		}
		return list, nil
	}
	var doc struct {
		Agents *[]json.RawMessage `json:"agents"`
		Cards  *[]json.RawMessage `json:"cards"`
	}
	if err := decodeJSON(body, &doc); err != nil {
		return nil, err
	}
	switch {
	case doc.Agents != nil && doc.Cards != nil:
		return nil, errors.New(`both "agents" and "cards": which one is the list is ambiguous`)
	case doc.Agents != nil:
		return *doc.Agents, nil
	case doc.Cards != nil:
		return *doc.Cards, nil
	}
	return nil, errors.New(`an object without an "agents" or "cards" list`)
}

// cardIDs are the identifiers a card document names, each "" unless it is a non-blank
// string: what a static document's card is known by, and what a lookup by DID matches.
type cardIDs struct {
	HumanReadableID, ID, DID, Name string
}

// decodeCardIDs reads a card document's identifiers; other fields may be anything.
func decodeCardIDs(card json.RawMessage) (cardIDs, error) {
	var raw struct {
		HumanReadableID any `json:"humanReadableId"`
		ID              any `json:"id"`
		DID             any `json:"did"`
		Name            any `json:"name"`
	}
	if err := json.Unmarshal(card, &raw); err != nil {
		return cardIDs{}, err
	}
	str := func(v any) string {
		if s, ok := v.(string); ok && strings.TrimSpace(s) != "" {
			return s
		}
		return ""
	}
	return cardIDs{HumanReadableID: str(raw.HumanReadableID), ID: str(raw.ID), DID: str(raw.DID), Name: str(raw.Name)}, nil
}

// staticSourceID returns the ID a static document's card is known by: the first of
// humanReadableId, id, did and name that it has.
func (c cardIDs) staticSourceID() (string, error) {
	for _, v := range []string{c.HumanReadableID, c.ID, c.DID, c.Name} {
		if v != "" {
			return v, nil
		}
	}
	return "", errors.New("no humanReadableId, id, did or name")
}

// names reports whether the card names did: as its did, or as the did:agentvault of its
// humanReadableId, the two DIDs directory.Normalize may give it. Which one it has is
// the directory's to decide.
func (c cardIDs) names(did string) bool {
	return did != "" && (c.DID == did || (c.HumanReadableID != "" && agentVaultDID+c.HumanReadableID == did))
}

// agentVaultDID prefixes the DID of an AgentVault card that declares none.
const agentVaultDID = "did:agentvault:"

// decodeJSON decodes exactly one JSON value: trailing data means the body is not what the
// registry meant to send (a truncated proxy page, two documents glued together).
func decodeJSON(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("data after the JSON value")
	}
	return nil
}

func first(b []byte) byte {
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

// isObject reports whether raw is a JSON object; raw comes from the JSON decoder, so it is
// valid JSON.
func isObject(raw json.RawMessage) bool { return first(raw) == '{' }

// compact returns raw without insignificant whitespace, so that a registry re-indenting
// its output is not a change of the card.
func compact(raw json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return raw
	}
	return b.Bytes()
}

// hashFields returns the hex SHA-256 of the fields, each prefixed by its length, so that
// moving bytes from one field to the next changes the hash.
func hashFields(fields ...string) string {
	h := sha256.New()
	for _, f := range fields {
		fmt.Fprintf(h, "%d:%s", len(f), f)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// parseTime reads the timestamps AgentVault serves: RFC 3339, or Python's isoformat of
// a naive datetime (no offset, a space or a T), which it stores in UTC.
func parseTime(s string) (time.Time, error) {
	for _, layout := range []string{
		time.RFC3339Nano,
		"2006-01-02T15:04:05.999999999",
		"2006-01-02 15:04:05.999999999Z07:00",
		"2006-01-02 15:04:05.999999999",
	} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("updated_at %q is not a timestamp", s)
}

// validID reports whether a registry's card ID can be put in a URL path: "." and ".."
// would be resolved away by path cleaning on the way to the registry.
func validID(id string) bool {
	return strings.TrimSpace(id) != "" && id != "." && id != ".." && len(id) <= 512
}
