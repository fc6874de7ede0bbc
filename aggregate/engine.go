package aggregate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/bffproxy/bff/upstream"
	"github.com/tidwall/gjson"
	"golang.org/x/sync/errgroup"
)

// Doer is what the engine needs from an upstream client.
type Doer interface {
	Do(ctx context.Context, r *upstream.Request) (*upstream.Response, error)
}

// Engine runs plans against a fixed set of upstreams.
type Engine struct {
	upstreams map[string]Doer
	sections  SectionStore
}

// SectionStore keeps the last good answer of optional calls that declare
// StaleIfError, so it can stand in when the call fails.
type SectionStore interface {
	// Get returns a kept answer no older than maxAge, and its age.
	Get(key string, maxAge time.Duration) (body []byte, age time.Duration, ok bool)
	// Set keeps an answer of view for at most keep. The key begins with
	// the request's Input.Place; epoch is its Input.Epoch.
	Set(key, view string, epoch uint64, body []byte, keep time.Duration)
}

// KeepSections makes the engine keep and use last good answers in s.
// Without it, StaleIfError on calls has no effect.
func (e *Engine) KeepSections(s SectionStore) { e.sections = s }

// NewEngine returns an engine calling the named upstreams.
func NewEngine(upstreams map[string]Doer) *Engine {
	return &Engine{upstreams: upstreams}
}

// Catalog describes the engine's upstreams and the given shapers, for Compile.
func (e *Engine) Catalog(shapers map[string]ShapeFunc) Catalog {
	return Catalog{
		Upstream: func(name string) bool { _, ok := e.upstreams[name]; return ok },
		Shapers:  shapers,
	}
}

// Input is what one request gives a plan.
type Input struct {
	// Params are the path parameter values in the order of Plan.Params,
	// as returned by Plan.Bind.
	Params []string
	// Header is the client request's header; upstreams forward only their
	// allowlist of it.
	Header http.Header
	// Body is a mutation's request body, validated, for calls with Body
	// "request".
	Body []byte
	// Variant selects the shape: 0 is the view's own, i > 0 its Variants[i-1]
	// (see Plan.Variant).
	Variant int
	// Place is where the request's answer is cached (its canonical path).
	// Kept sections are stored under it, so a purge of the path reaches
	// them as it reaches the answer.
	Place string
	// Epoch is handed to SectionStore.Set: the store's purge epoch from
	// before the run, so a purge while the run's calls are answered covers
	// the answers it keeps.
	Epoch uint64
}

// Result is a view's response body and how it was made.
type Result struct {
	Body []byte
	// Missing lists the optional calls that failed, in definition order.
	Missing []Missing
	// Calls reports every call in definition order.
	Calls []CallReport
	// MissingFields names the fields of the response that their upstream
	// did not send although its call succeeded ("orders[].total_cents"),
	// fields with a default or omit aside: the upstream may have changed.
	MissingFields []string
}

// Missing is an optional part left out of a response.
type Missing struct {
	Call   string
	Reason string // timeout, breaker-open, overloaded, error, dependency, canceled, stale
	Status int    // the upstream's status, for reason "error", when it answered
	// Age is how old a stand-in answer is, for reason "stale".
	Age time.Duration
}

// CallReport says how one call went.
type CallReport struct {
	Name     string
	Upstream string
	Duration time.Duration
	Attempts int
	// Outcome is "ok", "skipped" (nothing to ask for) or a Missing reason.
	Outcome string
}

// CallError is a required call's failure: the view fails.
type CallError struct {
	View     string
	Call     string
	Upstream string
	Err      error
}

func (e *CallError) Error() string {
	return fmt.Sprintf("view %s: call %s (upstream %s): %v", e.View, e.Call, e.Upstream, e.Err)
}

func (e *CallError) Unwrap() error { return e.Err }

// named says, in a ReferenceError, which call's answer lacked the value.
func (p *Plan) named(err error) error {
	var re *ReferenceError
	if errors.As(err, &re) && re.Call == "" {
		re.Call, re.Upstream = p.calls[re.call].Name, p.calls[re.call].Upstream
	}
	return err
}

