package aggregate

import (
	"encoding/json"
	"strconv"
)

// shapeRun notes, for one response, the fields an upstream did not send.
// A nil *shapeRun notes nothing.
type shapeRun struct {
	missed []bool // by node id
	params []string
	ints   []bool // params[i] is an int query parameter
}

func (r *shapeRun) miss(n *node) {
	if r != nil && n.track {
		r.missed[n.id] = true
	}
}

// appendShape writes a shape without noting missing fields (tests).
func appendShape(dst []byte, nodes []node, bodies []string, present []bool) []byte {
	return (*shapeRun)(nil).appendShape(dst, nodes, bodies, present)
}

// appendShape writes the top-level object. bodies[i] is call i's body;
// present[i] is false when the call failed or was skipped. Plain keys are
// found by the scanner (scan.go); other paths by gjson.
func (r *shapeRun) appendShape(dst []byte, nodes []node, bodies []string, present []bool) []byte {
	dst = append(dst, '{')
	wrote := false
	for i := range nodes {
		n := &nodes[i]
		mark := len(dst)
		if wrote {
			dst = append(dst, ',')
		}
		dst = append(dst, n.key...)
		found := true
		switch {
		case n.kind == kindConst:
			dst = append(dst, n.literal...)
		case n.kind == kindCombine:
			dst, found = r.appendCombined(dst, n, bodies, present)
		case n.kind == kindParam:
			dst = r.appendParam(dst, n.param)
		case !present[n.call]:
			dst, found = append(dst, n.missing...), false
		case n.path == "":
			s := bodies[n.call]
			dst, found = r.appendNode(dst, n, s, skipSpace(s, 0))
		case n.plainKey:
			s := bodies[n.call]
			dst, found = r.appendNode(dst, n, s, findMember(s, skipSpace(s, 0), n.path))
		default:
			raw := lookup(bodies[n.call], n.path).Raw
			dst, found = r.appendNode(dst, n, raw, 0)
		}
		if !found && n.omit {
			dst = dst[:mark] // the key is left out
			continue
		}
		wrote = true
	}
	return append(dst, '}')
}

// maxInlineFields is how many fields of one object are looked up in one
// pass with their positions kept on the stack.
const maxInlineFields = 16

// appendFields writes an object of nodes taken from the object at s[i] and
// returns where that object ends. Each object is read once; every field
// reading a key gets its first occurrence, as with gjson.Get.
func (r *shapeRun) appendFields(dst []byte, nodes []node, s string, i int) ([]byte, int) {
	var inline [maxInlineFields]int
	var found []int
	if len(nodes) <= maxInlineFields {
		found = inline[:len(nodes)]
	} else {
		found = make([]int, len(nodes))
	}
	for j := range found {
		found[j] = -1
	}
	start, end := i, len(s)
	for i = nextMember(s, i+1); i < len(s) && s[i] == '"'; i = nextMember(s, i) {
		key, vs := memberAt(s, i)
		for j := range nodes {
			n := &nodes[j]
			if n.plainKey && found[j] < 0 && n.kind != kindConst && n.path == key {
				found[j] = vs
			}
		}
		i = skipValue(s, vs)
	}
	if i < len(s) && s[i] == '}' {
		end = i + 1
	}
	dst = append(dst, '{')
	wrote := false
	for j := range nodes {
		n := &nodes[j]
		mark := len(dst)
		if wrote {
			dst = append(dst, ',')
		}
		dst = append(dst, n.key...)
		ok := true
		switch {
		case n.kind == kindConst:
			dst = append(dst, n.literal...)
		case n.plainKey:
			dst, ok = r.appendNode(dst, n, s, found[j])
		default:
			raw := lookup(s[start:end], n.path).Raw
			dst, ok = r.appendNode(dst, n, raw, 0)
		}
		if !ok && n.omit {
			dst = dst[:mark]
			continue
		}
		wrote = true
	}
	return append(dst, '}'), end
}

// appendNode writes the value at s[i] shaped by n, or n's missing value when
// there is none (i < 0) or it is not what n expects; found says which.
func (r *shapeRun) appendNode(dst []byte, n *node, s string, i int) ([]byte, bool) {
	if i < 0 || i >= len(s) {
		r.miss(n)
		return append(dst, n.missing...), false
	}
	switch n.kind {
	case kindValue:
		end := skipValue(s, i)
		if (n.hasDefault || n.omit) && s[i:end] == "null" {
			// An upstream's null is a missing value, as it is for objects,
			// lists and counts: the default or omit applies.
			r.miss(n)
			return append(dst, n.missing...), false
		}
		return append(dst, s[i:end]...), true
	case kindObject:
		if s[i] != '{' {
			r.miss(n)
			return append(dst, n.missing...), false
		}
		dst, _ = r.appendFields(dst, n.fields, s, i)
		return dst, true
	case kindCount:
		if s[i] != '[' {
			r.miss(n)
			return append(dst, n.missing...), false
		}
		count := 0
		eachElement(s, i, func(int) (int, bool) { count++; return -1, true })
		return strconv.AppendInt(dst, int64(count), 10), true
	case kindList:
		if s[i] != '[' {
			r.miss(n)
			return append(dst, n.missing...), false
		}
		return r.appendList(dst, n, s, i), true
	case kindConst:
		return append(dst, n.literal...), true
	}
	return append(dst, "null"...), true
}

