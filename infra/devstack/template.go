package devstack

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Local stand-ins for the pseudo parameters and account of a deployed stack.
const (
	localRegion    = "us-east-1"
	localAccountID = "000000000000"
)

// Template is the part of the SAM template the dev stack runs: functions with their routes
// and schedules, tables, SSM parameters and the HTTP API settings, with every intrinsic
// function resolved for the local stack.
type Template struct {
	Dir        string // the template's folder: where functions are built
	StackName  string
	Functions  []Function
	Tables     []Table
	Parameters []SSMParameter
	Secrets    []Secret
	// StateMachines are the AWS::Serverless::StateMachine resources, their definitions
	// read from DefinitionUri with the DefinitionSubstitutions applied.
	StateMachines []StateMachine
	API           API

	// The table streams' event source mappings, queues and WebSocket APIs
	// (template_events.go).
	StreamMappings []StreamMapping
	Queues         []Queue
	WebSocketAPIs  []WebSocketAPI
	events         eventResources
}

// StateMachine is an AWS::Serverless::StateMachine.
type StateMachine struct {
	LogicalID  string
	Name       string
	ARN        string
	Type       string // STANDARD or EXPRESS
	Definition string
}

// Secret is an AWS::SecretsManager::Secret whose value is generated.
type Secret struct {
	LogicalID string
	Name      string
	Length    int // of the generated value
}

// Function is an AWS::Serverless::Function with the template's Globals merged in.
type Function struct {
	LogicalID   string
	CodeURI     string
	BuildMethod string // "makefile" (make build-<LogicalID>) or "go1.x" (go build CodeURI)
	Timeout     time.Duration
	MemoryMB    int
	// ReservedConcurrency is ReservedConcurrentExecutions, 0 when the template sets none:
	// the dev stack runs at most this many instances of the function.
	ReservedConcurrency int
	Env                 map[string]string
	Routes              []Route
	Schedules           []Schedule
}

// Route is an HttpApi event of a function.
type Route struct {
	Method string // upper case, or "ANY"
	Path   string // e.g. /api/v1/bridge/{id}
}

// Schedule is a Schedule event of a function.
type Schedule struct {
	Name       string
	Expression string
	Enabled    bool
}

// Table is an AWS::DynamoDB::Table: its local name and its properties as the template
// states them (CloudFormation's shape, which is the DynamoDB API's).
type Table struct {
	LogicalID  string
	Name       string
	Properties map[string]any
}

// SSMParameter is an AWS::SSM::Parameter.
type SSMParameter struct {
	LogicalID string
	Name      string
	Type      string
	Value     string
}

// API holds the HTTP API settings the local API honours.
type API struct {
	LogicalID  string
	StageName  string
	CORS       *CORS
	RateLimit  float64 // requests per second, 0 for none
	BurstLimit int
}

// CORS is the HttpApi CorsConfiguration.
type CORS struct {
	AllowOrigins []string
	AllowMethods []string
	AllowHeaders []string
	MaxAge       int
}

