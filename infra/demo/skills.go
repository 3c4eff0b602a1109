package demo

import (
	"fmt"
	"hash/fnv"
	"math/big"
	"regexp"
	"slices"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Skill is one thing a sample agent can do. Its answer depends only on the input, so a
// test or a demo can predict it.
type Skill struct {
	ID          string
	Name        string
	Description string
	Tags        []string
	Examples    []string
	run         func(Input) Output
}

// Input is what a skill reads from an incoming message: its text parts joined by a
// newline and its first structured (data) part.
type Input struct {
	Text string
	Data map[string]any
}

// Output is a skill's answer: a text part and, for skills that compute something, a data
// part with the same result in structured form.
type Output struct {
	Text string
	Data map[string]any
}

// Run applies the skill to in.
func (s Skill) Run(in Input) Output { return s.run(in) }

// The skills by ID. Agents share them, so "echo" behaves the same on every agent, as a
// gateway comparing equivalent agents expects.
var skills = map[string]Skill{
	"echo": {
		ID: "echo", Name: "Echo", Description: "Replies with the text it was sent.",
		Tags: []string{"text", "echo", "test"}, Examples: []string{"hello"},
		run: func(in Input) Output { return Output(in) },
	},
	"uppercase": {
		ID: "uppercase", Name: "Uppercase", Description: "Replies with the text in upper case.",
		Tags: []string{"text", "transform"}, Examples: []string{"make me loud"},
		run: func(in Input) Output { return Output{Text: strings.ToUpper(in.Text)} },
	},
	"reverse": {
		ID: "reverse", Name: "Reverse", Description: "Replies with the text reversed, character by character.",
		Tags: []string{"text", "transform"}, Examples: []string{"stressed"},
		run: func(in Input) Output {
			r := []rune(in.Text)
			slices.Reverse(r)
			return Output{Text: string(r)}
		},
	},
	"word-count": {
		ID: "word-count", Name: "Word count", Description: "Counts the words, characters and lines of the text.",
		Tags: []string{"text", "analysis", "count"}, Examples: []string{"how many words is this"},
		run: func(in Input) Output {
			words, chars := len(strings.Fields(in.Text)), utf8.RuneCountInString(in.Text)
			lines := 0
			if in.Text != "" {
				lines = strings.Count(in.Text, "\n") + 1
			}
			return Output{
				Text: fmt.Sprintf("%d words, %d characters, %d lines", words, chars, lines),
				Data: map[string]any{"words": words, "characters": chars, "lines": lines},
			}
		},
	},
	"sentiment": {
		ID: "sentiment", Name: "Sentiment", Description: "Classifies the text as positive, negative or neutral with a small word list.",
		Tags: []string{"text", "analysis", "nlp"}, Examples: []string{"I love this great product"},
		run: sentiment,
	},
	"translate-to-pig-latin": {
		ID: "translate-to-pig-latin", Name: "Pig Latin", Description: "Translates English text to Pig Latin.",
		Tags: []string{"translation", "pig-latin", "english"}, Examples: []string{"hello world"},
		run: func(in Input) Output { return Output{Text: pigLatin(in.Text)} },
	},
	"translate-en-es": {
		ID: "translate-en-es", Name: "English to Spanish", Description: "Translates English words to Spanish from a small dictionary; unknown words are kept.",
		Tags: []string{"translation", "spanish", "english"}, Examples: []string{"good morning friend"},
		run: translateES,
	},
	"sum": {
		ID: "sum", Name: "Sum", Description: "Adds the numbers in the text (or in data.numbers), exactly.",
		Tags: []string{"math", "arithmetic"}, Examples: []string{"1 2 3.5"},
		run: func(in Input) Output { return arithmetic(in, "sum") },
	},
	"product": {
		ID: "product", Name: "Product", Description: "Multiplies the numbers in the text (or in data.numbers), exactly.",
		Tags: []string{"math", "arithmetic"}, Examples: []string{"2 3 7"},
		run: func(in Input) Output { return arithmetic(in, "product") },
	},
	"mean": {
		ID: "mean", Name: "Mean", Description: "Averages the numbers in the text (or in data.numbers).",
		Tags: []string{"math", "statistics"}, Examples: []string{"4 8 15 16 23 42"},
		run: func(in Input) Output { return arithmetic(in, "mean") },
	},
	"weather-lookup": {
		ID: "weather-lookup", Name: "Weather lookup", Description: "Current conditions for a city (canned data).",
		Tags: []string{"weather", "lookup"}, Examples: []string{"Paris"},
		run: weatherLookup,
	},
	"forecast": {
		ID: "forecast", Name: "Three-day forecast", Description: "A three-day forecast for a city (canned data).",
		Tags: []string{"weather", "forecast"}, Examples: []string{"London"},
		run: forecast,
	},
	"severe-alerts": {
		ID: "severe-alerts", Name: "Severe weather alerts", Description: "Active severe weather alerts for a city (canned data).",
		Tags: []string{"weather", "alerts"}, Examples: []string{"Miami"},
		run: severeAlerts,
	},
	"web-search": {
		ID: "web-search", Name: "Web search", Description: "Searches a small fixed web index and returns the best three results.",
		Tags: []string{"search", "web"}, Examples: []string{"agent protocol"},
		run: func(in Input) Output { return search(in, webIndex) },
	},
	"doc-search": {
		ID: "doc-search", Name: "Documentation search", Description: "Searches the federation documentation and returns the best three pages.",
		Tags: []string{"search", "docs"}, Examples: []string{"agent card"},
		run: func(in Input) Output { return search(in, docIndex) },
	},
}

var sentimentWords = map[string]int{
	"good": 1, "great": 2, "love": 2, "excellent": 2, "happy": 1, "nice": 1, "fast": 1, "thanks": 1,
	"bad": -1, "terrible": -2, "hate": -2, "awful": -2, "sad": -1, "slow": -1, "broken": -1, "angry": -1,
}

func sentiment(in Input) Output {
	score := 0
	for _, w := range words(in.Text) {
		score += sentimentWords[strings.ToLower(w)]
	}
	label := "neutral"
	switch {
	case score > 0:
		label = "positive"
	case score < 0:
		label = "negative"
	}
	return Output{Text: fmt.Sprintf("%s (score %d)", label, score), Data: map[string]any{"label": label, "score": score}}
}

// words splits text into runs of letters, digits and apostrophes.
func words(text string) []string {
	return strings.FieldsFunc(text, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '\'' })
}

