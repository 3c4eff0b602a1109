// Package statemachines holds the Step Functions definitions (ASL) of the gateway, as
// template.yaml deploys them, and a walker that follows a definition's path for given
// Task results: what a test checks the routing with and a benchmark counts state
// transitions with (the local emulator's execution history has no per-state events).
package statemachines

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"strings"
)

// Bridge is statemachines/bridge.asl.json: the token bridge saga.
//
//go:embed bridge.asl.json
var Bridge []byte

// Definition is the part of an ASL definition the walker reads.
type Definition struct {
	StartAt string           `json:"StartAt"`
	States  map[string]State `json:"States"`
}

// State is one state.
type State struct {
	Type       string         `json:"Type"`
	Resource   string         `json:"Resource"`
	Parameters map[string]any `json:"Parameters"`
	Next       string         `json:"Next"`
	End        bool           `json:"End"`
	Choices    []Choice       `json:"Choices"`
	Default    string         `json:"Default"`
	Retry      []Retrier      `json:"Retry"`
	Catch      []Catcher      `json:"Catch"`
	Error      string         `json:"Error"`
}

// Choice is a Choice rule (StringEquals on a variable: all the bridge uses).
type Choice struct {
	Variable     string `json:"Variable"`
	StringEquals string `json:"StringEquals"`
	Next         string `json:"Next"`
}

// Retrier is a Retry entry.
type Retrier struct {
	ErrorEquals     []string `json:"ErrorEquals"`
	IntervalSeconds int      `json:"IntervalSeconds"`
	BackoffRate     float64  `json:"BackoffRate"`
	MaxAttempts     int      `json:"MaxAttempts"`
	MaxDelaySeconds int      `json:"MaxDelaySeconds"`
}

// Catcher is a Catch entry.
type Catcher struct {
	ErrorEquals []string `json:"ErrorEquals"`
	Next        string   `json:"Next"`
}

// Parse reads a definition.
func Parse(raw []byte) (Definition, error) {
	var d Definition
	if err := json.Unmarshal(raw, &d); err != nil {
		return d, fmt.Errorf("ASL: %w", err)
	}
	return d, nil
}

// Step returns the "step" a Task state sends its function, "" for none.
func (s State) Step() string {
	payload, _ := s.Parameters["Payload"].(map[string]any)
	step, _ := payload["step"].(string)
	return step
}

// Result is what a Task attempt came to: an outcome (routed by the Choice states), or an
// error name.
type Result struct {
	Outcome string
	Error   string
}

// Walk follows the definition from StartAt: each Task state takes its attempts from
// results (by the Task's step: every result but the last is a retried error), each
// Choice routes on the last outcome. It returns the states entered, retries included:
// the state transitions Step Functions bills.
func (d Definition) Walk(results func(step string) []Result) ([]string, error) {
	var path []string
	name, outcome := d.StartAt, ""
	for i := 0; i < 200; i++ {
		st, ok := d.States[name]
		if !ok {
			return path, fmt.Errorf("no state %q", name)
		}
		path = append(path, name)
		switch st.Type {
		case "Succeed", "Fail":
			return path, nil
		case "Pass":
			name = st.Next
		case "Choice":
			next := st.Default
			for _, c := range st.Choices {
				if strings.HasSuffix(c.Variable, ".outcome") && c.StringEquals == outcome {
					next = c.Next
					break
				}
			}
			name = next
		case "Task":
			rs := results(st.Step())
			if len(rs) == 0 {
				return path, fmt.Errorf("no result for %s", name)
			}
			for range rs[:len(rs)-1] {
				path = append(path, name) // a retry is another transition of the same state
			}
			last := rs[len(rs)-1]
			if last.Error == "" {
				outcome, name = last.Outcome, st.Next
				continue
			}
			name = ""
			for _, c := range st.Catch {
				if matches(c.ErrorEquals, last.Error) {
					name = c.Next
					break
				}
			}
			if name == "" {
				return path, nil // uncaught: the execution fails here
			}
		default:
			return path, fmt.Errorf("state %s: type %s", name, st.Type)
		}
		if name == "" {
			return path, fmt.Errorf("a state after %s has no Next", path[len(path)-1])
		}
	}
	return path, fmt.Errorf("no end after 200 states")
}

func matches(names []string, err string) bool {
	for _, n := range names {
		if n == err || n == "States.ALL" || (n == "States.TaskFailed" && err != "States.Timeout") {
			return true
		}
	}
	return false
}
