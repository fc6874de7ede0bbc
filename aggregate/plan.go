package aggregate

import (
	"fmt"
	"slices"
)

// ParamError is a path parameter value that does not match its pattern.
type ParamError struct {
	View  string
	Param string
	Value string
}

func (e *ParamError) Error() string {
	return fmt.Sprintf("view %s: parameter %s: value %q does not match its pattern", e.View, e.Param, e.Value)
}

// ParamNames lists the path parameters in the order Input.Params wants.
func (p *Plan) ParamNames() []string {
	names := make([]string, len(p.params))
	for i, prm := range p.params {
		names[i] = prm.name
	}
	return names
}

// Validate checks values, in ParamNames order, against their patterns.
func (p *Plan) Validate(values []string) error {
	if len(values) != len(p.params) {
		return fmt.Errorf("view %s: %d parameter values for %d parameters", p.view.Name, len(values), len(p.params))
	}
	for i, prm := range p.params {
		// "." and ".." never name a resource, and some upstreams resolve them.
		if v := values[i]; v == "." || v == ".." || !prm.pattern.MatchString(v) {
			return &ParamError{View: p.view.Name, Param: prm.name, Value: values[i]}
		}
	}
	return nil
}

// Name returns the view's name.
func (p *Plan) Name() string { return p.view.Name }

// Route returns the view's route below its client's prefix.
func (p *Plan) Route() string { return p.view.Route }

// Method returns the view's HTTP method.
func (p *Plan) Method() string { return p.view.Method }

// Cache returns the view's cache policy, with the scope filled in.
func (p *Plan) Cache() CachePolicy { return p.view.Cache }

// Upstreams lists the upstreams the view calls, in call order, each once.
func (p *Plan) Upstreams() []string {
	var out []string
	seen := map[string]bool{}
	for _, c := range p.calls {
		if !seen[c.Upstream] {
			seen[c.Upstream] = true
			out = append(out, c.Upstream)
		}
	}
	return out
}

// Fingerprint identifies the view's definition (not where it was written):
// two plans with the same fingerprint answer alike.
func (p *Plan) Fingerprint() string { return p.fingerprint }

// Calls returns the view's calls as defined.
func (p *Plan) Calls() []Call {
	out := make([]Call, len(p.calls))
	for i, c := range p.calls {
		out[i] = c.Call
		out[i].Method = c.method
	}
	return out
}

// Source says where the view was written ("file:line"), or "".
func (p *Plan) Source() string { return p.view.Source }

// Params returns the view's path parameters as declared.
func (p *Plan) Params() []Param { return slices.Clone(p.view.Params) }

// Shape returns the view's declarative shape, as written.
func (p *Plan) Shape() []Field { return slices.Clone(p.view.Shape) }

// ShapeFuncName names the view's Go shaping function, if it has one.
func (p *Plan) ShapeFuncName() string { return p.view.ShapeFunc }
