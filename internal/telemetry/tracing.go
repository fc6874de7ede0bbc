package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// TracingConfig turns tracing on. The zero value leaves it off.
type TracingConfig struct {
	// Endpoint is the OTLP collector: "http://127.0.0.1:4318" for OTLP over
	// HTTP, "grpc://127.0.0.1:4317" for gRPC (https:// and grpcs:// use TLS).
	// Empty means tracing is off.
	Endpoint string
	// SampleRatio is the share of new traces recorded (0..1); a caller's
	// sampled flag is followed, so 0 records only the traces callers
	// sampled. Nil means 1.
	SampleRatio *float64
	// ServiceName names this process in traces. Empty means "bff".
	ServiceName string
}

// Tracer holds the tracer provider; a nil *Tracer means tracing is off and
// every method is a no-op.
type Tracer struct {
	tp   *sdktrace.TracerProvider
	prop propagation.TextMapPropagator
}

// Ratio is the share of new traces recorded: SampleRatio within 0..1, or 1.
func (c TracingConfig) Ratio() float64 {
	if c.SampleRatio == nil {
		return 1
	}
	return min(max(*c.SampleRatio, 0), 1)
}

// NewTracer builds an exporter for cfg, or returns nil when tracing is off.
func NewTracer(ctx context.Context, cfg TracingConfig) (*Tracer, error) {
	if cfg.Endpoint == "" {
		return nil, nil
	}
	exp, err := newExporter(ctx, cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	return NewTracerWith(exp, cfg), nil
}

// NewTracerWith traces into exp (tests use an in-memory exporter).
func NewTracerWith(exp sdktrace.SpanExporter, cfg TracingConfig) *Tracer {
	ratio := cfg.Ratio()
	name := cfg.ServiceName
	if name == "" {
		name = "bff"
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", name))),
	)
	return &Tracer{
		tp: tp,
		// Trace context only: a caller's Baggage (tenant=…, role=…) would
		// otherwise reach every upstream, past the header allowlist.
		prop: propagation.TraceContext{},
	}
}

// CheckEndpoint says what is wrong with a tracing endpoint, before any
// exporter is made (bff check); nil for "", tracing off.
func CheckEndpoint(endpoint string) error {
	if endpoint == "" {
		return nil
	}
	_, _, err := splitEndpoint(endpoint)
	return err
}

func splitEndpoint(endpoint string) (scheme, hostPath string, err error) {
	scheme, hostPath, ok := strings.Cut(endpoint, "://")
	switch {
	case !ok || hostPath == "":
		return "", "", fmt.Errorf("tracing endpoint %q: want http(s)://host:port or grpc(s)://host:port", endpoint)
	case scheme != "http" && scheme != "https" && scheme != "grpc" && scheme != "grpcs":
		return "", "", fmt.Errorf("tracing endpoint %q: scheme must be http, https, grpc or grpcs", endpoint)
	}
	return scheme, hostPath, nil
}

func newExporter(ctx context.Context, endpoint string) (sdktrace.SpanExporter, error) {
	scheme, hostPath, err := splitEndpoint(endpoint)
	if err != nil {
		return nil, err
	}
	host, path, _ := strings.Cut(hostPath, "/")
	switch scheme {
	case "http", "https":
		opts := []otlptracehttp.Option{otlptracehttp.WithEndpoint(host)}
		if scheme == "http" {
			opts = append(opts, otlptracehttp.WithInsecure())
		}
		if path != "" {
			opts = append(opts, otlptracehttp.WithURLPath("/"+path))
		}
		return otlptracehttp.New(ctx, opts...)
	default: // grpc, grpcs
		opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(host)}
		if scheme == "grpc" {
			opts = append(opts, otlptracegrpc.WithInsecure())
		}
		return otlptracegrpc.New(ctx, opts...)
	}
}

// Handler starts a server span per request, continuing a caller's trace
// from its traceparent. The front renames the span after the view's route.
func (t *Tracer) Handler(h http.Handler) http.Handler {
	if t == nil {
		return h
	}
	return otelhttp.NewHandler(h, "bff",
		otelhttp.WithTracerProvider(t.tp),
		otelhttp.WithPropagators(t.prop),
		otelhttp.WithMeterProvider(noMeters),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method }),
	)
}

// Transport makes a client span per upstream attempt, so retries show as
// separate spans, and sends the trace context to the upstream.
func (t *Tracer) Transport(upstreamName string) func(http.RoundTripper) http.RoundTripper {
	if t == nil {
		return nil
	}
	return func(next http.RoundTripper) http.RoundTripper {
		return otelhttp.NewTransport(next,
			otelhttp.WithTracerProvider(t.tp),
			otelhttp.WithPropagators(t.prop),
			otelhttp.WithMeterProvider(noMeters),
			otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
				return upstreamName + " " + r.Method
			}),
			otelhttp.WithSpanOptions(trace.WithAttributes(attribute.String("bff.upstream", upstreamName))),
		)
	}
}

// Shutdown flushes spans not yet exported, within ctx.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	if err := t.tp.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("tracing: flush spans: %w", err)
	}
	return nil
}

// Flush exports the spans ended so far.
func (t *Tracer) Flush(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.tp.ForceFlush(ctx)
}

// breakerRejected marks, on the request's span, an upstream call the
// breaker refused: no attempt, so no client span of its own.
func breakerRejected(ctx context.Context, upstreamName string) {
	span := trace.SpanFromContext(ctx)
	if span.IsRecording() {
		span.AddEvent("circuit breaker open", trace.WithAttributes(attribute.String("bff.upstream", upstreamName)),
			trace.WithTimestamp(time.Now()))
	}
}

// noMeters keeps otelhttp's own metrics off: Prometheus has them, and the
// global meter provider is left alone, as is the global tracer provider
// (the BFF passes its own everywhere).
var noMeters = noop.NewMeterProvider()
