package upstream

import (
	"net/url"
	"strings"
)

// EscapeSegment escapes a client value so that it stays one path segment of
// the upstream URL: '/', '?', '#' and '%' are percent-encoded. The values
// "." and ".." come out percent-encoded too, but Client.Do refuses them all
// the same (servers and proxies decode, then resolve them): callers should
// reject such values before they get here, as the aggregate engine does.
func EscapeSegment(s string) string {
	switch s {
	case ".":
		return "%2E"
	case "..":
		return "%2E%2E"
	}
	return url.PathEscape(s)
}

// joinPath appends an already escaped path to the base URL's escaped path
// without resolving anything, and reports whether the result still sits
// under the base path. It never uses url.JoinPath, which resolves "..".
func joinPath(basePath, escaped string) (string, bool) {
	if escaped == "" || escaped[0] != '/' {
		escaped = "/" + escaped
	}
	if strings.ContainsAny(escaped, "?#") || hasDotSegment(escaped) {
		return "", false
	}
	return strings.TrimSuffix(basePath, "/") + escaped, true
}

func hasDotSegment(p string) bool {
	for p != "" {
		seg := p
		if i := strings.IndexByte(p, '/'); i >= 0 {
			seg, p = p[:i], p[i+1:]
		} else {
			p = ""
		}
		if dec, err := url.PathUnescape(seg); err != nil || dec == "." || dec == ".." {
			return true
		}
	}
	return false
}
