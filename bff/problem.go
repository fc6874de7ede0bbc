package bff

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/bffproxy/bff/aggregate"
	"github.com/bffproxy/bff/cache"
	"github.com/bffproxy/bff/upstream"
)

// Problem is an RFC 9457 problem details body. Type is a URN naming the
// kind of problem; the README lists them.
type Problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	Instance  string `json:"instance,omitempty"`
	View      string `json:"view,omitempty"`
	Upstream  string `json:"upstream,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	// Pointer is the JSON Pointer of the body value a 400 is about.
	Pointer string `json:"pointer,omitempty"`
}

// Problem types.
const (
	ProblemNotFound             = "urn:bff:problem:not-found"
	ProblemMethodNotAllowed     = "urn:bff:problem:method-not-allowed"
	ProblemInvalidParameter     = "urn:bff:problem:invalid-parameter"
	ProblemURITooLong           = "urn:bff:problem:uri-too-long"
	ProblemUpstreamError        = "urn:bff:problem:upstream-error"
	ProblemUpstreamTimeout      = "urn:bff:problem:upstream-timeout"
	ProblemUpstreamUnavailable  = "urn:bff:problem:upstream-unavailable"
	ProblemInternal             = "urn:bff:problem:internal"
	ProblemUnauthorized         = "urn:bff:problem:unauthorized"
	ProblemForbidden            = "urn:bff:problem:forbidden"
	ProblemInvalidBody          = "urn:bff:problem:invalid-body"
	ProblemBodyTooLarge         = "urn:bff:problem:body-too-large"
	ProblemUnsupportedMediaType = "urn:bff:problem:unsupported-media-type"
	ProblemBadRequest           = "urn:bff:problem:bad-request"
	ProblemOverloaded           = "urn:bff:problem:overloaded"
	ProblemShuttingDown         = "urn:bff:problem:shutting-down"
	ProblemTooManyRequests      = "urn:bff:problem:too-many-requests"
)

func newProblem(status int, typ, detail string) *Problem {
	return &Problem{Type: typ, Title: http.StatusText(status), Status: status, Detail: detail}
}

// WriteProblem sends a problem+json response, for handlers outside the
// front (the admin listener) that answer in the same way.
func WriteProblem(w http.ResponseWriter, r *http.Request, status int, typ, detail string) {
	writeProblem(w, r, newProblem(status, typ, detail))
}

// writeProblem sends p as application/problem+json.
func writeProblem(w http.ResponseWriter, r *http.Request, p *Problem) {
	p.Instance = r.URL.EscapedPath()
	p.RequestID = requestIDOf(r)
	body, err := json.Marshal(p)
	if err != nil { // cannot happen for this struct; keep the client informed anyway
		body = []byte(`{"type":"` + ProblemInternal + `","title":"Internal Server Error","status":500}`)
	}
	h := w.Header()
	h["Content-Type"] = problemJSON
	h["Cache-Control"] = noStore
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	h["X-Content-Type-Options"] = nosniff
	if id, ok := r.Header["X-Request-Id"]; ok {
		h["X-Request-Id"] = id
	}
	w.WriteHeader(p.Status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// problemFor is the one place that maps an error to a status and problem.
func problemFor(view string, err error) *Problem {
	var (
		pe  *aggregate.ParamError
		ce  *aggregate.CallError
		ape *aggregate.PanicError
		cpe *cache.PanicError
	)
	switch {
	case errors.Is(err, errOverloaded):
		return newProblem(http.StatusServiceUnavailable, ProblemOverloaded, "too many requests in progress; try again shortly")
	case errors.As(err, new(*aggregate.BodyError)):
		var be *aggregate.BodyError
		errors.As(err, &be)
		p := newProblem(http.StatusBadRequest, ProblemInvalidBody, "the body "+be.Msg)
		if be.Pointer != "" {
			p.Detail = "the body's " + be.Pointer + ": " + be.Msg
		}
		p.Pointer, p.View = be.Pointer, view
		return p
	case errors.As(err, &pe) && pe.Query && pe.Param == "":
		p := newProblem(http.StatusBadRequest, ProblemInvalidParameter, "the query string is not well-formed")
		p.View = view
		return p
	case errors.As(err, &pe) && pe.Query:
		p := newProblem(http.StatusBadRequest, ProblemInvalidParameter, fmt.Sprintf("query parameter %q %s", pe.Param, pe.Reason))
		p.View = view
		return p
	case errors.As(err, &pe):
		p := newProblem(http.StatusBadRequest, ProblemInvalidParameter,
			fmt.Sprintf("path parameter %q does not have the expected format", pe.Param))
		p.View = view
		return p
	case errors.As(err, &ape), errors.As(err, &cpe):
		p := newProblem(http.StatusInternalServerError, ProblemInternal, "the view failed unexpectedly")
		p.View = view
		return p
	case errors.As(err, &ce):
		// It could not run: the call it needed is the one that failed, or
		// the one that call needed, down the chain.
		var de *aggregate.DependencyError
		for inner := error(ce); errors.As(inner, &de) && de.Upstream != ""; inner = de.Err {
			named := *ce
			named.Call, named.Upstream = de.Call, de.Upstream
			ce = &named
		}
		var re *aggregate.ReferenceError
		if errors.As(err, &re) && re.Upstream != "" {
			// The call never ran: the answer it needed was incomplete.
			p := newProblem(http.StatusBadGateway, ProblemUpstreamError,
				fmt.Sprintf("upstream %q answered without %s, which call %q needs", re.Upstream, re.Path, ce.Call))
			p.View, p.Upstream = view, re.Upstream
			return p
		}
		p := upstreamProblem(ce, err)
		p.View, p.Upstream = view, ce.Upstream
		return p
	case errors.Is(err, context.DeadlineExceeded):
		p := newProblem(http.StatusGatewayTimeout, ProblemUpstreamTimeout, "the view did not finish in time")
		p.View = view
		return p
	}
	p := newProblem(http.StatusInternalServerError, ProblemInternal, "the view failed unexpectedly")
	p.View = view
	return p
}

// staleReason names, for the partial header, why a stale copy stands in.
func staleReason(err error) string {
	var ue *upstream.Error
	if errors.As(err, &ue) {
		switch ue.Kind {
		case upstream.KindTimeout:
			return "timeout"
		case upstream.KindBreakerOpen:
			return "breaker-open"
		case upstream.KindBulkheadFull:
			return "overloaded"
		}
		return "error"
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	if errors.Is(err, errOverloaded) {
		return "overloaded"
	}
	return "error"
}

func upstreamProblem(ce *aggregate.CallError, err error) *Problem {
	var ue *upstream.Error
	if errors.As(err, &ue) {
		switch ue.Kind {
		case upstream.KindBreakerOpen:
			return newProblem(http.StatusServiceUnavailable, ProblemUpstreamUnavailable,
				fmt.Sprintf("upstream %q is unavailable (circuit breaker open)", ce.Upstream))
		case upstream.KindBulkheadFull:
			return newProblem(http.StatusServiceUnavailable, ProblemUpstreamUnavailable,
				fmt.Sprintf("upstream %q is unavailable (too many calls in flight)", ce.Upstream))
		case upstream.KindTimeout:
			return newProblem(http.StatusGatewayTimeout, ProblemUpstreamTimeout,
				fmt.Sprintf("upstream %q did not answer in time", ce.Upstream))
		case upstream.KindStatus:
			if ue.Status == http.StatusNotFound {
				return newProblem(http.StatusNotFound, ProblemNotFound,
					fmt.Sprintf("upstream %q has no such resource", ce.Upstream))
			}
		}
	} else if errors.Is(err, context.DeadlineExceeded) {
		return newProblem(http.StatusGatewayTimeout, ProblemUpstreamTimeout,
			fmt.Sprintf("upstream %q did not answer in time", ce.Upstream))
	}
	return newProblem(http.StatusBadGateway, ProblemUpstreamError,
		fmt.Sprintf("upstream %q failed", ce.Upstream))
}

var (
	problemJSON = []string{"application/problem+json"}
	noStore     = []string{"no-store"}
	nosniff     = []string{"nosniff"}
)