// DependencyError: a call could not run because a call it needs failed.
// It wraps that failure, so a view that fails for it answers with the
// status the root cause calls for (504 for a timeout, 503 for an open
// breaker) and names the upstream that failed.
type DependencyError struct {
	Call, Upstream string
	Err            error
}

func (e *DependencyError) Error() string {
	return fmt.Sprintf("dependency %s (upstream %s) failed: %v", e.Call, e.Upstream, e.Err)
}

func (e *DependencyError) Unwrap() error { return e.Err }

// PanicError is a recovered panic in a call or a shaping function.
type PanicError struct {
	View  string
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("view %s: panic: %v", e.View, e.Value) }

// newPanicError keeps the panic's value as text: the value may point into
// an upstream body that is about to be recycled.
func newPanicError(view string, r any) *PanicError {
	return &PanicError{View: view, Value: fmt.Sprint(r), Stack: debug.Stack()}
}

func releaseBodies(slots []slot) {
	for i := range slots {
		if slots[i].resp != nil {
			slots[i].resp.Release()
		}
	}
}

// slot is one call's outcome; only that call's goroutine writes it, and
// others read it after done is closed or after the group is finished.
type slot struct {
	done     chan struct{}
	present  bool
	skipped  bool
	err      error
	attempts int
	dur      time.Duration
	body     string // the upstream body, valid until released
	resp     *upstream.Response
	partial  error // a fan-out element that failed (the others are present)
	// standIn is the failure a kept answer (of this age) stands in for.
	standIn    error
	standInAge time.Duration
}

