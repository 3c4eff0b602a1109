package devstack

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// StreamMapping is an AWS::Lambda::EventSourceMapping of a DynamoDB table's stream: what
// the local stream poller honours, in the template's words.
type StreamMapping struct {
	LogicalID string
	Function  string // the function's logical ID
	Table     string // the table's local name
	// StartingPosition is LATEST or TRIM_HORIZON.
	StartingPosition string
	BatchSize        int
	Window           time.Duration // MaximumBatchingWindowInSeconds
	Filters          []FilterPattern
	// ReportBatchItemFailures is set when FunctionResponseTypes has ReportBatchItemFailures.
	ReportBatchItemFailures bool
	Bisect                  bool // BisectBatchOnFunctionError
	MaxRetries              int  // MaximumRetryAttempts; -1 retries until the record expires
	MaxRecordAge            time.Duration
	OnFailure               string // the on-failure destination's ARN (an SQS queue), or ""
	Enabled                 bool
}

// Queue is an AWS::SQS::Queue.
type Queue struct {
	LogicalID string
	Name      string
	ARN       string
}

// WebSocketAPI is an AWS::ApiGatewayV2::Api of protocol WEBSOCKET with its routes, each
// integrated with a function (AWS_PROXY), and its stage.
type WebSocketAPI struct {
	LogicalID string
	// ID is what Ref gives for the API locally; its execute-api URLs in the functions'
	// environment are pointed at the local server.
	ID string
	// RouteSelection is the RouteSelectionExpression, e.g. $request.body.action.
	RouteSelection string
	Stage          string
	// Routes maps route keys ($connect, $disconnect, $default, custom) to functions.
	Routes map[string]string
}

// eventResources collects the resources of event sources and WebSocket APIs while a
// template is read; link resolves the references between them.
type eventResources struct {
	mappings     []StreamMapping
	queues       []Queue
	apis         map[string]*WebSocketAPI
	stages       map[string]string            // API logical ID -> stage name
	routes       map[string]map[string]string // API logical ID -> route key -> integration ID
	integrations map[string]string            // integration ID -> function name
}

var lambdaARN = regexp.MustCompile(`:function:([A-Za-z0-9_-]+)`)

// addEventResource reads a resource of the event stream's kinds; others are ignored.
func (t *Template) addEventResource(r *resolver, id, typ string, props map[string]any) error {
	er := &t.events
	if er.apis == nil {
		er.apis, er.stages, er.routes, er.integrations = map[string]*WebSocketAPI{}, map[string]string{}, map[string]map[string]string{}, map[string]string{}
	}
	apiOf := func() string { return r.logicalIDOf(scalar(props["ApiId"])) }
	switch typ {
	case "AWS::Lambda::EventSourceMapping":
		m, err := newStreamMapping(r, id, props)
		if err != nil {
			return err
		}
		if m != nil {
			er.mappings = append(er.mappings, *m)
		}
	case "AWS::SQS::Queue":
		name := r.physicalName(id)
		er.queues = append(er.queues, Queue{LogicalID: id, Name: name, ARN: fmt.Sprintf("arn:aws:sqs:%s:%s:%s", localRegion, localAccountID, name)})
	case "AWS::ApiGatewayV2::Api":
		if strings.EqualFold(scalar(props["ProtocolType"]), "WEBSOCKET") {
			er.apis[id] = &WebSocketAPI{LogicalID: id, ID: r.physicalName(id), RouteSelection: scalar(props["RouteSelectionExpression"]), Routes: map[string]string{}}
		}
	case "AWS::ApiGatewayV2::Stage":
		er.stages[apiOf()] = scalar(props["StageName"])
	case "AWS::ApiGatewayV2::Route":
		target, ok := strings.CutPrefix(scalar(props["Target"]), "integrations/")
		if !ok {
			return fmt.Errorf("route %s: the dev stack serves routes whose Target is integrations/<integration>", scalar(props["RouteKey"]))
		}
		if er.routes[apiOf()] == nil {
			er.routes[apiOf()] = map[string]string{}
		}
		er.routes[apiOf()][scalar(props["RouteKey"])] = target
	case "AWS::ApiGatewayV2::Integration":
		if typ := scalar(props["IntegrationType"]); typ != "AWS_PROXY" {
			return fmt.Errorf("integration type %s: the dev stack serves AWS_PROXY (Lambda proxy) integrations", typ)
		}
		m := lambdaARN.FindStringSubmatch(scalar(props["IntegrationUri"]))
		if m == nil {
			return fmt.Errorf("integration URI %q names no Lambda function", scalar(props["IntegrationUri"]))
		}
		er.integrations[r.physicalName(id)] = m[1]
	}
	return nil
}

// linkEventResources resolves the WebSocket APIs' routes to functions once every resource
// is read.
func (t *Template) linkEventResources() error {
	er := &t.events
	t.Queues = er.queues
	t.StreamMappings = er.mappings
	ids := make([]string, 0, len(er.apis))
	for id := range er.apis {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		api := er.apis[id]
		api.Stage = er.stages[id]
		for key, integ := range er.routes[id] {
			fn, ok := er.integrations[integ]
			if !ok {
				return fmt.Errorf("WebSocket API %s: route %s targets %s, which is no Lambda proxy integration", id, key, integ)
			}
			api.Routes[key] = fn
		}
		if api.Stage == "" {
			return fmt.Errorf("WebSocket API %s has no stage", id)
		}
		if _, ok := api.Routes["$connect"]; !ok {
			return fmt.Errorf("WebSocket API %s has no $connect route", id)
		}
		t.WebSocketAPIs = append(t.WebSocketAPIs, *api)
	}
	return nil
}

