package delivery

import (
	"encoding/json"
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/a2aproject/a2a-go/v2/a2a"

	"github.com/federation-gateway/gateway/shared/jsontext"
)

// The summary of a target's answer. Everything in it comes from outside: each field is
// bounded, and the whole stays near MaxSummaryBytes.
type (
	messageSummary struct {
		Kind      string          `json:"kind"`
		MessageID string          `json:"message_id"`
		ContextID string          `json:"context_id,omitempty"`
		Parts     []partSummary   `json:"parts"`
		Metadata  json.RawMessage `json:"metadata,omitempty"`
		Truncated bool            `json:"truncated,omitempty"`
	}
	taskSummary struct {
		Kind          string            `json:"kind"`
		TaskID        string            `json:"task_id"`
		ContextID     string            `json:"context_id,omitempty"`
		State         string            `json:"state"`
		StatusMessage []partSummary     `json:"status_message,omitempty"`
		Artifacts     []artifactSummary `json:"artifacts,omitempty"`
		Metadata      json.RawMessage   `json:"metadata,omitempty"`
		Truncated     bool              `json:"truncated,omitempty"`
	}
	artifactSummary struct {
		ArtifactID string          `json:"artifact_id,omitempty"`
		Name       string          `json:"name,omitempty"`
		Parts      []partSummary   `json:"parts"`
		Metadata   json.RawMessage `json:"metadata,omitempty"`
	}
	partSummary struct {
		Text      *string         `json:"text,omitempty"`
		Data      json.RawMessage `json:"data,omitempty"`
		DataBytes int             `json:"data_bytes,omitempty"` // size of data left out
		URL       string          `json:"url,omitempty"`
		RawBytes  int             `json:"raw_bytes,omitempty"`
		MediaType string          `json:"media_type,omitempty"`
		Filename  string          `json:"filename,omitempty"`
		Truncated bool            `json:"truncated,omitempty"`
	}
)

// Bounds of the short fields of a summary.
const (
	maxIDLen    = 200
	maxNameLen  = 200
	maxURLLen   = 2048
	partCost    = 32 // what an empty part counts against the budget, so that a flood of them ends
	maxStateLen = 64
	// maxMetadata bounds each metadata object kept (a reply's, a task's, an artifact's),
	// so that metadata never crowds out the content.
	maxMetadata = 2 << 10
)

var errNoResult = errors.New("no message or task")

// summarize returns the Outcome of a SendMessage result. It never panics, whatever the
// result holds: nil messages, tasks, artifacts or parts are skipped.
func summarize(res a2a.SendMessageResult) (Outcome, error) {
	b := &budget{left: MaxSummaryBytes}
	var v any
	var kind string
	switch r := res.(type) {
	case *a2a.Message:
		if r == nil {
			return Outcome{}, errNoResult
		}
		kind = KindMessage
		v = messageSummary{
			Kind: kind, MessageID: clip(r.ID, maxIDLen), ContextID: clip(r.ContextID, maxIDLen),
			Parts: b.parts(r.Parts), Metadata: b.metadata(r.Metadata),
		}
	case *a2a.Task:
		if r == nil {
			return Outcome{}, errNoResult
		}
		kind = KindTask
		t := taskSummary{
			Kind: kind, TaskID: clip(string(r.ID), maxIDLen), ContextID: clip(r.ContextID, maxIDLen),
			State: stateName(r.Status.State), Metadata: b.metadata(r.Metadata),
		}
		if r.Status.Message != nil {
			t.StatusMessage = b.parts(r.Status.Message.Parts)
		}
		for _, a := range r.Artifacts {
			if a == nil {
				continue
			}
			if b.left <= 0 {
				b.truncated = true
				break
			}
			as := artifactSummary{ArtifactID: clip(string(a.ID), maxIDLen), Name: clip(a.Name, maxNameLen)}
			b.left -= partCost + len(as.ArtifactID) + len(as.Name)
			as.Parts = b.parts(a.Parts)
			as.Metadata = b.metadata(a.Metadata)
			t.Artifacts = append(t.Artifacts, as)
		}
		v = t
	default:
		return Outcome{}, errNoResult
	}
	switch s := v.(type) {
	case messageSummary:
		s.Truncated = b.truncated
		v = s
	case taskSummary:
		s.Truncated = b.truncated
		v = s
	}
	raw, err := jsontext.Marshal(v)
	if err != nil {
		return Outcome{}, err
	}
	return Outcome{Kind: kind, Summary: raw}, nil
}

// budget is what is left of MaxSummaryBytes while a summary is built.
type budget struct {
	left      int
	truncated bool
}

// parts summarizes parts within the budget; an empty list is [] rather than null.
func (b *budget) parts(parts []*a2a.Part) []partSummary {
	out := []partSummary{}
	for _, p := range parts {
		if p == nil {
			continue
		}
		if b.left <= 0 {
			b.truncated = true
			break
		}
		s := partSummary{MediaType: clip(p.MediaType, maxNameLen), Filename: clip(p.Filename, maxNameLen)}
		b.left -= partCost + len(s.MediaType) + len(s.Filename)
		switch c := p.Content.(type) {
		case a2a.Text:
			text := string(c)
			if len(text) > b.left {
				text, s.Truncated, b.truncated = cutUTF8(text, max(b.left, 0)), true, true
			}
			b.left -= len(text)
			s.Text = &text
		case a2a.Data:
			data, err := jsontext.Marshal(c.Value)
			switch {
			case err != nil:
				s.Truncated = true
			case len(data) > b.left:
				s.DataBytes, s.Truncated, b.truncated = len(data), true, true
			default:
				b.left -= len(data)
				s.Data = data
			}
		case a2a.URL:
			s.URL = clip(string(c), maxURLLen)
			b.left -= len(s.URL)
		case a2a.Raw:
			s.RawBytes = len(c)
		default:
			continue // no content: nothing to report
		}
		out = append(out, s)
	}
	return out
}

// metadata keeps m when it fits maxMetadata and the budget; otherwise the summary is
// marked truncated.
func (b *budget) metadata(m map[string]any) json.RawMessage {
	if len(m) == 0 {
		return nil
	}
	raw, err := jsontext.Marshal(m)
	if err != nil || len(raw) > min(b.left, maxMetadata) {
		b.truncated = true
		return nil
	}
	b.left -= len(raw)
	return raw
}

// stateName is a task state in lower case without its prefix: "completed".
func stateName(s a2a.TaskState) string {
	name := strings.ToLower(strings.TrimPrefix(s.String(), "TASK_STATE_"))
	return clip(name, maxStateLen)
}

// partsText joins the text parts of a message.
func partsText(parts []*a2a.Part) string {
	var texts []string
	for _, p := range parts {
		if p != nil {
			if t, ok := p.Content.(a2a.Text); ok && t != "" {
				texts = append(texts, string(t))
			}
		}
	}
	return strings.Join(texts, " ")
}

// clip makes outside text fit in a message of ours: valid UTF-8, no control
// characters, at most n bytes, "…" marking a cut.
func clip(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	if len(s) <= n {
		return s
	}
	return cutUTF8(s, max(n-len("…"), 0)) + "…"
}

// cutUTF8 returns the longest prefix of s of at most n bytes that ends on a rune boundary.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
