// Package yamlstrict reads hand-written YAML strictly, for view files and
// view test fixtures alike: unknown and repeated keys are mistakes, values
// must have the kind asked for, anchors and aliases are refused, and every
// mistake names its line.
package yamlstrict

import (
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Reader checks nodes and reports mistakes through Fail.
type Reader struct {
	// Fail records a mistake at n; the caller keeps the first, typically.
	Fail func(n *yaml.Node, field, format string, args ...any)
	// Files names the files in messages: "view files", "fixture files".
	Files string
	// Record, if set, learns the line of every key Mapping reads.
	Record func(field string, line int)
}

var kindNames = map[yaml.Kind]string{
	yaml.MappingNode: "a mapping", yaml.SequenceNode: "a list", yaml.ScalarNode: "a single value",
	yaml.AliasNode: "an alias", yaml.DocumentNode: "a document",
}

// KindName says what a node is, for messages.
func KindName(k yaml.Kind) string { return kindNames[k] }

// Is reports whether n is of kind, failing with what was expected if not.
// Anchors and aliases are refused: files are short, and aliases can make a
// small file expand without bound.
func (r *Reader) Is(n *yaml.Node, kind yaml.Kind, field, want string) bool {
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		r.Fail(n, field, "anchors and aliases are not supported in %s", r.Files)
		return false
	}
	if n.Kind != kind {
		r.Fail(n, field, "want %s, found %s", want, kindNames[n.Kind])
		return false
	}
	return true
}

// Mapping walks a mapping, calling the handler of each key in file order.
// Unknown and repeated keys are errors: a typo must not be ignored.
func (r *Reader) Mapping(n *yaml.Node, field string, handlers map[string]func(*yaml.Node)) {
	if !r.Is(n, yaml.MappingNode, field, "a mapping") {
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		h, ok := handlers[k.Value]
		switch {
		case k.Kind != yaml.ScalarNode:
			r.Fail(k, field, "want a key, found %s", kindNames[k.Kind])
		case !ok:
			r.Fail(k, field, "unknown key %q (known: %s)", k.Value, keys(handlers))
		case seen[k.Value]:
			r.Fail(k, field, "key %q is given twice", k.Value)
		default:
			seen[k.Value] = true
			if r.Record != nil {
				r.Record(Join(field, k.Value), k.Line)
			}
			h(v)
		}
	}
}

// Pairs walks a mapping whose keys are names the user chooses, in file
// order. A key given twice is a mistake; hint, if set, is added to that
// message.
func (r *Reader) Pairs(n *yaml.Node, field, hint string, each func(k, v *yaml.Node)) {
	if !r.Is(n, yaml.MappingNode, field, "a mapping of names") {
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if k.Kind != yaml.ScalarNode || k.Value == "" {
			r.Fail(k, field, "want a name")
			continue
		}
		if seen[k.Value] {
			r.Fail(k, field, "%q is given twice%s", k.Value, hint)
			continue
		}
		seen[k.Value] = true
		if r.Record != nil {
			r.Record(Join(field, k.Value), k.Line)
		}
		each(k, n.Content[i+1])
	}
}

func keys(m map[string]func(*yaml.Node)) string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// Join names a key below a field: "calls.user".
func Join(field, key string) string {
	if field == "" {
		return key
	}
	return field + "." + key
}

// Str reads a string; null is not one.
func (r *Reader) Str(n *yaml.Node, field string, dst *string) {
	if !r.Is(n, yaml.ScalarNode, field, "a string") {
		return
	}
	if n.Tag == "!!null" {
		r.Fail(n, field, "want a string, found null")
		return
	}
	*dst = n.Value
}

// Bool reads true or false, and nothing YAML 1.1 would call a boolean.
func (r *Reader) Bool(n *yaml.Node, field string, dst *bool) {
	if !r.Is(n, yaml.ScalarNode, field, "true or false") {
		return
	}
	b, err := strconv.ParseBool(n.Value)
	if err != nil || n.Tag != "!!bool" {
		r.Fail(n, field, "want true or false, found %q", n.Value)
		return
	}
	*dst = b
}

// Duration reads a Go duration ("500ms"); positive says zero is refused.
func (r *Reader) Duration(n *yaml.Node, field string, dst *time.Duration, positive bool) {
	if !r.Is(n, yaml.ScalarNode, field, "a duration such as 500ms or 2s") {
		return
	}
	d, err := time.ParseDuration(n.Value)
	switch {
	case positive && (err != nil || d <= 0):
		r.Fail(n, field, "want a duration above zero such as 500ms or 2s, found %q", n.Value)
	case err != nil || d < 0:
		r.Fail(n, field, "want a duration such as 500ms or 2s, found %q", n.Value)
	default:
		*dst = d
	}
}

// Line splits a yaml.v3 syntax error into its line and message.
func Line(err error) (int, string) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		num, text, found := strings.Cut(rest, ": ")
		if n, err := strconv.Atoi(num); err == nil && found {
			if parserProblems[text] {
				n++ // yaml.v3 prints a parser error's 0-based line (its scanner's, 1-based)
			}
			return n, text
		}
	}
	return 1, msg
}

// parserProblems are yaml.v3's parser errors (parserc.go), as opposed to
// its scanner's.
var parserProblems = map[string]bool{
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"did not find expected '-' indicator":    true,
	"did not find expected key":              true,
	"did not find expected node content":     true,
	"found undefined tag handle":             true,
	"did not find expected <document start>": true,
	"did not find expected <stream-start>":   true,
	"found duplicate %TAG directive":         true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
}

// Message is a mistake as users read it: "file:line: view \"x\": field: msg",
// the kind and name ("view", "case") and the field left out when empty.
func Message(file string, line int, kind, name, field, msg string) string {
	var b strings.Builder
	b.WriteString(file)
	b.WriteByte(':')
	b.WriteString(strconv.Itoa(line))
	b.WriteString(": ")
	if name != "" {
		b.WriteString(kind)
		b.WriteByte(' ')
		b.WriteString(strconv.Quote(name))
		b.WriteString(": ")
	}
	if field != "" {
		b.WriteString(field)
		b.WriteString(": ")
	}
	b.WriteString(msg)
	return b.String()
}