// Run executes p for one request. The error is a *CallError when a required
// call failed, a *PanicError when code panicked, or the context's error;
// but for a panic, the Result then holds the calls' reports (Calls) and
// nothing else, for logs.
func (e *Engine) Run(ctx context.Context, p *Plan, in Input) (res *Result, err error) {
	slots := make([]slot, len(p.calls))
	// Upstream bodies are recycled once the response is shaped (it is a
	// copy). Deferred first, so it runs after the recover below has copied
	// a panic's value. A Go shaping function might keep strings that point
	// into the bodies, so its views leave them to the garbage collector.
	if p.shapeFunc == nil {
		defer releaseBodies(slots)
	}
	defer func() {
		if r := recover(); r != nil {
			res, err = nil, newPanicError(p.view.Name, r)
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	// Calls end early enough to leave time to shape and write the response.
	callDeadline := deadline.Add(-min(max(p.timeout/20, 2*time.Millisecond), 50*time.Millisecond))

	for i := range p.calls {
		if p.calls[i].dependent {
			slots[i].done = make(chan struct{})
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	last := len(p.calls) - 1
	for i := range last {
		g.Go(func() error { return e.runCall(gctx, p, i, slots, in, callDeadline) })
	}
	// The last call runs on this goroutine, which would otherwise only wait:
	// one goroutine (and its stack growth) less per request. Every call it
	// could wait for has been started above. Its error goes through the
	// group like the others', so it cancels its siblings and the first error
	// is the one returned.
	if last >= 0 {
		if err := e.runCall(gctx, p, last, slots, in, callDeadline); err != nil {
			g.Go(func() error { return err })
		}
	}
	err = g.Wait()
	// Every call has finished, each with its answer or its failure: the
	// response is shaped from what there is, even if the deadline passed
	// while the last optional call was being cut off.
	res = &Result{Calls: make([]CallReport, len(p.calls))}
	for i := range p.calls {
		c, s := &p.calls[i], &slots[i]
		rep := CallReport{Name: c.Name, Upstream: c.Upstream, Duration: s.dur, Attempts: s.attempts, Outcome: "ok"}
		switch {
		case s.skipped:
			rep.Outcome = "skipped"
		case s.standIn != nil:
			rep.Outcome = "stale " + missingOf(c.Name, s.standIn).Reason
			res.Missing = append(res.Missing, Missing{Call: c.Name, Reason: "stale", Age: s.standInAge})
		case s.err != nil:
			m := missingOf(c.Name, s.err)
			rep.Outcome = m.Reason
			res.Missing = append(res.Missing, m)
		case s.partial != nil:
			m := missingOf(c.Name, s.partial)
			rep.Outcome = "partial " + m.Reason
			res.Missing = append(res.Missing, m)
		}
		res.Calls[i] = rep
	}
	if err != nil {
		return &Result{Calls: res.Calls}, err
	}
	if p.shapeFunc != nil {
		body, err := p.shapeFunc(&Sources{plan: p, slots: slots, params: in.Params})
		if err != nil {
			return &Result{Calls: res.Calls}, fmt.Errorf("view %s: shape function %s: %w", p.view.Name, p.view.ShapeFunc, err)
		}
		res.Body = validUTF8(body)
		return res, nil
	}
	shape := p.shape
	if in.Variant > 0 && in.Variant <= len(p.variants) {
		shape = p.variants[in.Variant-1]
	}
	run := shapeRun{params: in.Params, ints: p.intParams}
	if len(p.fieldNames) <= 64 {
		var inline [64]bool
		run.missed = inline[:len(p.fieldNames)]
	} else {
		run.missed = make([]bool, len(p.fieldNames))
	}
	res.Body = validUTF8(p.shapeBody(&run, shape, slots))
	for id, missed := range run.missed {
		if missed {
			res.MissingFields = append(res.MissingFields, p.fieldNames[id])
		}
	}
	return res, nil
}

func (e *Engine) runCall(ctx context.Context, p *Plan, i int, slots []slot, in Input, deadline time.Time) (err error) {
	c, s := &p.calls[i], &slots[i]
	defer func() {
		if r := recover(); r != nil {
			s.err = newPanicError(p.view.Name, r)
			err = s.err
		}
		if s.done != nil {
			close(s.done)
		}
	}()
	fail := func(cause error) error {
		cause = p.named(cause)
		if c.Optional && !errors.As(cause, new(*PanicError)) {
			if e.standIn(p, c, s, in, cause) {
				return nil
			}
			s.err = cause
			return nil // recorded in the slot; siblings carry on
		}
		s.err = cause
		return &CallError{View: p.view.Name, Call: c.Name, Upstream: c.Upstream, Err: cause}
	}
	if c.StaleIfError > 0 && e.sections != nil {
		defer func() {
			if err == nil && s.present && s.standIn == nil && s.partial == nil {
				e.sections.Set(sectionKey(p, c, in), p.view.Name, in.Epoch, []byte(s.body), c.StaleIfError)
			}
		}()
	}

	for _, d := range c.deps {
		select {
		case <-slots[d].done:
		case <-ctx.Done():
			return fail(ctx.Err())
		}
		switch dep := &slots[d]; {
		case dep.skipped && slices.Contains(c.reads, d):
			s.skipped = true // what it would ask for is not there
			return nil
		case dep.skipped: // only ordered after it (depends_on): it has finished
		case !dep.present && !p.calls[d].Optional:
			// The dependency's own error fails the view. One from here could
			// reach the group first and name the wrong upstream and status.
			s.err = &DependencyError{Call: p.calls[d].Name, Upstream: p.calls[d].Upstream, Err: dep.err}
			return nil
		case !dep.present:
			return fail(&DependencyError{Call: p.calls[d].Name, Upstream: p.calls[d].Upstream, Err: dep.err})
		}
	}

	var bodies []string // only the templates of dependent calls read it
	if len(c.deps) > 0 {
		bodies = make([]string, len(slots))
		for _, d := range c.deps {
			bodies[d] = slots[d].body
		}
	}
	if c.forEach != nil {
		return e.fanOut(ctx, p, c, s, bodies, in, deadline, fail)
	}
	path, ok, err := c.path.fill(in.Params, bodies, "", escapeSegment)
	if err != nil {
		return fail(err)
	}
	query, ok2, err := c.query.fill(in.Params, bodies, "", escapeQueryValue)
	if err != nil {
		return fail(err)
	}
	if !ok || !ok2 {
		s.skipped = true // nothing to ask for
		return nil
	}

	start := time.Now()
	req := &upstream.Request{
		Method:   c.method,
		Path:     path,
		RawQuery: query,
		Header:   in.Header,
		Timeout:  c.Timeout,
		Deadline: deadline,
	}
	if c.Body == "request" {
		req.Body = in.Body
	}
	resp, err := e.upstreams[c.Upstream].Do(ctx, req)
	s.dur = time.Since(start)
	if err != nil {
		var ue *upstream.Error
		if errors.As(err, &ue) {
			s.attempts = ue.Attempts
		}
		return fail(err)
	}
	s.attempts = resp.Attempts
	s.resp = resp
	s.body = bytesToString(resp.Body)
	s.present = true
	return nil
}

// standIn fills a failed call's slot with its last good answer, if one is
// kept and young enough.
func (e *Engine) standIn(p *Plan, c *compiledCall, s *slot, in Input, cause error) bool {
	if c.StaleIfError <= 0 || e.sections == nil || errors.Is(cause, context.Canceled) || upstream.Refused(cause) {
		return false // canceled: nobody reads it; refused (a 404): an answer
	}
	body, age, ok := e.sections.Get(sectionKey(p, c, in), c.StaleIfError)
	if !ok {
		return false
	}
	s.body, s.present, s.standIn, s.standInAge = string(body), true, cause, age
	return true
}

// sectionKey names a call's answer for a view's parameters and language:
// what the call asks for follows from them.
func sectionKey(p *Plan, c *compiledCall, in Input) string {
	var b strings.Builder
	b.WriteString(in.Place)
	b.WriteByte(0) // as in a response's key: a purge of the path covers it
	b.WriteString(p.sectionPrefix)
	b.WriteString(c.Name)
	for _, v := range in.Params {
		b.WriteByte(0)
		b.WriteString(strconv.Itoa(len(v)))
		b.WriteByte(':')
		b.WriteString(v)
	}
	b.WriteByte(0)
	if lang := in.Header["Accept-Language"]; len(lang) == 1 {
		b.WriteString(lang[0])
	}
	return b.String()
}

// fanOut makes one request per distinct element of the list c.forEach
// names, at most c.Concurrency at a time, and puts the answers together as
// a JSON array in list order.
func (e *Engine) fanOut(ctx context.Context, p *Plan, c *compiledCall, s *slot, bodies []string,
	in Input, deadline time.Time, fail func(error) error) error {
	elems, state := refElements(lookup(bodies[c.forEach.call], c.forEach.path))
	switch state {
	case refAbsent:
		return fail(&ReferenceError{Path: c.forEach.path, call: c.forEach.call})
	case refEmpty:
		s.skipped = true
		return nil
	}
	if len(elems) > c.MaxEach {
		elems = elems[:c.MaxEach]
	}
	// The other placeholders are the same for every element: when one of
	// them has nothing to ask for, the whole call has nothing to ask for.
	for _, t := range []*template{&c.path, &c.query} {
		if ok, err := t.ready(bodies); err != nil {
			return fail(err)
		} else if !ok {
			s.skipped = true
			return nil
		}
	}
	answers := make([][]byte, len(elems))
	errs := make([]error, len(elems))
	var attempts atomic.Int64
	start := time.Now()
	// The call's timeout bounds the whole fan-out, not each request: the
	// elements queued behind the concurrency limit share it.
	if c.Timeout > 0 {
		deadline = earlier(deadline, start.Add(c.Timeout))
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.Concurrency)
	for k, each := range elems {
		g.Go(func() (err error) {
			defer func() {
				if r := recover(); r != nil {
					err = newPanicError(p.view.Name, r)
				}
			}()
			path, _, err := c.path.fill(in.Params, bodies, each, escapeSegment)
			if err == nil {
				var query string
				query, _, err = c.query.fill(in.Params, bodies, each, escapeQueryValue)
				if err == nil {
					var resp *upstream.Response
					resp, err = e.upstreams[c.Upstream].Do(gctx, &upstream.Request{
						Method: c.method, Path: path, RawQuery: query, Header: in.Header,
						Timeout: c.Timeout, Deadline: deadline,
					})
					if err == nil {
						attempts.Add(int64(resp.Attempts))
						answers[k] = []byte("null") // a 204: an element with nothing in it
						if len(resp.Body) > 0 {
							answers[k] = append([]byte(nil), resp.Body...)
						}
						resp.Release()
						return nil
					}
				}
			}
			var ue *upstream.Error
			if errors.As(err, &ue) {
				attempts.Add(int64(ue.Attempts))
			}
			errs[k] = err
			if c.Optional && !errors.As(err, new(*PanicError)) {
				return nil // this element is null; the others carry on
			}
			return err
		})
	}
	err := g.Wait()
	s.dur, s.attempts = time.Since(start), int(attempts.Load())
	if err != nil {
		return fail(err)
	}
	// Every element failed: the call has, and its last good answer may
	// stand in. With some elements there, they are fresher than any copy.
	if !slices.ContainsFunc(errs, func(err error) bool { return err == nil }) {
		cause := errs[0]
		if i := slices.IndexFunc(errs, upstream.Refused); i >= 0 {
			cause = errs[i] // an element that is gone is an answer: nothing stands in
		}
		if e.standIn(p, c, s, in, cause) {
			return nil
		}
	}
	var b strings.Builder
	b.WriteByte('[')
	for k, a := range answers {
		if k > 0 {
			b.WriteByte(',')
		}
		if errs[k] != nil {
			b.WriteString("null")
			if s.partial == nil {
				s.partial = errs[k]
			}
			continue
		}
		b.Write(a)
	}
	b.WriteByte(']')
	s.body = b.String()
	s.present = true
	return nil
}

// missingOf names why an optional call is missing.
func missingOf(call string, err error) Missing {
	m := Missing{Call: call, Reason: "error"}
	var ue *upstream.Error
	switch {
	case errors.As(err, new(*DependencyError)), errors.As(err, new(*ReferenceError)):
		m.Reason = "dependency" // not its own failure, whatever the cause
	case errors.As(err, &ue):
		switch ue.Kind {
		case upstream.KindTimeout:
			m.Reason = "timeout"
		case upstream.KindBreakerOpen:
			m.Reason = "breaker-open"
		case upstream.KindBulkheadFull:
			m.Reason = "overloaded"
		case upstream.KindCanceled:
			m.Reason = "canceled"
		case upstream.KindStatus:
			m.Status = ue.Status
		}
	case errors.Is(err, context.DeadlineExceeded):
		m.Reason = "timeout"
	case errors.Is(err, context.Canceled):
		m.Reason = "canceled"
	}
	return m
}

var shapeBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

func (p *Plan) shapeBody(run *shapeRun, shape []node, slots []slot) []byte {
	bodies := make([]string, len(slots))
	present := make([]bool, len(slots))
	for i := range slots {
		bodies[i], present[i] = slots[i].body, slots[i].present
	}
	bp := shapeBuffers.Get().(*[]byte)
	buf := run.appendShape((*bp)[:0], shape, bodies, present)
	body := make([]byte, len(buf))
	copy(body, buf)
	if cap(buf) <= 1<<20 {
		*bp = buf
		shapeBuffers.Put(bp)
	}
	return body
}

// bytesToString views an upstream body as a string without copying; the
// body is never modified after it is read.
func bytesToString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// ShapeFunc builds a response body from the calls' results where the
// declarative shape cannot say what is needed. It must return valid JSON.
type ShapeFunc func(s *Sources) ([]byte, error)

// Sources gives a ShapeFunc the calls' results and the request's parameters.
type Sources struct {
	plan   *Plan
	slots  []slot
	params []string
}

// Get returns the JSON result of the named call; false when the call failed,
// was skipped or does not exist.
func (s *Sources) Get(call string) (gjson.Result, bool) {
	for i := range s.plan.calls {
		if s.plan.calls[i].Name == call {
			return gjson.Parse(s.slots[i].body), s.slots[i].present
		}
	}
	return gjson.Result{}, false
}

// Param returns a path parameter's value.
func (s *Sources) Param(name string) string {
	for i, p := range s.plan.params {
		if p.name == name {
			return s.params[i]
		}
	}
	return ""
}

func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// validUTF8 replaces bytes that are not UTF-8 with U+FFFD, as encoding/json
// does: upstream JSON is checked for its structure, not its encoding, and a
// client's parser may refuse the whole body for one bad byte. Such bytes
// can only be inside strings, so the body stays JSON.
func validUTF8(body []byte) []byte {
	if utf8.Valid(body) {
		return body
	}
	return bytes.ToValidUTF8(body, []byte("\uFFFD"))
}
