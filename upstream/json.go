package upstream

import (
	"encoding/binary"
	"math/bits"
)

// maxJSONDepth bounds nesting: a hostile body of a million '[' is rejected
// with constant memory instead of being walked.
const maxJSONDepth = 512

// validJSON reports whether b is one JSON value (RFC 8259) with optional
// surrounding whitespace, nested at most maxJSONDepth deep. It walks the
// document once, without recursion, and skips the inside of strings eight
// bytes at a time: upstream bodies are mostly string bytes, and every 2xx
// body is checked before anything reads it.
func validJSON(b []byte) bool {
	// open holds, per nesting level, whether it is an object (true) or an
	// array; fixed size, so no allocation.
	var open [maxJSONDepth]bool
	depth := 0
	i := skipWS(b, 0)
	for {
		// A value is expected at b[i].
		if i >= len(b) {
			return false
		}
		switch c := b[i]; {
		case c == '{' || c == '[':
			if depth == maxJSONDepth {
				return false
			}
			open[depth] = c == '{'
			depth++
			i = skipWS(b, i+1)
			if i < len(b) && (c == '{' && b[i] == '}' || c == '[' && b[i] == ']') {
				depth--
				i++
				break // an empty container is a complete value
			}
			if c == '{' {
				if i = validKey(b, i); i < 0 {
					return false
				}
			}
			continue
		case c == '"':
			if i = validString(b, i); i < 0 {
				return false
			}
		case c == '-' || c >= '0' && c <= '9':
			if i = validNumber(b, i); i < 0 {
				return false
			}
		default:
			if i = validLiteral(b, i); i < 0 {
				return false
			}
		}
		// A value ended at i: close containers, or move to the next value.
		for {
			i = skipWS(b, i)
			if depth == 0 {
				return i == len(b)
			}
			if i >= len(b) {
				return false
			}
			obj := open[depth-1]
			switch {
			case b[i] == ',':
				i = skipWS(b, i+1)
				if obj {
					if i = validKey(b, i); i < 0 {
						return false
					}
				}
			case obj && b[i] == '}' || !obj && b[i] == ']':
				depth--
				i++
				continue
			default:
				return false
			}
			break
		}
	}
}

// validKey checks `"key" :` at b[i] and returns where the value starts.
func validKey(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	if i = validString(b, i); i < 0 {
		return -1
	}
	i = skipWS(b, i)
	if i >= len(b) || b[i] != ':' {
		return -1
	}
	return skipWS(b, i+1)
}

func skipWS(b []byte, i int) int {
	// Most tokens are not preceded by whitespace: one comparison rules it out.
	for i < len(b) && b[i] <= ' ' && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// stringStop marks, in its high bit, the first byte of x that ends a plain
// run inside a string: '"', '\\' or a control character (bytes after it may
// be marked falsely; only the first is used).
func stringStop(x uint64) uint64 {
	q := x ^ (ones * '"')
	s := x ^ (ones * '\\')
	return ((q-ones)&^q | (s-ones)&^s | (x-ones*0x20)&^x) & highs
}

// validString checks the string at b[i] == '"' and returns the index after it.
func validString(b []byte, i int) int {
	i++
	for {
		for i+8 <= len(b) {
			if m := stringStop(binary.LittleEndian.Uint64(b[i:])); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		if i >= len(b) {
			return -1
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1
		case c < 0x20:
			return -1
		case c == '\\':
			if i+1 >= len(b) {
				return -1
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
					return -1
				}
				i += 6
			default:
				return -1
			}
		default:
			i++
		}
	}
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func digits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

// validNumber checks -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? at b[i].
func validNumber(b []byte, i int) int {
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = digits(b, i+1)
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		j := digits(b, i+1)
		if j == i+1 {
			return -1
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(b, i)
		if j == i {
			return -1
		}
		i = j
	}
	return i
}

func validLiteral(b []byte, i int) int {
	for _, lit := range [...]string{"true", "false", "null"} {
		if len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit {
			return i + len(lit)
		}
	}
	return -1
}
