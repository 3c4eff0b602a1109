package demo

import (
	"crypto/ed25519"
	"crypto/sha256"
	"math/big"
)

// Registry IDs of the demo federation.
const (
	Alpha = "alpha" // AgentVault registry v1 API only
	Beta  = "beta"  // v1 API and the v2 federation API
)

// agentSpec is one line of the catalog below.
type agentSpec struct {
	id, name, description string
	serviceType           string
	provider              Provider
	skills                []string // skill IDs; the first is the default
	tags                  []string
	did                   string // "key" derives a did:key; otherwise the DID itself
	task                  bool   // answers with a completed task instead of a message
	registries            []string
	inactive              bool // listed but deactivated
}

var (
	acme     = Provider{Name: "Acme Weather", URL: "https://acme.example"}
	globex   = Provider{Name: "Globex", URL: "https://globex.example"}
	lingua   = Provider{Name: "Lingua Labs", URL: "https://lingua.example"}
	polyglot = Provider{Name: "Polyglot", URL: "https://polyglot.example"}
	numerix  = Provider{Name: "Numerix", URL: "https://numerix.example"}
	textkit  = Provider{Name: "TextKit", URL: "https://textkit.example"}
	moodlabs = Provider{Name: "Mood Labs", URL: "https://moodlabs.example"}
	findit   = Provider{Name: "FindIt", URL: "https://findit.example"}
	legacy   = Provider{Name: "Legacy Systems", URL: "https://legacy.example"}
)

// catalog is the demo federation: 15 live agents, 16 listings. acme/weather-bot is
// listed by both registries with the same humanReadableId and DID (the duplicate the
// gateway must resolve); echo, sum, weather-lookup and the translations are offered by
// agents of both; legacy/echo-classic is listed but inactive.
var catalog = []agentSpec{
	{id: "acme/weather-bot", name: "Weather Bot", description: "Current weather and a three-day forecast for any city.",
		serviceType: "weather", provider: acme, skills: []string{"weather-lookup", "forecast", "echo"},
		tags: []string{"weather", "forecast"}, did: "key", registries: []string{Alpha, Beta}},
	{id: "acme/forecast-pro", name: "Forecast Pro", description: "Three-day forecasts for cities worldwide.",
		serviceType: "weather", provider: acme, skills: []string{"forecast", "weather-lookup"},
		tags: []string{"weather", "forecast"}, registries: []string{Alpha}},
	{id: "lingua/pig-latin", name: "Pig Latin Translator", description: "Translates English to Pig Latin.",
		serviceType: "translation", provider: lingua, skills: []string{"translate-to-pig-latin", "echo"},
		tags: []string{"translation", "fun"}, did: "did:web:lingua.example:agents:pig-latin", registries: []string{Alpha}},
	{id: "lingua/spanish-tutor", name: "Spanish Tutor", description: "Translates simple English phrases to Spanish.",
		serviceType: "translation", provider: lingua, skills: []string{"translate-en-es"},
		tags: []string{"translation", "spanish"}, registries: []string{Alpha}},
	{id: "numerix/calculator", name: "Calculator", description: "Exact sums and products of the numbers it is sent.",
		serviceType: "math", provider: numerix, skills: []string{"sum", "product"},
		tags: []string{"math", "calculator"}, did: "key", task: true, registries: []string{Alpha}},
	{id: "textkit/shouter", name: "Shouter", description: "Turns text to upper case.",
		serviceType: "text", provider: textkit, skills: []string{"uppercase", "echo"},
		tags: []string{"text", "transform"}, registries: []string{Alpha}},
	{id: "textkit/counter", name: "Word Counter", description: "Counts words, characters and lines.",
		serviceType: "text", provider: textkit, skills: []string{"word-count"},
		tags: []string{"text", "analysis"}, registries: []string{Alpha}},
	{id: "findit/web-search", name: "Web Search", description: "Searches a small web index.",
		serviceType: "search", provider: findit, skills: []string{"web-search"},
		tags: []string{"search", "web"}, registries: []string{Alpha}},

	{id: "globex/storm-watch", name: "Storm Watch", description: "Severe weather alerts and current conditions.",
		serviceType: "weather", provider: globex, skills: []string{"severe-alerts", "weather-lookup"},
		tags: []string{"weather", "alerts"}, did: "did:web:globex.example:agents:storm-watch", registries: []string{Beta}},
	{id: "polyglot/translator", name: "Polyglot Translator", description: "English to Spanish and to Pig Latin.",
		serviceType: "translation", provider: polyglot, skills: []string{"translate-en-es", "translate-to-pig-latin"},
		tags: []string{"translation", "spanish", "fun"}, did: "key", registries: []string{Beta}},
	{id: "numerix/statistics", name: "Statistics", description: "Means and sums of the numbers it is sent.",
		serviceType: "math", provider: numerix, skills: []string{"mean", "sum"},
		tags: []string{"math", "statistics"}, task: true, registries: []string{Beta}},
	{id: "textkit/mirror", name: "Mirror", description: "Reverses text.",
		serviceType: "text", provider: textkit, skills: []string{"reverse", "echo"},
		tags: []string{"text", "transform"}, registries: []string{Beta}},
	{id: "moodlabs/sentiment", name: "Sentiment Analyzer", description: "Tells whether text is positive, negative or neutral.",
		serviceType: "text", provider: moodlabs, skills: []string{"sentiment"},
		tags: []string{"text", "analysis", "nlp"}, registries: []string{Beta}},
	{id: "findit/doc-search", name: "Docs Search", description: "Searches the federation documentation.",
		serviceType: "search", provider: findit, skills: []string{"doc-search"},
		tags: []string{"search", "docs"}, registries: []string{Beta}},
	{id: "legacy/echo-classic", name: "Echo Classic", description: "The original echo agent, retired.",
		serviceType: "text", provider: legacy, skills: []string{"echo"},
		tags: []string{"text", "echo"}, registries: []string{Beta}, inactive: true},
}

// DIDKey derives an Ed25519 key from name and returns it with its did:key: an identity
// beside the demo agents' (an operator's, in tests), as public as theirs.
func DIDKey(name string) (string, ed25519.PrivateKey) { return didKey(name) }

// didKey derives an Ed25519 key from name and returns it with its did:key (multicodec
// 0xed01, base58btc). The key is derived from a public name, so anyone can compute it:
// it identifies a demo agent, it protects nothing.
func didKey(name string) (string, ed25519.PrivateKey) {
	seed := sha256.Sum256([]byte("federation-gateway demo did:key " + name))
	key := ed25519.NewKeyFromSeed(seed[:])
	pub := key.Public().(ed25519.PublicKey)
	return "did:key:z" + base58(append([]byte{0xed, 0x01}, pub...)), key
}

const base58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

// base58 encodes b in the Bitcoin alphabet (base58btc), leading zero bytes as '1'.
func base58(b []byte) string {
	n := new(big.Int).SetBytes(b)
	radix, mod := big.NewInt(58), new(big.Int)
	var out []byte
	for n.Sign() > 0 {
		n.DivMod(n, radix, mod)
		out = append(out, base58Alphabet[mod.Int64()])
	}
	for _, c := range b {
		if c != 0 {
			break
		}
		out = append(out, '1')
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return string(out)
}
