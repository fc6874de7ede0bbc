package openapi

import (
	"encoding/json"
	"regexp/syntax"
	"strings"

	"github.com/bffproxy/bff/aggregate"
	"github.com/bffproxy/bff/bff"
)

// segment is the engine's pattern for a parameter that declares none.
const segment = `[^/]+`

// pathParameter describes a path parameter: pattern is the view's (the
// whole value must match), chiPattern the one written in the route, if any.
func pathParameter(name, pattern, chiPattern string) obj {
	if pattern == "" {
		pattern = segment
	}
	s := &schema{Type: types{tString}}
	desc := "Must match `" + pattern + "` in full; otherwise the answer is 400 (`" + bff.ProblemInvalidParameter + "`) and no upstream is called."
	if chiPattern != "" {
		// The route's own pattern decides whether the route matches at all.
		desc += " A value the route's own `" + chiPattern + "` does not match reaches no route: the answer is 404 (`" + bff.ProblemNotFound + "`)."
	}
	if ecmaSafe(pattern) {
		// The view's regexp must match the whole value; a JSON Schema
		// pattern matches anywhere unless anchored.
		s.Pattern = "^(?:" + pattern + ")$"
	} else {
		desc += " The pattern uses Go regular expression syntax that ECMA-262 lacks, so it is not repeated in `pattern`."
	}
	lo, hi := 1, -1 // chi never matches an empty segment
	for _, p := range []string{pattern, chiPattern} {
		if p == "" {
			continue
		}
		if plo, phi, ok := lengths(p); ok {
			lo = max(lo, plo)
			if phi >= 0 && (hi < 0 || phi < hi) {
				hi = phi
			}
		}
	}
	s.MinLength = ptr(lo)
	if hi >= 0 {
		s.MaxLength = ptr(hi)
	}
	return obj{
		{"name", name},
		{"in", "path"},
		{"required", true},
		{"description", desc},
		{"schema", s},
	}
}

// ecmaSafe reports whether a Go regexp means the same as an ECMA-262 one,
// which JSON Schema patterns are, as far as a conservative look can tell:
// flags, named groups in Go's form, \A, \z, \Q…\E, \C, \p classes, \x{…}
// and POSIX classes are Go's own.
func ecmaSafe(p string) bool {
	if strings.Contains(p, "[[:") || strings.Contains(p, `\x{`) {
		return false
	}
	for i := 0; i < len(p)-1; i++ {
		switch {
		case p[i] == '\\':
			if strings.IndexByte("AzQECpP", p[i+1]) >= 0 {
				return false
			}
			i++ // an escaped character is not the start of anything
		case p[i] == '(' && p[i+1] == '?':
			if i+2 >= len(p) || p[i+2] != ':' {
				return false
			}
		}
	}
	return true
}

// lengths returns the shortest and longest lengths, in characters, of the
// values matching p in full (hi < 0: no bound); ok is false if p does not
// parse.
func lengths(p string) (lo, hi int, ok bool) {
	re, err := syntax.Parse(p, syntax.Perl)
	if err != nil {
		return 0, 0, false
	}
	lo, hi = span(re)
	return lo, hi, true
}

func span(re *syntax.Regexp) (lo, hi int) {
	switch re.Op {
	case syntax.OpLiteral:
		return len(re.Rune), len(re.Rune)
	case syntax.OpCharClass, syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		return 1, 1
	case syntax.OpCapture:
		return span(re.Sub[0])
	case syntax.OpStar:
		return 0, -1
	case syntax.OpPlus:
		lo, _ = span(re.Sub[0])
		return lo, -1
	case syntax.OpQuest:
		_, hi = span(re.Sub[0])
		return 0, hi
	case syntax.OpRepeat:
		slo, shi := span(re.Sub[0])
		lo = re.Min * slo
		if re.Max < 0 || shi < 0 {
			return lo, -1
		}
		return lo, re.Max * shi
	case syntax.OpConcat:
		for _, sub := range re.Sub {
			slo, shi := span(sub)
			lo += slo
			if hi >= 0 {
				hi += shi
			}
			if shi < 0 {
				hi = -1
			}
		}
		return lo, hi
	case syntax.OpAlternate:
		for i, sub := range re.Sub {
			slo, shi := span(sub)
			if i == 0 || slo < lo {
				lo = slo
			}
			if i == 0 || hi >= 0 && (shi < 0 || shi > hi) {
				hi = shi
			}
		}
		return lo, hi
	}
	return 0, 0 // empty matches, anchors, word boundaries
}

// queryParameter describes a view's query parameter: its type and bounds,
// its default, and whether it is required (it is when it has no default).
func queryParameter(q aggregate.QueryParam) obj {
	s := &schema{Type: types{tString}}
	desc := "Without a default it is required. Given twice, or out of bounds, the answer is 400 (`" + bff.ProblemInvalidParameter + "`)."
	if q.Type == "int" {
		s.Type = types{tInteger}
		if q.Min != nil {
			s.Minimum = ptr(int(*q.Min))
		}
		if q.Max != nil {
			s.Maximum = ptr(int(*q.Max))
		}
	} else {
		pattern := q.Pattern
		if pattern == "" {
			s.MaxLength = ptr(256)
		} else if ecmaSafe(pattern) {
			s.Pattern = "^(?:" + pattern + ")$"
		}
	}
	if q.Default != nil {
		if q.Type == "int" {
			s.Default = json.RawMessage(*q.Default)
		} else {
			b, _ := json.Marshal(*q.Default)
			s.Default = b
		}
	}
	return obj{
		{"name", q.Name},
		{"in", "query"},
		{"required", q.Default == nil},
		{"description", desc},
		{"schema", s},
	}
}

// appVersionParameter is X-App-Version for a view with variants.
func appVersionParameter(ranges []string) obj {
	return obj{
		{"name", "X-App-Version"},
		{"in", "header"},
		{"required", false},
		{"description", "The app's version (dotted numbers). Versions in " + strings.Join(ranges, "; ") +
			" get an older shape of this response; others, and requests without it, get the one described here."},
		{"schema", &schema{Type: types{tString}, Pattern: `^[0-9]+(\.[0-9]+){0,2}$`}},
	}
}
