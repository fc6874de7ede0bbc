package openapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// obj is a JSON object that keeps its members in the order they were added:
// the document reads top-down and a view's properties keep the view's order,
// which maps (sorted by encoding/json) would lose.
type obj []member

type member struct {
	key   string
	value any
}

func (o *obj) set(key string, value any) { *o = append(*o, member{key, value}) }

// write appends v as JSON indented by two spaces, as json.Indent would,
// starting at depth levels in. Writing the document directly, rather than
// through encoding/json and json.Indent, makes it several times cheaper,
// which matters because the handler makes it on every request.
func write(b *bytes.Buffer, v any, depth int) error {
	newline := func(depth int) {
		b.WriteByte('\n')
		for range depth {
			b.WriteString("  ")
		}
	}
	switch v := v.(type) {
	case obj:
		if len(v) == 0 {
			b.WriteString("{}")
			return nil
		}
		b.WriteByte('{')
		for i, m := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			newline(depth + 1)
			quote(b, m.key)
			b.WriteString(": ")
			if err := write(b, m.value, depth+1); err != nil {
				return err
			}
		}
		newline(depth)
		b.WriteByte('}')
	case []any:
		if len(v) == 0 {
			b.WriteString("[]")
			return nil
		}
		b.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			newline(depth + 1)
			if err := write(b, e, depth+1); err != nil {
				return err
			}
		}
		newline(depth)
		b.WriteByte(']')
	case *schema:
		return write(b, v.obj(), depth)
	case []string:
		a := make([]any, len(v))
		for i, s := range v {
			a[i] = s
		}
		return write(b, a, depth)
	case types:
		if len(v) == 1 {
			quote(b, v[0])
			return nil
		}
		return write(b, []string(v), depth)
	case json.RawMessage:
		return json.Indent(b, v, strings.Repeat("  ", depth), "  ")
	case string:
		quote(b, v)
	case int:
		b.WriteString(strconv.Itoa(v))
	case bool:
		b.WriteString(strconv.FormatBool(v))
	default:
		return fmt.Errorf("openapi: cannot write a %T", v)
	}
	return nil
}

// quote writes s as a JSON string, as encoding/json does but leaving <, >
// and & as they are: descriptions hold them, and readers should see them.
func quote(b *bytes.Buffer, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b.WriteString(s[start:i])
			switch c {
			case '"', '\\':
				b.WriteByte('\\')
				b.WriteByte(c)
			case '\n':
				b.WriteString(`\n`)
			case '\r':
				b.WriteString(`\r`)
			case '\t':
				b.WriteString(`\t`)
			default:
				b.WriteString(`\u00`)
				b.WriteByte(hex[c>>4])
				b.WriteByte(hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteString(s[start:i])
			b.WriteString(`\ufffd`)
		case r == '\u2028' || r == '\u2029': // line separators break JavaScript string literals
			b.WriteString(s[start:i])
			b.WriteString(`\u202`)
			b.WriteByte(hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b.WriteString(s[start:])
	b.WriteByte('"')
}

// JSON Schema type names, in the order a type array lists them.
const (
	tObject  = "object"
	tArray   = "array"
	tString  = "string"
	tNumber  = "number"
	tInteger = "integer"
	tBoolean = "boolean"
	tNull    = "null"
)

var typeOrder = []string{tObject, tArray, tString, tNumber, tInteger, tBoolean, tNull}

// types is a schema's "type": one name as a string, several as an array
// (3.1's way of saying nullable), in typeOrder.
type types []string

// with returns t plus name, in typeOrder; integer goes once number is
// there, which includes it.
func (t types) with(name string) types {
	hasNumber := name == tNumber || slices.Contains(t, tNumber)
	out := types{}
	for _, n := range typeOrder {
		if (n == name || slices.Contains(t, n)) && !(n == tInteger && hasNumber) {
			out = append(out, n)
		}
	}
	return out
}

// schema is the subset of JSON Schema 2020-12 the documents use. A schema
// with no Type and no Ref accepts any value.
type schema struct {
	Ref         string
	Type        types
	Description string
	Format      string
	Const       json.RawMessage
	Enum        []string
	Pattern     string
	MinLength   *int
	MaxLength   *int
	Minimum     *int
	Maximum     *int
	MaxItems    *int
	Properties  obj
	Required    []string
	Items       *schema
	Default     json.RawMessage
	Examples    []json.RawMessage
}

// obj lists the keywords that are set, in a fixed order.
func (s *schema) obj() obj {
	var o obj
	str := func(k, v string) {
		if v != "" {
			o.set(k, v)
		}
	}
	num := func(k string, v *int) {
		if v != nil {
			o.set(k, *v)
		}
	}
	str("$ref", s.Ref)
	if len(s.Type) > 0 {
		o.set("type", s.Type)
	}
	str("description", s.Description)
	str("format", s.Format)
	if s.Const != nil {
		o.set("const", s.Const)
	}
	if len(s.Enum) > 0 {
		o.set("enum", s.Enum)
	}
	str("pattern", s.Pattern)
	num("minLength", s.MinLength)
	num("maxLength", s.MaxLength)
	num("minimum", s.Minimum)
	num("maximum", s.Maximum)
	num("maxItems", s.MaxItems)
	if len(s.Properties) > 0 {
		o.set("properties", s.Properties)
	}
	if len(s.Required) > 0 {
		o.set("required", s.Required)
	}
	if s.Items != nil {
		o.set("items", s.Items)
	}
	if s.Default != nil {
		o.set("default", s.Default)
	}
	if len(s.Examples) > 0 {
		examples := make([]any, len(s.Examples))
		for i, e := range s.Examples {
			examples[i] = e
		}
		o.set("examples", examples)
	}
	return o
}

// open reports whether s accepts any value.
func (s *schema) open() bool { return len(s.Type) == 0 && s.Ref == "" }

// allow adds a type to a typed schema; an open one already has it.
func (s *schema) allow(name string) {
	if !s.open() && name != "" {
		s.Type = s.Type.with(name)
	}
}

func ptr[T any](v T) *T { return &v }

// jsonType is the JSON Schema type of a decoded value (json.Number for
// numbers).
func jsonType(v any) string {
	switch v := v.(type) {
	case map[string]any:
		return tObject
	case []any:
		return tArray
	case string:
		return tString
	case bool:
		return tBoolean
	case json.Number:
		// By how it is written, not by value: an example's 4.0 says the
		// field is a number that happened to be whole.
		if strings.ContainsAny(string(v), ".eE") {
			return tNumber
		}
		return tInteger
	}
	return tNull
}

// decode parses one JSON value, keeping numbers as written.
func decode(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("more than one JSON value")
	}
	return v, nil
}

func rawTypeOf(raw json.RawMessage) string {
	v, err := decode(raw)
	if err != nil {
		return ""
	}
	return jsonType(v)
}
