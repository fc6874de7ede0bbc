package aggregate

import (
	"encoding/binary"
	"math/bits"
	"strings"
	"unsafe"

	"github.com/tidwall/gjson"
)

// A scanner over JSON by position, for the shaper: it walks an array
// element by element without first finding where the array ends (gjson.Get
// would), so a list limited to 10 stops reading after the 10th element, and
// it skips strings eight bytes at a time. Bodies were validated by the
// upstream client; on malformed input it still never reads out of bounds.

// lookup is gjson.Get for a document that is an object or an array. gjson
// reads a path into a string or number document as if its text were JSON
// ("[0" inside a string becomes an array), so those have nothing inside.
func lookup(doc, path string) gjson.Result {
	if i := skipSpace(doc, 0); i >= len(doc) || (doc[i] != '{' && doc[i] != '[') {
		return gjson.Result{}
	}
	return gjson.Get(doc, path)
}

// findMember returns where the value of the first member named key starts
// in the object at s[i], or -1. It reads no further than that member.
func findMember(s string, i int, key string) int {
	if i >= len(s) || s[i] != '{' {
		return -1
	}
	for i = nextMember(s, i+1); i < len(s) && s[i] == '"'; i = nextMember(s, i) {
		k, vs := memberAt(s, i)
		if k == key {
			return vs
		}
		i = skipValue(s, vs)
	}
	return -1
}

// nextMember moves past spaces and a comma to the next member's key (a
// '"'), or to the object's '}' (or the end of a malformed document).
func nextMember(s string, i int) int {
	i = skipSpace(s, i)
	if i < len(s) && s[i] == ',' {
		i = skipSpace(s, i+1)
	}
	return i
}

// memberAt reads the key at s[i] == '"' and returns it, unescaped, with
// where the member's value starts.
func memberAt(s string, i int) (key string, vs int) {
	ke := skipString(s, i)
	key = s[min(i+1, ke):max(ke-1, i+1)]
	if strings.IndexByte(key, '\\') >= 0 {
		key = gjson.Parse(s[i:ke]).Str
	}
	vs = skipSpace(s, ke)
	if vs < len(s) && s[vs] == ':' {
		vs = skipSpace(s, vs+1)
	}
	return key, vs
}

// eachElement calls fn with where each element of the array at s[i]
// starts. fn returns where that element ends if it read it (or -1 to have
// it skipped here), and whether to go on.
func eachElement(s string, i int, fn func(e int) (end int, more bool)) {
	i++ // '['
	for {
		i = skipSpace(s, i)
		if i >= len(s) || s[i] == ']' {
			return
		}
		if s[i] == ',' {
			i++
			continue
		}
		end, more := fn(i)
		if !more {
			return
		}
		if end <= i {
			end = skipValue(s, i)
		}
		if end <= i {
			return
		}
		i = end
	}
}

func skipSpace(s string, i int) int {
	for i < len(s) {
		switch s[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipValue returns the index just past the value starting at s[i].
func skipValue(s string, i int) int {
	if i >= len(s) {
		return len(s)
	}
	switch s[i] {
	case '"':
		return skipString(s, i)
	case '{', '[':
		depth := 0
		for i < len(s) {
			switch s[i] {
			case '"':
				i = skipString(s, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return len(s)
	}
	for j := i; j < len(s); j++ { // number, true, false, null
		switch s[j] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return j
		}
	}
	return len(s)
}

// The eight-bytes-at-a-time test has a twin in upstream/json.go (which
// also stops at control characters); upstream may not import this package.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// quoteOrBackslash marks the first byte of x that is '"' or '\\' in its high
// bit (bytes after it may be marked falsely; only the first is used).
func quoteOrBackslash(x uint64) uint64 {
	q := x ^ (ones * '"')
	b := x ^ (ones * '\\')
	return ((q-ones)&^q | (b-ones)&^b) & highs
}

// skipString returns the index just past the string starting at s[i] == '"'.
func skipString(s string, i int) int {
	i++
	for i < len(s) {
		for i+8 <= len(s) {
			word := binary.LittleEndian.Uint64(unsafe.Slice(unsafe.StringData(s[i:]), 8))
			if m := quoteOrBackslash(word); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		if i >= len(s) {
			break
		}
		switch s[i] {
		case '"':
			return i + 1
		case '\\':
			i += 2
		default: // fewer than eight bytes left
			i++
		}
	}
	return len(s)
}