// LoadTemplate reads and resolves the SAM template at path. overrides set template
// parameters, as `sam deploy --parameter-overrides` would.
func LoadTemplate(path, stackName string, overrides map[string]string) (*Template, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		return nil, fmt.Errorf("template %s: %w", path, err)
	}
	doc, ok := fromNode(&root).(map[string]any)
	if !ok {
		return nil, fmt.Errorf("template %s: not a YAML mapping", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	r := &resolver{stack: stackName, params: map[string]string{}, resources: mapOf(doc["Resources"])}
	for name, p := range mapOf(doc["Parameters"]) {
		if v, ok := overrides[name]; ok {
			r.params[name] = v
		} else if d, ok := mapOf(p)["Default"]; ok {
			r.params[name] = scalar(d)
		} else {
			return nil, fmt.Errorf("template %s: parameter %s has no default and no override", path, name)
		}
	}
	for name := range overrides {
		if _, ok := r.params[name]; !ok {
			return nil, fmt.Errorf("template %s: override of unknown parameter %s", path, name)
		}
	}

	t := &Template{Dir: filepath.Dir(abs), StackName: stackName}
	globals := mapOf(mapOf(doc["Globals"])["Function"])
	names := sortedKeys(r.resources)
	for _, id := range names {
		res := mapOf(r.resources[id])
		props, err := r.resolveMap(mapOf(res["Properties"]))
		if err != nil {
			return nil, fmt.Errorf("template %s: %s: %w", path, id, err)
		}
		switch res["Type"] {
		case "AWS::Serverless::Function":
			g, err := r.resolveMap(globals)
			if err != nil {
				return nil, fmt.Errorf("template %s: Globals: %w", path, err)
			}
			fn, err := newFunction(id, g, props, mapOf(res["Metadata"]))
			if err != nil {
				return nil, fmt.Errorf("template %s: %s: %w", path, id, err)
			}
			t.Functions = append(t.Functions, fn)
		case "AWS::DynamoDB::Table":
			t.Tables = append(t.Tables, Table{LogicalID: id, Name: r.physicalName(id), Properties: props})
		case "AWS::SSM::Parameter":
			t.Parameters = append(t.Parameters, SSMParameter{LogicalID: id, Name: r.physicalName(id),
				Type: scalar(props["Type"]), Value: scalar(props["Value"])})
		case "AWS::SecretsManager::Secret":
			n, _ := strconv.Atoi(scalar(mapOf(props["GenerateSecretString"])["PasswordLength"]))
			t.Secrets = append(t.Secrets, Secret{LogicalID: id, Name: r.physicalName(id), Length: max(n, 32)})
		case "AWS::Serverless::HttpApi":
			t.API = newAPI(id, props)
		case "AWS::Serverless::StateMachine":
			sm, err := r.stateMachine(id, t.Dir, props)
			if err != nil {
				return nil, fmt.Errorf("template %s: %s: %w", path, id, err)
			}
			t.StateMachines = append(t.StateMachines, sm)
		default:
			if err := t.addEventResource(r, id, scalar(res["Type"]), props); err != nil {
				return nil, fmt.Errorf("template %s: %s: %w", path, id, err)
			}
		}
	}
	if err := t.linkEventResources(); err != nil {
		return nil, fmt.Errorf("template %s: %w", path, err)
	}
	return t, nil
}

func newFunction(id string, globals, props, metadata map[string]any) (Function, error) {
	merged := map[string]any{}
	for k, v := range globals {
		merged[k] = v
	}
	for k, v := range props {
		merged[k] = v
	}
	env := map[string]string{}
	for _, src := range []map[string]any{globals, props} {
		for k, v := range mapOf(mapOf(src["Environment"])["Variables"]) {
			env[k] = scalar(v)
		}
	}
	fn := Function{
		LogicalID:   id,
		CodeURI:     scalar(merged["CodeUri"]),
		BuildMethod: scalar(metadata["BuildMethod"]),
		Timeout:     3 * time.Second,
		MemoryMB:    128,
		Env:         env,
	}
	if fn.BuildMethod == "" {
		fn.BuildMethod = "go1.x"
	}
	if fn.BuildMethod != "makefile" && fn.BuildMethod != "go1.x" {
		return fn, fmt.Errorf("build method %q: the dev stack builds makefile and go1.x functions", fn.BuildMethod)
	}
	if v, ok := merged["Timeout"]; ok {
		s, err := strconv.Atoi(scalar(v))
		if err != nil || s <= 0 {
			return fn, fmt.Errorf("timeout %v: want whole seconds", v)
		}
		fn.Timeout = time.Duration(s) * time.Second
	}
	if v, ok := merged["MemorySize"]; ok {
		m, err := strconv.Atoi(scalar(v))
		if err != nil || m <= 0 {
			return fn, fmt.Errorf("memory size %v: want megabytes", v)
		}
		fn.MemoryMB = m
	}
	if v, ok := merged["ReservedConcurrentExecutions"]; ok {
		n, err := strconv.Atoi(scalar(v))
		if err != nil || n <= 0 {
			return fn, fmt.Errorf("reserved concurrent executions %v: the dev stack runs a function with at least 1", v)
		}
		fn.ReservedConcurrency = n
	}
	for _, name := range sortedKeys(mapOf(props["Events"])) {
		ev := mapOf(mapOf(props["Events"])[name])
		p := mapOf(ev["Properties"])
		switch ev["Type"] {
		case "HttpApi":
			method := strings.ToUpper(scalar(p["Method"]))
			if method == "" || method == "X-AMAZON-APIGATEWAY-ANY-METHOD" {
				method = "ANY"
			}
			path := scalar(p["Path"])
			if path == "" {
				path = "/{proxy+}"
			}
			fn.Routes = append(fn.Routes, Route{Method: method, Path: path})
		case "Schedule", "ScheduleV2":
			expr := scalar(p["Schedule"])
			if expr == "" {
				expr = scalar(p["ScheduleExpression"])
			}
			enabled := true
			if v, ok := p["Enabled"]; ok {
				enabled = scalar(v) == "true"
			}
			if s, ok := p["State"]; ok {
				enabled = scalar(s) == "ENABLED"
			}
			fn.Schedules = append(fn.Schedules, Schedule{Name: name, Expression: expr, Enabled: enabled})
		}
	}
	return fn, nil
}

// stateMachine reads a state machine's definition and applies its substitutions, as SAM
// does: ${Name} becomes the substitution's resolved value.
func (r *resolver) stateMachine(id, dir string, props map[string]any) (StateMachine, error) {
	sm := StateMachine{LogicalID: id, Name: r.physicalName(id), Type: scalar(props["Type"])}
	sm.ARN = fmt.Sprintf("arn:aws:states:%s:%s:stateMachine:%s", localRegion, localAccountID, sm.Name)
	if sm.Type == "" {
		sm.Type = "STANDARD"
	}
	uri := scalar(props["DefinitionUri"])
	if uri == "" {
		return sm, fmt.Errorf("the dev stack runs state machines with a DefinitionUri file")
	}
	raw, err := os.ReadFile(filepath.Join(dir, uri))
	if err != nil {
		return sm, fmt.Errorf("DefinitionUri: %w", err)
	}
	subs := mapOf(props["DefinitionSubstitutions"])
	var missing []string
	sm.Definition = subVar.ReplaceAllStringFunc(string(raw), func(m string) string {
		name := m[2 : len(m)-1]
		if v, ok := subs[name]; ok {
			return scalar(v)
		}
		missing = append(missing, name)
		return m
	})
	if len(missing) > 0 {
		return sm, fmt.Errorf("DefinitionSubstitutions has no %s", strings.Join(missing, ", "))
	}
	return sm, nil
}

func newAPI(id string, props map[string]any) API {
	api := API{LogicalID: id, StageName: scalar(props["StageName"])}
	if c := mapOf(props["CorsConfiguration"]); c != nil {
		cors := &CORS{
			AllowOrigins: strings.Fields(scalarList(c["AllowOrigins"])),
			AllowMethods: strings.Fields(scalarList(c["AllowMethods"])),
			AllowHeaders: strings.Fields(scalarList(c["AllowHeaders"])),
		}
		cors.MaxAge, _ = strconv.Atoi(scalar(c["MaxAge"]))
		api.CORS = cors
	}
	if s := mapOf(props["DefaultRouteSettings"]); s != nil {
		api.RateLimit, _ = strconv.ParseFloat(scalar(s["ThrottlingRateLimit"]), 64)
		api.BurstLimit, _ = strconv.Atoi(scalar(s["ThrottlingBurstLimit"]))
	}
	return api
}

// resolver evaluates the intrinsic functions of a template for the local stack.
type resolver struct {
	stack     string
	params    map[string]string
	resources map[string]any
}

// noValue is what AWS::NoValue resolves to: the property is dropped.
type noValue struct{}

func (r *resolver) resolveMap(m map[string]any) (map[string]any, error) {
	v, err := r.resolve(m)
	if err != nil {
		return nil, err
	}
	out, _ := v.(map[string]any)
	return out, nil
}

func (r *resolver) resolve(v any) (any, error) {
	switch v := v.(type) {
	case map[string]any:
		if len(v) == 1 {
			for k, arg := range v {
				if k == "Ref" || strings.HasPrefix(k, "Fn::") {
					return r.intrinsic(k, arg)
				}
			}
		}
		out := make(map[string]any, len(v))
		for k, x := range v {
			rx, err := r.resolve(x)
			if err != nil {
				return nil, err
			}
			if _, drop := rx.(noValue); !drop {
				out[k] = rx
			}
		}
		return out, nil
	case []any:
		out := make([]any, 0, len(v))
		for _, x := range v {
			rx, err := r.resolve(x)
			if err != nil {
				return nil, err
			}
			if _, drop := rx.(noValue); !drop {
				out = append(out, rx)
			}
		}
		return out, nil
	default:
		return v, nil
	}
}

func (r *resolver) intrinsic(fn string, arg any) (any, error) {
	switch fn {
	case "Ref":
		return r.ref(scalar(arg))
	case "Fn::Sub":
		if list, ok := arg.([]any); ok && len(list) == 2 {
			vars, err := r.resolveMap(mapOf(list[1]))
			if err != nil {
				return nil, err
			}
			return r.sub(scalar(list[0]), vars)
		}
		return r.sub(scalar(arg), nil)
	case "Fn::GetAtt":
		parts, ok := arg.([]any)
		if !ok {
			parts = []any{}
			for _, p := range strings.SplitN(scalar(arg), ".", 2) {
				parts = append(parts, p)
			}
		}
		if len(parts) != 2 {
			return nil, fmt.Errorf("!GetAtt %v: want [resource, attribute]", arg)
		}
		return r.getAtt(scalar(parts[0]), scalar(parts[1]))
	case "Fn::Join":
		list, ok := arg.([]any)
		if !ok || len(list) != 2 {
			return nil, fmt.Errorf("!Join %v: want [separator, [values]]", arg)
		}
		items, err := r.resolve(list[1])
		if err != nil {
			return nil, err
		}
		var parts []string
		for _, it := range sliceOf(items) {
			parts = append(parts, scalar(it))
		}
		return strings.Join(parts, scalar(list[0])), nil
	default:
		return nil, fmt.Errorf("%s is not supported by the dev stack", fn)
	}
}

func (r *resolver) ref(name string) (any, error) {
	switch name {
	case "AWS::Region":
		return localRegion, nil
	case "AWS::AccountId":
		return localAccountID, nil
	case "AWS::StackName":
		return r.stack, nil
	case "AWS::Partition":
		return "aws", nil
	case "AWS::URLSuffix":
		return "amazonaws.com", nil
	case "AWS::NoValue":
		return noValue{}, nil
	}
	if v, ok := r.params[name]; ok {
		return v, nil
	}
	if res, ok := r.resources[name]; ok {
		if scalar(mapOf(res)["Type"]) == "AWS::Serverless::StateMachine" {
			return fmt.Sprintf("arn:aws:states:%s:%s:stateMachine:%s", localRegion, localAccountID, r.physicalName(name)), nil
		}
		return r.physicalName(name), nil
	}
	return nil, fmt.Errorf("!Ref %s: no such parameter or resource", name)
}

// physicalName is a resource's local name: what Ref returns for it. Functions keep their
// logical ID, so `aws lambda invoke --function-name StatusFunction` works locally.
func (r *resolver) physicalName(id string) string {
	res := mapOf(r.resources[id])
	props := mapOf(res["Properties"])
	switch res["Type"] {
	case "AWS::SSM::Parameter", "AWS::SecretsManager::Secret":
		if n, ok := props["Name"]; ok {
			if v, err := r.resolve(n); err == nil {
				return scalar(v)
			}
		}
	case "AWS::DynamoDB::Table":
		if n, ok := props["TableName"]; ok {
			if v, err := r.resolve(n); err == nil {
				return scalar(v)
			}
		}
		return r.stack + "-" + id
	case "AWS::Serverless::HttpApi":
		return "local"
	case "AWS::ApiGatewayV2::Api":
		return strings.ToLower(id) // API IDs are lower case: they are host names
	case "AWS::SQS::Queue":
		if n, ok := props["QueueName"]; ok {
			if v, err := r.resolve(n); err == nil {
				return scalar(v)
			}
		}
		return r.stack + "-" + id
	case "AWS::Serverless::StateMachine":
		if n, ok := props["Name"]; ok {
			if v, err := r.resolve(n); err == nil {
				return scalar(v)
			}
		}
		return r.stack + "-" + id
	}
	return id
}

func (r *resolver) getAtt(id, attr string) (any, error) {
	res, ok := r.resources[id]
	if !ok {
		return nil, fmt.Errorf("!GetAtt %s.%s: no such resource", id, attr)
	}
	name := r.physicalName(id)
	switch typ := scalar(mapOf(res)["Type"]); {
	case attr == "Arn" && typ == "AWS::DynamoDB::Table":
		return fmt.Sprintf("arn:aws:dynamodb:%s:%s:table/%s", localRegion, localAccountID, name), nil
	case attr == "StreamArn" && typ == "AWS::DynamoDB::Table":
		return fmt.Sprintf("arn:aws:dynamodb:%s:%s:table/%s/stream/local", localRegion, localAccountID, name), nil
	case attr == "Arn" && typ == "AWS::SQS::Queue":
		return fmt.Sprintf("arn:aws:sqs:%s:%s:%s", localRegion, localAccountID, name), nil
	case attr == "Arn" && typ == "AWS::Serverless::Function":
		return fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", localRegion, localAccountID, name), nil
	case attr == "Arn" && typ == "AWS::Serverless::StateMachine":
		return fmt.Sprintf("arn:aws:states:%s:%s:stateMachine:%s", localRegion, localAccountID, name), nil
	case attr == "Arn" && typ == "AWS::Logs::LogGroup":
		return fmt.Sprintf("arn:aws:logs:%s:%s:log-group:%s", localRegion, localAccountID, name), nil
	default:
		return fmt.Sprintf("%s.%s", name, attr), nil
	}
}

var subVar = regexp.MustCompile(`\$\{([^}]*)\}`)

func (r *resolver) sub(s string, vars map[string]any) (string, error) {
	var firstErr error
	out := subVar.ReplaceAllStringFunc(s, func(m string) string {
		name := m[2 : len(m)-1]
		if strings.HasPrefix(name, "!") {
			return "${" + name[1:] + "}"
		}
		if v, ok := vars[name]; ok {
			return scalar(v)
		}
		var v any
		var err error
		if res, attr, ok := strings.Cut(name, "."); ok && !strings.HasPrefix(name, "AWS::") {
			v, err = r.getAtt(res, attr)
		} else {
			v, err = r.ref(name)
		}
		if err != nil && firstErr == nil {
			firstErr = fmt.Errorf("!Sub %q: %w", s, err)
		}
		return scalar(v)
	})
	return out, firstErr
}

// fromNode turns YAML into plain Go values, the short-form intrinsic tags (!Ref, !Sub,
// !GetAtt, ...) into their long form ({"Ref": ...}, {"Fn::Sub": ...}).
func fromNode(n *yaml.Node) any {
	var v any
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil
		}
		return fromNode(n.Content[0])
	case yaml.AliasNode:
		return fromNode(n.Alias)
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			m[n.Content[i].Value] = fromNode(n.Content[i+1])
		}
		v = m
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			l = append(l, fromNode(c))
		}
		v = l
	default:
		v = n.Value
	}
	if tag := n.Tag; strings.HasPrefix(tag, "!") && !strings.HasPrefix(tag, "!!") {
		name := tag[1:]
		if name == "Ref" {
			return map[string]any{"Ref": v}
		}
		if name == "GetAtt" {
			if s, ok := v.(string); ok {
				res, attr, _ := strings.Cut(s, ".")
				v = []any{res, attr}
			}
		}
		return map[string]any{"Fn::" + name: v}
	}
	return v
}

func mapOf(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func sliceOf(v any) []any {
	s, _ := v.([]any)
	return s
}

func scalar(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		return fmt.Sprint(v)
	}
}

func scalarList(v any) string {
	var parts []string
	for _, x := range sliceOf(v) {
		parts = append(parts, scalar(x))
	}
	return strings.Join(parts, " ")
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