func pigLatin(text string) string {
	fields := strings.Fields(text)
	for i, f := range fields {
		// Keep surrounding punctuation where it was: "world!" -> "orldway!".
		start := strings.IndexFunc(f, unicode.IsLetter)
		if start < 0 {
			continue
		}
		end := strings.LastIndexFunc(f, unicode.IsLetter) + 1
		w := f[start:end]
		capital := unicode.IsUpper([]rune(w)[0])
		lw := strings.ToLower(w)
		var out string
		if k := strings.IndexAny(lw, "aeiou"); k == 0 {
			out = lw + "way"
		} else if k > 0 {
			out = lw[k:] + lw[:k] + "ay"
		} else {
			out = lw + "ay"
		}
		if capital {
			r := []rune(out)
			r[0] = unicode.ToUpper(r[0])
			out = string(r)
		}
		fields[i] = f[:start] + out + f[end:]
	}
	return strings.Join(fields, " ")
}

var spanish = map[string]string{
	"hello": "hola", "goodbye": "adiós", "good": "buenos", "morning": "días", "night": "noches",
	"friend": "amigo", "thank": "gracias", "thanks": "gracias", "you": "tú", "please": "por favor",
	"yes": "sí", "no": "no", "the": "el", "cat": "gato", "dog": "perro", "house": "casa",
	"water": "agua", "weather": "tiempo", "sun": "sol", "rain": "lluvia", "agent": "agente",
	"world": "mundo", "registry": "registro", "message": "mensaje", "and": "y", "is": "es",
}

func translateES(in Input) Output {
	var out, unknown []string
	for _, w := range words(in.Text) {
		if t, ok := spanish[strings.ToLower(w)]; ok {
			out = append(out, t)
		} else {
			out = append(out, w)
			unknown = append(unknown, w)
		}
	}
	text := strings.Join(out, " ")
	data := map[string]any{"source": "en", "target": "es", "translation": text, "unknown": unknownOrEmpty(unknown)}
	return Output{Text: text, Data: data}
}

func unknownOrEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

var numberRE = regexp.MustCompile(`-?\d+(?:\.\d+)?`)

// arithmetic computes with big.Rat so that "0.1 0.2" sums to 0.3, not 0.30000000000000004:
// an answer a test can compare as a string.
func arithmetic(in Input, op string) Output {
	var nums []*big.Rat
	if raw, ok := in.Data["numbers"].([]any); ok {
		for _, v := range raw {
			if r, ok := new(big.Rat).SetString(fmt.Sprint(v)); ok {
				nums = append(nums, r)
			}
		}
	} else {
		for _, s := range numberRE.FindAllString(in.Text, -1) {
			r, _ := new(big.Rat).SetString(s)
			nums = append(nums, r)
		}
	}
	var res *big.Rat
	switch op {
	case "product":
		res = big.NewRat(1, 1)
		for _, n := range nums {
			res.Mul(res, n)
		}
	default:
		res = new(big.Rat)
		for _, n := range nums {
			res.Add(res, n)
		}
		if op == "mean" && len(nums) > 0 {
			res.Quo(res, big.NewRat(int64(len(nums)), 1))
		}
	}
	value := formatRat(res)
	if op == "mean" && len(nums) == 0 {
		value = "undefined"
	}
	return Output{
		Text: fmt.Sprintf("%s = %s", op, value),
		Data: map[string]any{"operation": op, "result": value, "count": len(nums)},
	}
}

// formatRat prints r with up to 6 decimals and no trailing zeros.
func formatRat(r *big.Rat) string {
	if r.IsInt() {
		return r.RatString()
	}
	s := strings.TrimRight(r.FloatString(6), "0")
	return strings.TrimSuffix(s, ".")
}

type weather struct {
	Conditions   string
	TemperatureC int
}

var cannedWeather = map[string]weather{
	"Paris": {"sunny", 21}, "London": {"light rain", 14}, "Tokyo": {"cloudy", 18},
	"New York": {"clear", 24}, "Berlin": {"windy", 16}, "Sydney": {"sunny", 27}, "Miami": {"thunderstorms", 31},
}

var conditions = []string{"sunny", "cloudy", "light rain", "clear", "windy", "fog"}

// city reads the city a weather skill is asked about: data.city, or the text with a
// leading "weather in" dropped, title-cased.
func city(in Input) string {
	if c, ok := in.Data["city"].(string); ok && c != "" {
		return titleCase(c)
	}
	t := strings.TrimSpace(in.Text)
	for _, p := range []string{"weather in ", "forecast for ", "alerts for ", "in ", "for "} {
		if len(t) >= len(p) && strings.EqualFold(t[:len(p)], p) {
			t = t[len(p):]
		}
	}
	t = strings.TrimRight(t, "?!. ")
	if t == "" {
		t = "Paris"
	}
	return titleCase(t)
}

func titleCase(s string) string {
	f := strings.Fields(strings.ToLower(s))
	for i, w := range f {
		r := []rune(w)
		r[0] = unicode.ToUpper(r[0])
		f[i] = string(r)
	}
	return strings.Join(f, " ")
}

// weatherFor is canned: a known city has fixed weather, any other city weather derived
// from a hash of its name, so every answer is stable across runs.
func weatherFor(c string) weather {
	if w, ok := cannedWeather[c]; ok {
		return w
	}
	h := fnv.New32a()
	h.Write([]byte(c))
	v := h.Sum32()
	return weather{conditions[v%uint32(len(conditions))], 5 + int(v/7%25)}
}

func weatherLookup(in Input) Output {
	c := city(in)
	w := weatherFor(c)
	return Output{
		Text: fmt.Sprintf("%s: %s, %d°C", c, w.Conditions, w.TemperatureC),
		Data: map[string]any{"city": c, "conditions": w.Conditions, "temperature_c": w.TemperatureC, "source": "canned"},
	}
}

