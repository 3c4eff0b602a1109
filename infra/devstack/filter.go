package devstack

import (
	"strconv"
	"strings"
)

// Match reports whether a record (its JSON as Go values: what Lambda filters, e.g. a
// DynamoDB stream record with eventName and dynamodb.Keys/NewImage/OldImage) passes the
// pattern, as Lambda's event filtering evaluates it:
//
//   - every key of the pattern must match (AND); a nested object matches the record's
//     object at that key;
//   - an array lists rules, any of which may match (OR); when the record's value is an
//     array, any of its elements may;
//   - rules: a literal (string, number, boolean, null: equality; numbers by value),
//     {"prefix"}, {"suffix"}, {"equals-ignore-case"}, {"anything-but": value, list or
//     {"prefix"}}, {"exists": true|false}, {"numeric": [op, n, ...]} with =, <, <=, >, >=
//     (a number, or a numeric string as DynamoDB's N values are).
//
// A key the record lacks matches only {"exists": false}.
func (p FilterPattern) Match(record map[string]any) bool {
	return matchObject(p, record)
}

func matchObject(pattern, record map[string]any) bool {
	for k, want := range pattern {
		got, present := record[k]
		switch want := want.(type) {
		case map[string]any:
			sub, _ := got.(map[string]any)
			if !matchObject(want, sub) {
				return false
			}
		case []any:
			if !matchRules(want, got, present) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

func matchRules(rules []any, value any, present bool) bool {
	values := []any{value}
	if l, ok := value.([]any); ok {
		values = l
	}
	for _, rule := range rules {
		if m, ok := rule.(map[string]any); ok {
			if e, ok := m["exists"].(bool); ok {
				if e == present {
					return true
				}
				continue
			}
		}
		if !present {
			continue
		}
		for _, v := range values {
			if matchRule(rule, v) {
				return true
			}
		}
	}
	return false
}

func matchRule(rule, v any) bool {
	m, ok := rule.(map[string]any)
	if !ok {
		return equalValue(rule, v)
	}
	s, isString := v.(string)
	for op, arg := range m {
		switch op {
		case "prefix":
			a, _ := arg.(string)
			return isString && strings.HasPrefix(s, a)
		case "suffix":
			a, _ := arg.(string)
			return isString && strings.HasSuffix(s, a)
		case "equals-ignore-case":
			a, _ := arg.(string)
			return isString && strings.EqualFold(s, a)
		case "anything-but":
			switch a := arg.(type) {
			case []any:
				for _, x := range a {
					if equalValue(x, v) {
						return false
					}
				}
				return true
			case map[string]any:
				return !matchRule(a, v)
			default:
				return !equalValue(a, v)
			}
		case "numeric":
			return matchNumeric(arg, v)
		}
	}
	return false
}

func equalValue(want, got any) bool {
	if w, ok := number(want); ok {
		if _, isString := want.(string); !isString {
			g, ok := number(got)
			_, gotString := got.(string)
			return ok && !gotString && g == w
		}
	}
	return want == got
}

func number(v any) (float64, bool) {
	switch v := v.(type) {
	case float64:
		return v, true
	case string:
		f, err := strconv.ParseFloat(v, 64)
		return f, err == nil
	}
	return 0, false
}

func matchNumeric(arg, v any) bool {
	ops, ok := arg.([]any)
	n, isNumber := number(v)
	if !ok || !isNumber || len(ops)%2 != 0 {
		return false
	}
	for i := 0; i < len(ops); i += 2 {
		op, _ := ops[i].(string)
		x, ok := number(ops[i+1])
		if !ok {
			return false
		}
		var pass bool
		switch op {
		case "=":
			pass = n == x
		case "<":
			pass = n < x
		case "<=":
			pass = n <= x
		case ">":
			pass = n > x
		case ">=":
			pass = n >= x
		}
		if !pass {
			return false
		}
	}
	return true
}
