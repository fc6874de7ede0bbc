package viewtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// maxDepth bounds nesting in bodies: deeper is surely a mistake, and the
// walks below are recursive.
const maxDepth = 256

type kind uint8

const (
	kNull kind = iota
	kBool
	kNumber
	kString
	kArray
	kObject
)

// value is a JSON value that keeps its object keys in order: the views'
// output order is their definition order, and the tests check it.
type value struct {
	kind kind
	text string   // a bool's "true"/"false", a number's literal, a string's text
	keys []string // an object's keys, in order
	// elems are an array's elements, or an object's values (parallel to keys).
	elems []*value
}

// parseJSON reads exactly one JSON value.
func parseJSON(data []byte) (*value, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := readValue(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one JSON value")
	}
	return v, nil
}

func readValue(dec *json.Decoder, depth int) (*value, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("nested deeper than %d", maxDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	switch t := tok.(type) {
	case nil:
		return &value{kind: kNull}, nil
	case bool:
		return &value{kind: kBool, text: strconv.FormatBool(t)}, nil
	case json.Number:
		return &value{kind: kNumber, text: t.String()}, nil
	case string:
		return &value{kind: kString, text: t}, nil
	case json.Delim:
		switch t {
		case '[':
			v := &value{kind: kArray}
			for dec.More() {
				e, err := readValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				v.elems = append(v.elems, e)
			}
			_, err := dec.Token() // ']'
			return v, err
		case '{':
			v := &value{kind: kObject}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return nil, err
				}
				e, err := readValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				v.keys = append(v.keys, k.(string))
				v.elems = append(v.elems, e)
			}
			_, err := dec.Token() // '}'
			return v, err
		}
	}
	return nil, fmt.Errorf("unexpected %v", tok)
}

// jsonNumber is the grammar of a JSON number, so a YAML number written
// that way is kept digit for digit (ids beyond 2^53 included).
var jsonNumber = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

// fromYAML turns a YAML value into JSON, mappings in file order. Anchors
// and aliases are refused, as in view files.
func fromYAML(n *yaml.Node, depth int) (*value, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("nested deeper than %d", maxDepth)
	}
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		return nil, errors.New("anchors and aliases are not supported in fixture files")
	}
	switch n.Kind {
	case yaml.MappingNode:
		v := &value{kind: kObject}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode || k.Anchor != "" {
				return nil, errors.New("object keys must be plain strings")
			}
			if slices.Contains(v.keys, k.Value) { // yaml.v3 would keep the first, silently
				return nil, fmt.Errorf("line %d: key %q is given twice", k.Line, k.Value)
			}
			e, err := fromYAML(n.Content[i+1], depth+1)
			if err != nil {
				return nil, err
			}
			v.keys = append(v.keys, k.Value)
			v.elems = append(v.elems, e)
		}
		return v, nil
	case yaml.SequenceNode:
		v := &value{kind: kArray}
		for _, c := range n.Content {
			e, err := fromYAML(c, depth+1)
			if err != nil {
				return nil, err
			}
			v.elems = append(v.elems, e)
		}
		return v, nil
	case yaml.ScalarNode:
		return scalarFromYAML(n)
	}
	return nil, errors.New("want a JSON value")
}

func scalarFromYAML(n *yaml.Node) (*value, error) {
	switch n.Tag {
	case "!!null":
		return &value{kind: kNull}, nil
	case "!!bool":
		b, err := strconv.ParseBool(n.Value)
		if err != nil {
			return nil, fmt.Errorf("%q is not true or false", n.Value)
		}
		return &value{kind: kBool, text: strconv.FormatBool(b)}, nil
	case "!!int", "!!float":
		if jsonNumber.MatchString(n.Value) {
			return &value{kind: kNumber, text: n.Value}, nil
		}
		// 0x1F, +5, 1_000 and the like: let YAML read it, write it as JSON.
		var f any
		if err := n.Decode(&f); err != nil {
			return nil, err
		}
		b, err := json.Marshal(f)
		if err != nil || !jsonNumber.Match(b) {
			return nil, fmt.Errorf("%s is not a JSON number", n.Value)
		}
		return &value{kind: kNumber, text: string(b)}, nil
	case "!!str", "!!timestamp", "!!binary":
		// A date stays the text written, as JSON has no dates.
		return &value{kind: kString, text: n.Value}, nil
	}
	return nil, fmt.Errorf("unsupported tag %s", n.Tag)
}

// encode writes v as compact JSON.
func (v *value) encode(b []byte) []byte {
	switch v.kind {
	case kNull:
		return append(b, "null"...)
	case kBool, kNumber:
		return append(b, v.text...)
	case kString:
		return appendString(b, v.text)
	case kArray:
		b = append(b, '[')
		for i, e := range v.elems {
			if i > 0 {
				b = append(b, ',')
			}
			b = e.encode(b)
		}
		return append(b, ']')
	}
	b = append(b, '{')
	for i, k := range v.keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = v.elems[i].encode(b)
	}
	return append(b, '}')
}

