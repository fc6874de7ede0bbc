package aggregate

import (
	"regexp"
	"testing"
)

func TestParseASCIIRunTakesOnlyRepeatedASCIIClasses(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		fast    bool
	}{
		{`[0-9]{1,18}`, true},
		{`[0-9]+`, true},
		{`[a-z0-9-]*`, true},
		{`[A-Za-z0-9_.-]{1,64}`, true},
		{`[0-9]{3,}`, true},
		{`[^/]+`, false},          // the default: takes any rune but '/'
		{`(?i)[a-z]+`, false},     // folds k to U+212A KELVIN SIGN, s to U+017F
		{`(?s).{1,256}`, false},   // any rune
		{`[0-9]+|x`, false},       // an alternation
		{`-?[0-9]{1,18}`, false},  // a concatenation
		{`[0-9]{1,18}?`, true},    // non-greedy matches the same whole values
		{`[é0-9]+`, false},        // a non-ASCII rune in the class
		{`7`, false},              // a literal
		{`[0-9]{2}[a-z]+`, false}, // two parts
	} {
		_, ok := parseASCIIRun(tc.pattern)
		if ok != tc.fast {
			t.Errorf("%q: fast form %v, want %v", tc.pattern, ok, tc.fast)
		}
	}
}

func TestASCIIRunMatchesAsTheRegexp(t *testing.T) {
	values := []string{"", "7", "007", "123456789012345678", "1234567890123456789", "12a", "a12", " 1", "1\n",
		"abc-def", "ABC", "a.b", "é", "1\xff", "\xff", "\u0661", "1٣", "..", "/", "a/b", "k", "K", "\u212a"}
	for _, pattern := range []string{`[0-9]{1,18}`, `[0-9]+`, `[a-z0-9-]*`, `[A-Za-z0-9_.-]{1,64}`, `[0-9]{3,}`, `[0-9]{0,2}`} {
		r, ok := parseASCIIRun(pattern)
		if !ok {
			t.Fatalf("%q has no fast form", pattern)
		}
		re := regexp.MustCompile(`^(?:` + pattern + `)$`)
		for _, v := range values {
			if got, want := r.match(v), re.MatchString(v); got != want {
				t.Errorf("%q on %q: %v, the regexp says %v", pattern, v, got, want)
			}
		}
	}
}

// FuzzASCIIRunMatchesRegexp: wherever a pattern has a fast form, it accepts
// exactly the values its regexp accepts.
func FuzzASCIIRunMatchesRegexp(f *testing.F) {
	for _, seed := range [][2]string{
		{`[0-9]{1,18}`, "12345"}, {`[0-9]+`, "1\xff"}, {`[a-z-]*`, ""}, {`[A-Z_]{2,3}`, "ABCD"},
		{`(?i)[a-z]+`, "\u212a"}, {`[\x00-\x7f]+`, "a\x80"}, {`[[:alpha:]]{1,4}`, "abcd"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, pattern, v string) {
		re, err := regexp.Compile(`^(?:` + pattern + `)$`)
		if err != nil {
			return
		}
		r, ok := parseASCIIRun(pattern)
		if !ok {
			return
		}
		if got, want := r.match(v), re.MatchString(v); got != want {
			t.Fatalf("%q on %q: %v, the regexp says %v", pattern, v, got, want)
		}
	})
}

func BenchmarkParamCheck(b *testing.B) {
	re := `[0-9]{1,18}`
	slow := compiledParam{pattern: regexp.MustCompile(`^(?:` + re + `)$`)}
	fast := slow
	fast.run = fastForm(re)
	for _, bc := range []struct {
		name string
		cp   *compiledParam
	}{{"regexp", &slow}, {"ascii_run", &fast}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if cp := bc.cp; cp.check("123456789") != "" {
					b.Fatal("rejected")
				}
			}
		})
	}
}
