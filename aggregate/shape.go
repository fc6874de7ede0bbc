package aggregate

import (
	"strconv"

	"github.com/tidwall/gjson"
)

// appendShape writes the top-level object. results[i] is call i's parsed
// body; present[i] is false when the call failed or was skipped.
func appendShape(dst []byte, nodes []node, results []gjson.Result, present []bool) []byte {
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
			v = v.Get(n.path)
		}
		dst = appendNode(dst, n, v)
	}
	return append(dst, '}')
}

// appendFields writes an object of nodes taken from the object src.
func appendFields(dst []byte, nodes []node, src gjson.Result) []byte {
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
		dst = appendNode(dst, n, src.Get(n.path))
	}
	return append(dst, '}')
}

// appendNode writes v shaped by n, or n's missing value when v does not fit.
func appendNode(dst []byte, n *node, v gjson.Result) []byte {
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
		return appendFields(dst, n.fields, v)
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
				dst = appendFields(dst, n.fields, e)
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