// newStreamMapping reads an event source mapping; nil for one of another source than a
// DynamoDB table's stream.
func newStreamMapping(r *resolver, id string, p map[string]any) (*StreamMapping, error) {
	arn := scalar(p["EventSourceArn"])
	table, ok := tableOfStreamARN(arn)
	if !ok {
		return nil, nil
	}
	m := &StreamMapping{
		LogicalID: id, Function: r.logicalIDOf(scalar(p["FunctionName"])), Table: table,
		StartingPosition: strings.ToUpper(scalar(p["StartingPosition"])),
		BatchSize:        100, MaxRetries: -1, Enabled: true,
		Bisect:    scalar(p["BisectBatchOnFunctionError"]) == "true",
		OnFailure: scalar(mapOf(mapOf(p["DestinationConfig"])["OnFailure"])["Destination"]),
	}
	if v, ok := p["Enabled"]; ok {
		m.Enabled = scalar(v) == "true"
	}
	if m.StartingPosition != "LATEST" && m.StartingPosition != "TRIM_HORIZON" {
		return nil, fmt.Errorf("event source mapping %s: starting position %q; want LATEST or TRIM_HORIZON", id, m.StartingPosition)
	}
	for _, f := range []struct {
		name string
		dst  *int
		min  int
		max  int
	}{{"BatchSize", &m.BatchSize, 1, 10000}, {"MaximumRetryAttempts", &m.MaxRetries, -1, 10000}} {
		if v, ok := p[f.name]; ok {
			n, err := strconv.Atoi(scalar(v))
			if err != nil || n < f.min || n > f.max {
				return nil, fmt.Errorf("event source mapping %s: %s %v; want %d to %d", id, f.name, v, f.min, f.max)
			}
			*f.dst = n
		}
	}
	for _, f := range []struct {
		name string
		dst  *time.Duration
		max  int
	}{{"MaximumBatchingWindowInSeconds", &m.Window, 300}, {"MaximumRecordAgeInSeconds", &m.MaxRecordAge, 604800}} {
		if v, ok := p[f.name]; ok {
			n, err := strconv.Atoi(scalar(v))
			if err != nil || n < -1 || n > f.max {
				return nil, fmt.Errorf("event source mapping %s: %s %v; want 0 to %d", id, f.name, v, f.max)
			}
			if n > 0 {
				*f.dst = time.Duration(n) * time.Second
			}
		}
	}
	m.ReportBatchItemFailures = slices.Contains(strings.Fields(scalarList(p["FunctionResponseTypes"])), "ReportBatchItemFailures")
	for i, f := range sliceOf(mapOf(p["FilterCriteria"])["Filters"]) {
		pat, err := ParseFilterPattern(scalar(mapOf(f)["Pattern"]))
		if err != nil {
			return nil, fmt.Errorf("event source mapping %s: filter %d: %w", id, i+1, err)
		}
		m.Filters = append(m.Filters, pat)
	}
	return m, nil
}

// tableOfStreamARN returns the table of a DynamoDB stream's ARN.
func tableOfStreamARN(arn string) (string, bool) {
	_, rest, ok := strings.Cut(arn, ":table/")
	if !ok || !strings.HasPrefix(arn, "arn:aws:dynamodb:") {
		return "", false
	}
	table, _, ok := strings.Cut(rest, "/stream/")
	return table, ok
}

// logicalIDOf is the logical ID of the resource whose physical name (what Ref gives) is
// name, or name itself.
func (r *resolver) logicalIDOf(name string) string {
	for id := range r.resources {
		if r.physicalName(id) == name {
			return id
		}
	}
	return name
}

// FilterPattern is a Lambda event filter pattern, read from its JSON.
type FilterPattern map[string]any

// ParseFilterPattern reads a pattern and checks that it uses only the rules the dev stack
// evaluates (see FilterPattern.Match).
func ParseFilterPattern(s string) (FilterPattern, error) {
	var p map[string]any
	if err := json.Unmarshal([]byte(s), &p); err != nil || p == nil {
		return nil, fmt.Errorf("pattern %q is not a JSON object", s)
	}
	if err := checkPattern(p); err != nil {
		return nil, fmt.Errorf("pattern %s: %w", s, err)
	}
	return p, nil
}

func checkPattern(p map[string]any) error {
	for k, v := range p {
		switch v := v.(type) {
		case map[string]any:
			if err := checkPattern(v); err != nil {
				return err
			}
		case []any:
			for _, rule := range v {
				if m, ok := rule.(map[string]any); ok {
					if len(m) != 1 {
						return fmt.Errorf("%s: a rule object has one operator", k)
					}
					for op := range m {
						if !slices.Contains([]string{"prefix", "suffix", "anything-but", "exists", "numeric", "equals-ignore-case"}, op) {
							return fmt.Errorf("%s: operator %q is not one the dev stack evaluates", k, op)
						}
					}
				}
			}
		default:
			return fmt.Errorf("%s: a pattern's values are objects or arrays of rules", k)
		}
	}
	return nil
}
