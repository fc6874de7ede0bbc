package aggregate

import (
	"fmt"
	"strconv"
	"strings"
)

// Variant is another shape of the same calls for a range of app versions:
// apps in the field cannot be made to update, so a view keeps answering
// old versions in the shape they understand.
type Variant struct {
	// AppVersion is the range the X-App-Version header must fall in, as
	// space-separated comparisons: ">=2.0 <3", "<1.4.2", "=2.1".
	AppVersion string
	Shape      []Field
}

// version is a dotted numeric version; missing parts are zero.
type version [3]int64

func parseVersion(s string) (version, bool) {
	var v version
	if s == "" || len(s) > 32 {
		return v, false
	}
	parts := strings.Split(s, ".")
	if len(parts) > 3 {
		return v, false
	}
	for i, p := range parts {
		n, err := strconv.ParseInt(p, 10, 64)
		if err != nil || p[0] < '0' || p[0] > '9' { // "-0", "+1": digits only
			return v, false
		}
		v[i] = n
	}
	return v, true
}

func (a version) compare(b version) int {
	for i := range a {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

// versionRange is every comparison of a Variant.AppVersion; all must hold.
type versionRange []struct {
	op string
	v  version
}

func parseRange(s string) (versionRange, error) {
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return nil, fmt.Errorf("is empty; want comparisons such as \">=2.0 <3\"")
	}
	var r versionRange
	for _, f := range fields {
		op := strings.TrimRight(f[:min(2, len(f))], "0123456789")
		switch op {
		case ">=", "<=", ">", "<", "=":
		default:
			return nil, fmt.Errorf("%q: want >=, >, <=, < or = before a version such as 2.1", f)
		}
		v, ok := parseVersion(f[len(op):])
		if !ok {
			return nil, fmt.Errorf("%q: %q is not a version such as 2.1 or 2.1.3", f, f[len(op):])
		}
		r = append(r, struct {
			op string
			v  version
		}{op, v})
	}
	return r, nil
}

func (r versionRange) contains(v version) bool {
	for _, c := range r {
		d := v.compare(c.v)
		ok := false
		switch c.op {
		case ">=":
			ok = d >= 0
		case ">":
			ok = d > 0
		case "<=":
			ok = d <= 0
		case "<":
			ok = d < 0
		case "=":
			ok = d == 0
		}
		if !ok {
			return false
		}
	}
	return true
}

// Variant picks the shape for an app version (the X-App-Version header):
// the first variant whose range holds it, else 0, the view's own shape,
// which is also what a missing or unreadable version gets.
func (p *Plan) Variant(appVersion string) int {
	if len(p.ranges) == 0 || appVersion == "" {
		return 0
	}
	v, ok := parseVersion(strings.TrimSpace(appVersion))
	if !ok {
		return 0
	}
	for i, r := range p.ranges {
		if r.contains(v) {
			return i + 1
		}
	}
	return 0
}

// Variants counts the view's app-version variants besides its own shape.
func (p *Plan) Variants() int { return len(p.ranges) }

// AppVersions lists the view's variants' app-version ranges, in order.
func (p *Plan) AppVersions() []string {
	out := make([]string, len(p.view.Variants))
	for i, v := range p.view.Variants {
		out[i] = v.AppVersion
	}
	return out
}