// appendList writes the list at s[i], its elements shaped by n (see
// appendElement), at most n.limit of them when it is set.
func (r *shapeRun) appendList(dst []byte, n *node, s string, i int) []byte {
	dst = append(dst, '[')
	count := 0
	eachElement(s, i, func(e int) (int, bool) {
		if count > 0 {
			dst = append(dst, ',')
		}
		var end int
		dst, end = r.appendElement(dst, n, s, e)
		count++
		return end, n.limit == 0 || count < n.limit
	})
	return append(dst, ']')
}

// appendElement writes one element of a list shaped by n's fields (as is
// without fields; null if it is not an object) and returns where it ends,
// -1 when eachElement is to find the end itself.
func (r *shapeRun) appendElement(dst []byte, n *node, s string, e int) ([]byte, int) {
	switch {
	case len(n.fields) == 0:
		end := skipValue(s, e)
		return append(dst, s[e:end]...), end
	case s[e] == '{':
		return r.appendFields(dst, n.fields, s, e)
	}
	return append(dst, "null"...), -1
}

// locate finds a top-level source's value: the body and where it starts.
func locate(n *node, bodies []string, present []bool) (string, int, bool) {
	if !present[n.call] {
		return "", -1, false
	}
	s := bodies[n.call]
	var i int
	switch {
	case n.path == "":
		i = skipSpace(s, 0)
	case n.plainKey:
		i = findMember(s, skipSpace(s, 0), n.path)
	default:
		s = lookup(s, n.path).Raw
		i = 0
	}
	if i < 0 || i >= len(s) || s[i:skipValue(s, i)] == "null" {
		return "", -1, false
	}
	return s, i, true
}

// appendCombined writes a key made from several sources, in their order.
func (r *shapeRun) appendCombined(dst []byte, n *node, bodies []string, present []bool) ([]byte, bool) {
	switch n.combine {
	case "first":
		for k := range n.sources {
			if s, i, ok := locate(&n.sources[k], bodies, present); ok {
				switch {
				case len(n.fields) > 0 && s[i] == '{':
					dst, _ = r.appendFields(dst, n.fields, s, i)
					return dst, true
				case len(n.fields) > 0 && s[i] == '[':
					// A list: each element shaped by the fields, as concat
					// does; copied whole, it would carry fields never listed.
					return r.appendList(dst, n, s, i), true
				}
				return append(dst, s[i:skipValue(s, i)]...), true
			}
		}
	case "concat":
		mark, count, any := len(dst), 0, false
		dst = append(dst, '[')
		for k := range n.sources {
			s, i, ok := locate(&n.sources[k], bodies, present)
			if !ok || s[i] != '[' {
				continue
			}
			any = true
			eachElement(s, i, func(e int) (int, bool) {
				if n.limit > 0 && count >= n.limit {
					return -1, false
				}
				if count > 0 {
					dst = append(dst, ',')
				}
				var end int
				dst, end = r.appendElement(dst, n, s, e)
				count++
				return end, true
			})
		}
		if any {
			return append(dst, ']'), true
		}
		dst = dst[:mark]
	case "merge":
		type member struct{ key, value string }
		var members []member
		at := map[string]int{}
		objects := false
		for k := range n.sources {
			s, i, ok := locate(&n.sources[k], bodies, present)
			if !ok || s[i] != '{' {
				continue
			}
			objects = true
			for j := nextMember(s, i+1); j < len(s) && s[j] == '"'; j = nextMember(s, j) {
				ke := skipString(s, j)
				key, vs := memberAt(s, j)
				end := skipValue(s, vs)
				if idx, seen := at[key]; seen {
					members[idx].value = s[vs:end] // a later source wins, in place
				} else {
					at[key] = len(members)
					members = append(members, member{s[j:ke], s[vs:end]})
				}
				j = end
			}
		}
		if objects {
			dst = append(dst, '{')
			for k, m := range members {
				if k > 0 {
					dst = append(dst, ',')
				}
				dst = append(append(append(dst, m.key...), ':'), m.value...)
			}
			return append(dst, '}'), true
		}
	}
	r.miss(n)
	return append(dst, n.missing...), false
}

// appendParam writes a parameter's value: validated already, so an int is
// written as it came, and a string is quoted.
func (r *shapeRun) appendParam(dst []byte, i int) []byte {
	if r == nil || i >= len(r.params) {
		return append(dst, "null"...)
	}
	if r.ints[i] {
		return append(dst, r.params[i]...)
	}
	b, err := json.Marshal(r.params[i]) // JSON's escapes, not Go's
	if err != nil {
		return append(dst, "null"...)
	}
	return append(dst, b...)
}
