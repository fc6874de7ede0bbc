package aggregate

// The gjson-based shaper the scanner replaced, kept as the reference the
// scanner is checked against (FuzzScannerMatchesGjson) and measured
// against (BenchmarkShapeHome).

import (
	"strconv"

	"github.com/tidwall/gjson"
)

// refAppendShape writes the top-level object. results[i] is call i's parsed
// body; present[i] is false when the call failed or was skipped.
func refAppendShape(dst []byte, nodes []node, results []gjson.Result, present []bool) []byte {
	dst = append(dst, '{')
	for i := range nodes {
		n := &nodes[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, n.key...)
		if n.kind == kindConst {
			dst = append(dst, n.literal...)
			continue
		}
		if !present[n.call] {
			dst = append(dst, n.missing...)
			continue
		}
		v := results[n.call]
		if n.path != "" {
			v = lookup(v.Raw, n.path) // the guard the scanner has too
		}
		dst = refAppendNode(dst, n, v)
	}
	return append(dst, '}')
}

// refMaxInlineFields is how many fields of one object are looked up in a
// single pass with the results kept on the stack.
const refMaxInlineFields = 16

// refAppendFields writes an object of nodes taken from the object src. Plain
// keys are found in one pass over src, which stops once all are found;
// other paths are looked up one by one.
func refAppendFields(dst []byte, nodes []node, src gjson.Result) []byte {
	var found [refMaxInlineFields]gjson.Result
	var vals []gjson.Result
	if len(nodes) <= refMaxInlineFields {
		vals = found[:len(nodes)]
	} else {
		vals = make([]gjson.Result, len(nodes))
	}
	wanted := 0
	for i := range nodes {
		if nodes[i].plainKey && nodes[i].kind != kindConst {
			wanted++
		}
	}
	if wanted > 0 && src.IsObject() {
		src.ForEach(func(k, v gjson.Result) bool {
			// Every field reading this key gets it (a list and a count of the
			// same array, say); the first occurrence of a key wins, as with
			// gjson.Get.
			for i := range nodes {
				n := &nodes[i]
				if n.plainKey && n.kind != kindConst && vals[i].Raw == "" && n.path == k.Str {
					vals[i] = v
					wanted--
				}
			}
			return wanted > 0
		})
	}
	dst = append(dst, '{')
	for i := range nodes {
		n := &nodes[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, n.key...)
		switch {
		case n.kind == kindConst:
			dst = append(dst, n.literal...)
		case n.plainKey:
			dst = refAppendNode(dst, n, vals[i])
		default:
			dst = refAppendNode(dst, n, src.Get(n.path))
		}
	}
	return append(dst, '}')
}

// refAppendNode writes v shaped by n, or n's missing value when v does not fit.
func refAppendNode(dst []byte, n *node, v gjson.Result) []byte {
	switch n.kind {
	case kindValue:
		if !v.Exists() {
			return append(dst, n.missing...)
		}
		return append(dst, v.Raw...)
	case kindObject:
		if !v.IsObject() {
			return append(dst, n.missing...)
		}
		return refAppendFields(dst, n.fields, v)
	case kindCount:
		if !v.IsArray() {
			return append(dst, n.missing...)
		}
		return strconv.AppendInt(dst, v.Get("#").Int(), 10)
	case kindList:
		if !v.IsArray() {
			return append(dst, n.missing...)
		}
		dst = append(dst, '[')
		count := 0
		v.ForEach(func(_, e gjson.Result) bool {
			if count > 0 {
				dst = append(dst, ',')
			}
			switch {
			case len(n.fields) == 0:
				dst = append(dst, e.Raw...)
			case e.IsObject():
				dst = refAppendFields(dst, n.fields, e)
			default:
				dst = append(dst, "null"...)
			}
			count++
			return n.limit == 0 || count < n.limit
		})
		return append(dst, ']')
	case kindConst:
		return append(dst, n.literal...)
	}
	return append(dst, "null"...)
}

func refShape(nodes []node, bodies []string, present []bool) []byte {
	results := make([]gjson.Result, len(bodies))
	for i, b := range bodies {
		results[i] = gjson.Parse(b)
	}
	return refAppendShape(nil, nodes, results, present)
}