func forecast(in Input) Output {
	c := city(in)
	w := weatherFor(c)
	first := slices.Index(conditions, w.Conditions)
	var days []any
	var text []string
	for i, name := range []string{"today", "tomorrow", "day after tomorrow"} {
		cond := w.Conditions
		if first >= 0 { // the canned cycle; conditions outside it (thunderstorms) persist
			cond = conditions[(first+i)%len(conditions)]
		}
		t := w.TemperatureC + i
		days = append(days, map[string]any{"day": name, "conditions": cond, "temperature_c": t})
		text = append(text, fmt.Sprintf("%s %s %d°C", name, cond, t))
	}
	return Output{Text: c + ": " + strings.Join(text, "; "), Data: map[string]any{"city": c, "days": days, "source": "canned"}}
}

var cannedAlerts = map[string][]string{
	"Miami":  {"hurricane watch", "flood advisory"},
	"Tokyo":  {"heavy rain warning"},
	"Sydney": {"heat advisory"},
}

func severeAlerts(in Input) Output {
	c := city(in)
	alerts := cannedAlerts[c]
	if alerts == nil {
		alerts = []string{}
	}
	text := c + ": no active alerts"
	if len(alerts) > 0 {
		text = c + ": " + strings.Join(alerts, ", ")
	}
	return Output{Text: text, Data: map[string]any{"city": c, "alerts": alerts, "source": "canned"}}
}

type document struct{ Title, URL, Snippet string }

var webIndex = []document{
	{"Agent2Agent protocol", "https://a2a-protocol.org/", "An open protocol for communication between AI agents."},
	{"JSON-RPC 2.0 specification", "https://www.jsonrpc.org/specification", "A stateless, light-weight remote procedure call protocol."},
	{"Decentralized identifiers (DIDs)", "https://www.w3.org/TR/did-core/", "A new type of identifier for verifiable, decentralized digital identity."},
	{"SPIFFE", "https://spiffe.io/", "Secure production identity framework for everyone."},
	{"Weather on the web", "https://weather.example.com/", "Forecasts and current conditions for cities around the world."},
	{"Pig Latin", "https://en.wikipedia.org/wiki/Pig_Latin", "A language game in which words in English are altered."},
	{"AWS Lambda", "https://aws.amazon.com/lambda/", "Run code without thinking about servers."},
	{"Go programming language", "https://go.dev/", "Build simple, secure, scalable systems with Go."},
}

var docIndex = []document{
	{"Agent cards", "https://docs.federation.example/agent-cards", "How an agent describes its skills, interfaces and capabilities in its agent card."},
	{"Registries", "https://docs.federation.example/registries", "Which registry APIs the gateway federates: AgentVault v1, v2 federation, A2A."},
	{"Routing messages", "https://docs.federation.example/routing", "How the gateway delivers an A2A message to an agent of another registry."},
	{"Identity verification", "https://docs.federation.example/identity", "Verifying SPIFFE SVIDs, did:key and did:web identities and signed agent cards."},
	{"Token bridge", "https://docs.federation.example/bridge", "Moving token value between registries with a deposit, mint and refund saga."},
	{"Discovery", "https://docs.federation.example/discovery", "Searching the federated directory by service type, skill, tag or registry."},
}

// search ranks documents by how many query words their title and snippet contain; ties
// keep index order, so results are stable.
func search(in Input, index []document) Output {
	q := in.Text
	if s, ok := in.Data["query"].(string); ok {
		q = s
	}
	terms := words(strings.ToLower(q))
	type hit struct {
		doc   document
		score int
	}
	var hits []hit
	for _, d := range index {
		hay := strings.ToLower(d.Title + " " + d.Snippet)
		score := 0
		for _, t := range terms {
			if len(t) > 1 && strings.Contains(hay, t) {
				score++
			}
		}
		if score > 0 {
			hits = append(hits, hit{d, score})
		}
	}
	sort.SliceStable(hits, func(i, j int) bool { return hits[i].score > hits[j].score })
	if len(hits) > 3 {
		hits = hits[:3]
	}
	results := []any{}
	var titles []string
	for _, h := range hits {
		results = append(results, map[string]any{"title": h.doc.Title, "url": h.doc.URL, "snippet": h.doc.Snippet})
		titles = append(titles, h.doc.Title)
	}
	text := fmt.Sprintf("no results for %q", q)
	if len(titles) > 0 {
		text = fmt.Sprintf("%d results for %q: %s", len(titles), q, strings.Join(titles, "; "))
	}
	return Output{Text: text, Data: map[string]any{"query": q, "results": results}}
}
