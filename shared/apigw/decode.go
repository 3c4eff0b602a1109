package apigw

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"strings"

	"github.com/federation-gateway/gateway/shared/federation"
)

// IsJSON reports whether a Content-Type header names JSON: application/json, or a
// structured type with the +json suffix (application/problem+json, ...).
func IsJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")))
}

// ReadBody reads a request body of at most max bytes. Errors: ETOOLARGE, EINVALID.
func ReadBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, federation.Errorf(federation.ETOOLARGE, "the request body is over %d bytes", max)
	}
	if err != nil {
		return nil, federation.Errorf(federation.EINVALID, "the request body could not be read")
	}
	return body, nil
}

// DecodeJSON reads r's body, of at most max bytes, into v strictly: the body must say it
// is JSON (Content-Type), be one JSON object, and hold no field v does not have. Its
// errors say what is wrong in the API's words (field paths and JSON kinds), never in Go's:
// EMEDIATYPE, ETOOLARGE, EINVALID.
func DecodeJSON(w http.ResponseWriter, r *http.Request, max int64, v any) error {
	if !IsJSON(r.Header.Get("Content-Type")) {
		return federation.Errorf(federation.EMEDIATYPE, "send the body as JSON, with Content-Type: application/json")
	}
	body, err := ReadBody(w, r, max)
	if err != nil {
		return err
	}
	return Unmarshal(body, v)
}

// Unmarshal decodes body into v as DecodeJSON does, without the HTTP around it.
func Unmarshal(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return federation.Errorf(federation.EINVALID, "the body is empty; send a JSON object")
	}
	// Unknown fields first, on the generic form, so the error names the field's path
	// (encoding/json names only the field).
	var generic any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&generic); err != nil {
		return describe(err)
	}
	if dec.More() {
		return federation.Errorf(federation.EINVALID, "the body has more after its JSON object; send one object")
	}
	if _, ok := generic.(map[string]any); !ok {
		return federation.Errorf(federation.EINVALID, "the body must be a JSON object, not %s", kindOf(generic))
	}
	if err := unknownFields(generic, reflect.TypeOf(v), ""); err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return describe(err)
	}
	return nil
}

// describe turns an encoding/json error into one in the API's words.
func describe(err error) error {
	var fe *federation.Error
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &fe):
		return fe
	case errors.As(err, &syntax):
		return federation.Errorf(federation.EINVALID, "the body is not valid JSON (error at byte %d)", syntax.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return federation.Errorf(federation.EINVALID, "the body is not valid JSON: it ends before the object does")
	case errors.As(err, &typ):
		got := typ.Value
		if typ.Field == "" {
			return federation.Errorf(federation.EINVALID, "the body must be a JSON object, not %s", article(got))
		}
		return federation.Errorf(federation.EINVALID, "%s: want %s, not %s", typ.Field, wantOf(typ.Type), article(got))
	default:
		return federation.Errorf(federation.EINVALID, "the body is not the JSON object this endpoint takes")
	}
}

// article puts "a"/"an" before a JSON kind as encoding/json names it ("string",
// "number 1e400", "object").
func article(kind string) string {
	if kind == "" {
		return "that value"
	}
	if strings.ContainsAny(kind[:1], "aeiou") {
		return "an " + kind
	}
	return "a " + kind
}

// wantOf says what JSON a Go type takes, in the API's words.
func wantOf(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "another kind of value"
}

// kindOf names the JSON kind of a generic value.
func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "true or false"
	case json.Number:
		return "a number"
	case []any:
		return "a list"
	}
	return "an object"
}

var unmarshaler = reflect.TypeFor[json.Unmarshaler]()

// unknownFields refuses an object key that t has no field for, at any depth, naming its
// path. Types that decode themselves (json.RawMessage, json.Unmarshaler) are theirs to
// check.
func unknownFields(v any, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshaler) || t.Implements(unmarshaler) {
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return nil // a type error, for json.Unmarshal to name
		}
		fields := jsonFields(t)
		for key, val := range obj {
			ft, ok := fields[key]
			if !ok {
				names := make([]string, 0, len(fields))
				for n := range fields {
					names = append(names, n)
				}
				slices.Sort(names)
				where := "the body"
				if path != "" {
					where = path
				}
				return federation.Errorf(federation.EINVALID, "unknown field %q in %s; its fields are %s", join(path, key), where, strings.Join(names, ", "))
			}
			if err := unknownFields(val, ft, join(path, key)); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		list, ok := v.([]any)
		if !ok {
			return nil
		}
		for i, item := range list {
			if err := unknownFields(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case reflect.Map:
		obj, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		for key, val := range obj {
			if err := unknownFields(val, t.Elem(), join(path, key)); err != nil {
				return err
			}
		}
	}
	return nil
}

// jsonFields maps the JSON names of t's fields to their types, as encoding/json reads
// them (tag name, else the Go name; "-" skipped).
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
