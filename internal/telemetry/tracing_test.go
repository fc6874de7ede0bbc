package telemetry_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bffproxy/bff/internal/demo"
	"github.com/bffproxy/bff/internal/telemetry"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// received keeps the traceparent each upstream request arrived with.
type received struct {
	mu      sync.Mutex
	parents map[string][]string
}

func (rc *received) wrap(name string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc.mu.Lock()
		rc.parents[name] = append(rc.parents[name], r.Header.Get("Traceparent"))
		rc.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

// A request continues the caller's trace: one server span, one client span
// per upstream attempt (a retried call shows two), each upstream receiving
// the traceparent of its own attempt's span.
func TestTraceHasServerSpanAndOneClientSpanPerAttempt(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tracer := telemetry.NewTracerWith(exp, telemetry.TracingConfig{})
	rc := &received{parents: map[string][]string{}}
	handlers := map[string]http.Handler{}
	for _, name := range demo.Names() {
		h, _ := demo.Handler(name)
		handlers[name] = rc.wrap(name, h)
	}
	var recsCalls atomic.Int32
	recs := handlers["recs"]
	handlers["recs"] = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if recsCalls.Add(1) == 1 { // the first attempt fails, the retry succeeds
			rc.wrap("recs", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				http.Error(w, "busy", http.StatusServiceUnavailable)
			})).ServeHTTP(w, r)
			return
		}
		recs.ServeHTTP(w, r)
	})
	s := newStack(t, tracer, handlers)

	const callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	const callerSpan = "00f067aa0ba902b7"
	w := s.get(t, "/web/home/7", "Traceparent", "00-"+callerTrace+"-"+callerSpan+"-01")
	if w.Code != http.StatusOK || w.Header().Get("Bff-Partial") != "" {
		t.Fatalf("status %d, partial %q; want a whole 200", w.Code, w.Header().Get("Bff-Partial"))
	}
	if err := tracer.Flush(context.Background()); err != nil { // Shutdown would empty the exporter
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tracer.Shutdown(context.Background()) })

	spans := exp.GetSpans()
	var server *tracetest.SpanStub
	clients := map[string][]tracetest.SpanStub{}
	for i, sp := range spans {
		switch sp.SpanKind {
		case trace.SpanKindServer:
			server = &spans[i]
		case trace.SpanKindClient:
			up, _, _ := strings.Cut(sp.Name, " ")
			clients[up] = append(clients[up], sp)
		}
	}
	if server == nil {
		t.Fatalf("no server span among %d spans", len(spans))
	}
	if server.Name != "GET /web/home/{id}" {
		t.Errorf("server span name %q; want the route, not the path", server.Name)
	}
	if got := server.SpanContext.TraceID().String(); got != callerTrace {
		t.Errorf("server span trace %s; want the caller's %s", got, callerTrace)
	}
	if got := server.Parent.SpanID().String(); got != callerSpan || !server.Parent.IsRemote() {
		t.Errorf("server span parent %s (remote %v); want the caller's span %s", got, server.Parent.IsRemote(), callerSpan)
	}
	for up, want := range map[string]int{"users": 1, "orders": 1, "recs": 2} {
		got := clients[up]
		if len(got) != want {
			t.Errorf("%s: %d client spans; want %d, one per attempt", up, len(got), want)
			continue
		}
		rc.mu.Lock()
		parents := rc.parents[up]
		rc.mu.Unlock()
		for i, sp := range got {
			if sp.Parent.SpanID() != server.SpanContext.SpanID() || sp.SpanContext.TraceID() != server.SpanContext.TraceID() {
				t.Errorf("%s attempt %d: parent %s in trace %s; want the server span %s", up, i+1,
					sp.Parent.SpanID(), sp.SpanContext.TraceID(), server.SpanContext.SpanID())
			}
			wantHeader := "00-" + callerTrace + "-" + sp.SpanContext.SpanID().String() + "-01"
			found := false
			for _, p := range parents {
				found = found || p == wantHeader
			}
			if !found {
				t.Errorf("%s attempt %d: no upstream request carried traceparent %s; got %q", up, i+1, wantHeader, parents)
			}
		}
	}
}

// A call the open breaker refuses makes no attempt, so no client span: it
// shows as an event on the request's span.
func TestBreakerRejectionIsASpanEvent(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tracer := telemetry.NewTracerWith(exp, telemetry.TracingConfig{})
	down := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	})
	s := newStack(t, tracer, map[string]http.Handler{"recs": down})
	for id := range 3 { // 3 + 2 failed attempts open the breaker; the third call is refused
		s.get(t, "/mobile/home/"+string(rune('1'+id)))
	}
	if err := tracer.Flush(context.Background()); err != nil { // Shutdown would empty the exporter
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tracer.Shutdown(context.Background()) })
	events := 0
	for _, sp := range exp.GetSpans() {
		for _, ev := range sp.Events {
			if ev.Name == "circuit breaker open" && sp.SpanKind == trace.SpanKindServer {
				events++
			}
		}
	}
	if events != 1 {
		t.Errorf("%d breaker-open events on server spans; want 1", events)
	}
}

// Without tracing, nothing wraps the handler or the transports.
func TestTracingOffIsNil(t *testing.T) {
	tr, err := telemetry.NewTracer(context.Background(), telemetry.TracingConfig{})
	if err != nil || tr != nil {
		t.Fatalf("NewTracer(off) = %v, %v; want nil, nil", tr, err)
	}
	if tr.Transport("users") != nil {
		t.Error("tracing off still wraps upstream transports")
	}
	h := http.NotFoundHandler()
	if got := tr.Handler(h); got == nil {
		t.Error("Handler returned nil")
	}
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Error(err)
	}
	_, err = telemetry.NewTracer(context.Background(), telemetry.TracingConfig{Endpoint: "ftp://x"})
	if err == nil {
		t.Error("an ftp:// endpoint was accepted")
	}
}

// With an OTLP/HTTP endpoint configured, spans reach the collector.
func TestSpansReachAnOTLPHTTPCollector(t *testing.T) {
	got := make(chan string, 16)
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if len(body) > 0 {
			got <- r.Method + " " + r.URL.Path + " " + r.Header.Get("Content-Type")
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer collector.Close()
	tracer, err := telemetry.NewTracer(context.Background(), telemetry.TracingConfig{Endpoint: collector.URL})
	if err != nil {
		t.Fatal(err)
	}
	s := newStack(t, tracer, nil)
	s.get(t, "/mobile/home/7")
	if err := tracer.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case req := <-got:
		if req != "POST /v1/traces application/x-protobuf" {
			t.Errorf("collector got %q; want an OTLP/HTTP export", req)
		}
	default:
		t.Fatal("the collector received no spans")
	}
	for _, endpoint := range []string{"grpc://127.0.0.1:4317", "https://collector.example:4318/custom/v1/traces"} {
		tr, err := telemetry.NewTracer(context.Background(), telemetry.TracingConfig{Endpoint: endpoint})
		if err != nil || tr == nil {
			t.Errorf("NewTracer(%s) = %v, %v", endpoint, tr, err)
			continue
		}
		// Nothing was recorded, so nothing waits for a collector that is not there.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := tr.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown(%s): %v", endpoint, err)
		}
		cancel()
	}
}
