package chaos

import (
	"math"
	"strconv"
	"strings"
	"testing"
)

// metrics is a parsed Prometheus text exposition: enough to read counters
// and gauges by name and labels.
type metrics []sample

type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// sum adds the samples of name whose labels include every given
// label/value pair (none: all of them).
func (m metrics) sum(name string, labelPairs ...string) float64 {
	total := 0.0
next:
	for _, s := range m {
		if s.name != name {
			continue
		}
		for i := 0; i+1 < len(labelPairs); i += 2 {
			if s.labels[labelPairs[i]] != labelPairs[i+1] {
				continue next
			}
		}
		total += s.value
	}
	return total
}

func parseMetrics(text string) metrics {
	var m metrics
	for _, line := range strings.Split(text, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		s := sample{labels: map[string]string{}}
		rest := line
		if i := strings.IndexAny(line, "{ "); i >= 0 && line[i] == '{' {
			s.name = line[:i]
			var ok bool
			if rest, ok = parseLabels(line[i+1:], s.labels); !ok {
				continue
			}
		} else if i >= 0 {
			s.name, rest = line[:i], line[i:]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			v = math.NaN()
		}
		s.value = v
		m = append(m, s)
	}
	return m
}

// parseLabels reads `k="v",...}` into labels and returns what follows.
func parseLabels(s string, labels map[string]string) (string, bool) {
	for {
		s = strings.TrimLeft(s, ", ")
		if strings.HasPrefix(s, "}") {
			return s[1:], true
		}
		eq := strings.Index(s, `="`)
		if eq < 0 {
			return "", false
		}
		key := s[:eq]
		s = s[eq+2:]
		var b strings.Builder
		for {
			if s == "" {
				return "", false
			}
			c := s[0]
			s = s[1:]
			if c == '"' {
				break
			}
			if c == '\\' && s != "" {
				switch s[0] {
				case 'n':
					b.WriteByte('\n')
				default:
					b.WriteByte(s[0])
				}
				s = s[1:]
				continue
			}
			b.WriteByte(c)
		}
		labels[key] = b.String()
	}
}

func TestParseMetrics(t *testing.T) {
	m := parseMetrics(`# HELP x help
# TYPE x counter
bff_upstream_calls_total{outcome="ok",upstream="users"} 12
bff_upstream_calls_total{outcome="timeout",upstream="users"} 3
bff_upstream_calls_total{outcome="ok",upstream="recs"} 1e+03
weird{a="q\"uote, }",b="x"} 2
go_goroutines 17
`)
	for _, tc := range []struct {
		name  string
		pairs []string
		want  float64
	}{
		{"bff_upstream_calls_total", []string{"upstream", "users"}, 15},
		{"bff_upstream_calls_total", []string{"upstream", "users", "outcome", "ok"}, 12},
		{"bff_upstream_calls_total", nil, 1015},
		{"weird", []string{"a", `q"uote, }`, "b", "x"}, 2},
		{"go_goroutines", nil, 17},
		{"missing", nil, 0},
	} {
		if got := m.sum(tc.name, tc.pairs...); got != tc.want {
			t.Errorf("sum(%s, %v) = %v, want %v", tc.name, tc.pairs, got, tc.want)
		}
	}
}