// appendString quotes s as JSON does, without escaping <, > and & (bodies
// are compared and read by people, not embedded in HTML).
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r == '\n':
			b = append(b, `\n`...)
		case r == '\r':
			b = append(b, `\r`...)
		case r == '\t':
			b = append(b, `\t`...)
		case r < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[r>>4], hex[r&0xf])
		default:
			b = utf8.AppendRune(b, r) // invalid bytes become U+FFFD, as in encoding/json
		}
	}
	return append(b, '"')
}

// short renders v for a diff line: compact, cut after about 60 characters.
func (v *value) short() string {
	if v == nil {
		return "none"
	}
	s := string(v.encode(nil))
	if utf8.RuneCountInString(s) > 60 {
		r := []rune(s)
		s = string(r[:57]) + "…"
	}
	return s
}

// differ collects the differences between two values, one line each,
// named by a JSON path: $.orders[2].total_cents: want 100, got 200.
type differ struct {
	lines []string
	more  int // differences past maxLines, counted only
}

const maxLines = 20

func (d *differ) add(format string, args ...any) {
	if len(d.lines) >= maxLines {
		d.more++
		return
	}
	d.lines = append(d.lines, fmt.Sprintf(format, args...))
}

func (d *differ) diff(path string, want, got *value) {
	if want.kind != got.kind {
		d.add("%s: want %s, got %s", path, want.short(), got.short())
		return
	}
	switch want.kind {
	case kNumber:
		if !sameNumber(want.text, got.text) {
			d.add("%s: want %s, got %s", path, want.text, got.text)
		}
	case kNull:
	case kBool, kString:
		if want.text != got.text {
			d.add("%s: want %s, got %s", path, want.short(), got.short())
		}
	case kArray:
		d.array(path, want, got)
	case kObject:
		d.object(path, want, got)
	}
}

func (d *differ) array(path string, want, got *value) {
	if len(want.elems) != len(got.elems) {
		d.add("%s: want %d elements, got %d", path, len(want.elems), len(got.elems))
	}
	for i, w := range want.elems {
		p := path + "[" + strconv.Itoa(i) + "]"
		if i >= len(got.elems) {
			d.add("%s: missing, want %s", p, w.short())
			continue
		}
		d.diff(p, w, got.elems[i])
	}
	for i := len(want.elems); i < len(got.elems); i++ {
		d.add("%s[%d]: unexpected, got %s", path, i, got.elems[i].short())
	}
}

func (d *differ) object(path string, want, got *value) {
	gotAt := make(map[string]int, len(got.keys))
	for i, k := range got.keys {
		if _, dup := gotAt[k]; dup {
			d.add("%s: key %q appears twice", path, k)
			continue
		}
		gotAt[k] = i
	}
	wantAt := make(map[string]int, len(want.keys))
	for i, k := range want.keys {
		if _, dup := wantAt[k]; !dup {
			wantAt[k] = i
		}
	}
	// Order first: a reordered object is one line, not a line per key.
	var wantCommon, gotCommon []string
	for i, k := range want.keys {
		if _, ok := gotAt[k]; ok && wantAt[k] == i {
			wantCommon = append(wantCommon, k)
		}
	}
	for i, k := range got.keys {
		if _, ok := wantAt[k]; ok && gotAt[k] == i {
			gotCommon = append(gotCommon, k)
		}
	}
	if strings.Join(wantCommon, "\x00") != strings.Join(gotCommon, "\x00") {
		d.add("%s: keys in order %v, want %v", path, got.keys, want.keys)
	}
	for i, k := range want.keys {
		if wantAt[k] != i {
			continue // a repeated key in the fixture: the first one counts
		}
		p := path + pathKey(k)
		j, ok := gotAt[k]
		if !ok {
			d.add("%s: missing, want %s", p, want.elems[i].short())
			continue
		}
		d.diff(p, want.elems[i], got.elems[j])
	}
	for j, k := range got.keys {
		if _, ok := wantAt[k]; !ok && gotAt[k] == j {
			d.add("%s: unexpected, got %s", path+pathKey(k), got.elems[j].short())
		}
	}
}

var plainKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func pathKey(k string) string {
	if plainKey.MatchString(k) {
		return "." + k
	}
	return "[" + string(appendString(nil, k)) + "]"
}

// sameNumber compares values, not spellings: 1.50 equals 1.5. The
// precision keeps ids beyond float64's 2^53 apart; big.Float rather than
// big.Rat, which would expand an exponent like 1e999999999 in full.
func sameNumber(a, b string) bool {
	if a == b {
		return true
	}
	x, _, errx := big.ParseFloat(a, 10, 512, big.ToNearestEven)
	y, _, erry := big.ParseFloat(b, 10, 512, big.ToNearestEven)
	return errx == nil && erry == nil && x.Cmp(y) == 0
}
