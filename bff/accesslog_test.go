package bff

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestAccessLogLines(t *testing.T) {
	at := time.Date(2026, 11, 26, 19, 0, 0, 123456789, time.UTC)
	r := httptest.NewRequest("GET", "/web/home/7", nil)
	x := &exchange{status: 200, bytes: 2697}
	x.info = requestInfo{id: "abc-1", client: "web", view: "web.home", cache: CacheHit, partial: "recommendations;reason=timeout",
		upstreams: "user:users:ok:1.2ms:1 recommendations:recs:timeout:250.0ms:2",
		err:       errors.New(`upstream "users" said <no> & "bye"` + "\n\xff")}

	var buf bytes.Buffer
	(&accessLog{w: &buf, format: AccessLogJSON}).write(at, r, x, 200, 1500*time.Microsecond)
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil || !strings.HasSuffix(buf.String(), "}\n") {
		t.Fatalf("not one JSON line: %q: %v", buf.String(), err)
	}
	want := map[string]any{"time": at.Format(time.RFC3339Nano), "level": "INFO", "msg": "request", "request_id": "abc-1",
		"method": "GET", "path": "/web/home/7", "status": 200.0, "bytes": 2697.0, "duration_us": 1500.0, "client": "web",
		"view": "web.home", "cache": "HIT", "partial": "recommendations;reason=timeout",
		"upstreams": "user:users:ok:1.2ms:1 recommendations:recs:timeout:250.0ms:2",
		"error":     "upstream \"users\" said <no> & \"bye\"\n\ufffd"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %#v, want %#v", k, got[k], v)
		}
	}

	// The text format reads like slog.TextHandler's.
	buf.Reset()
	x.status, x.info.err = 0, nil
	(&accessLog{w: &buf, format: AccessLogText}).write(at, r, x, statusClientGone, time.Millisecond)
	line := buf.String()
	for _, part := range []string{"time=2026-11-26T19:00:00.123Z", " level=INFO", " msg=request", " path=/web/home/7",
		" status=499", ` partial="recommendations;reason=timeout"`, " duration_us=1000"} {
		if !strings.Contains(line, part) {
			t.Errorf("text line %q lacks %q", line, part)
		}
	}
	var slogLine bytes.Buffer
	slog.New(slog.NewTextHandler(&slogLine, nil)).Info("request", "partial", "recommendations;reason=timeout")
	if !strings.Contains(slogLine.String(), ` partial="recommendations;reason=timeout"`) {
		t.Errorf("slog quotes differently: %s", slogLine.String())
	}
}

// valueOnly has slog write a record's attributes without its time, level
// and message.
func valueOnly(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey || a.Key == slog.MessageKey) {
		return slog.Attr{}
	}
	return a
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", `q"\`, "\x00\x1f\x7f", "\xff\xfe", "é✓", "<>&", "a\u2028b\u2029"} {
		f.Add(s)
	}
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{ReplaceAttr: valueOnly}))
	f.Fuzz(func(t *testing.T, s string) {
		out := appendJSONString(nil, s)
		buf.Reset()
		log.Info("", "k", s)
		if want := `{"k":` + string(out) + "}\n"; buf.String() != want {
			t.Fatalf("%q: ours %s, slog %s", s, out, buf.String())
		}
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("%q -> %s: %v", s, out, err)
		}
	})
}

// FuzzStampCache checks the cached stamp against time.AppendFormat, with one
// cache across calls so that hits, new seconds and new zones all occur.
func FuzzStampCache(f *testing.F) {
	f.Add(int64(1795374000), int64(123456789), uint8(0))
	f.Add(int64(1795374000), int64(0), uint8(1))
	f.Add(int64(1795374001), int64(100000000), uint8(2))
	f.Add(int64(-62135596800), int64(999999999), uint8(0))
	f.Add(int64(1795374000), int64(1), uint8(3))
	zones := []*time.Location{time.UTC, time.FixedZone("IST", 5*3600+1800), time.FixedZone("EDT", -4*3600), time.Local}
	var c stampCache
	f.Fuzz(func(t *testing.T, sec, ns int64, zone uint8) {
		at := time.Unix(sec, ns%1e9).In(zones[int(zone)%len(zones)])
		for _, millis := range []bool{false, true} {
			got := string(c.append(nil, at, millis))
			want := at.Format(time.RFC3339Nano)
			if millis {
				want = at.Format("2006-01-02T15:04:05.000Z07:00")
			}
			if got != want {
				t.Fatalf("%v (millis %v): got %s, want %s", at, millis, got, want)
			}
		}
	})
}

func BenchmarkAccessLog(b *testing.B) {
	r := httptest.NewRequest("GET", "/web/home/7", nil)
	x := &exchange{status: 200, bytes: 2718}
	x.info = requestInfo{id: "6316b3eb3783-64y0", client: "web", view: "web.home", cache: CacheHit}
	a := &accessLog{w: io.Discard, format: AccessLogJSON}
	at := time.Now()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		a.write(at.Add(time.Duration(i)*time.Microsecond), r, x, 200, 9*time.Microsecond)
	}
}

// An access line is the line slog's handlers would write for the same
// record, in both formats, whichever way each value is written.
func TestAccessLogMatchesSlog(t *testing.T) {
	at := time.Date(2026, 11, 26, 19, 0, 0, 120000000, time.UTC)
	r := httptest.NewRequest("PATCH", "/web/orders/a%20b", nil)
	x := &exchange{status: 502, bytes: 310}
	x.info = requestInfo{id: "783692818935-12", client: "mobile-app", view: `web "odd" view=1`, cache: CacheCoalesced,
		upstreams: "order:orders:error:3.1ms:3", err: errors.New("orders: 503 <twice>")}
	attrs := []any{"request_id", x.info.id, "method", "PATCH", "path", "/web/orders/a%20b", "status", 502, "bytes", 310,
		"duration_us", int64(2500), "client", x.info.client, "view", x.info.view, "cache", "COALESCED",
		"upstreams", x.info.upstreams, "error", "orders: 503 <twice>"}
	noTime := func(groups []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey && len(groups) == 0 {
			return slog.String(slog.TimeKey, at.Format(time.RFC3339Nano))
		}
		return a
	}
	for _, format := range []AccessLogFormat{AccessLogJSON, AccessLogText} {
		var ours, theirs bytes.Buffer
		(&accessLog{w: &ours, format: format}).write(at, r, x, 502, 2500*time.Microsecond)
		var h slog.Handler = slog.NewJSONHandler(&theirs, &slog.HandlerOptions{ReplaceAttr: noTime})
		if format == AccessLogText {
			h = slog.NewTextHandler(&theirs, &slog.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey && len(groups) == 0 {
					return slog.String(slog.TimeKey, at.Format("2006-01-02T15:04:05.000Z07:00"))
				}
				return a
			}})
		}
		slog.New(h).Warn("request", attrs...)
		if ours.String() != theirs.String() {
			t.Errorf("format %d:\n ours: %s slog: %s", format, ours.String(), theirs.String())
		}
	}
}

// The text format quotes a value exactly when slog's text handler does:
// a view name may hold a no-break or zero-width space, which a reader of
// the line must see inside quotes.
func TestAccessTextQuotesAsSlog(t *testing.T) {
	at := time.Date(2026, 11, 26, 19, 0, 0, 120000000, time.UTC)
	for _, view := range []string{"web.home\u00a0v2", "web.home\u200b", "web.home\u2028x", "web\x7fhome"} {
		r := httptest.NewRequest("GET", "/web/home/7", nil)
		x := &exchange{status: 200, bytes: 10}
		x.info = requestInfo{id: "id-1", client: "web", view: view, cache: CacheHit}
		var ours, theirs bytes.Buffer
		(&accessLog{w: &ours, format: AccessLogText}).write(at, r, x, 200, 9*time.Microsecond)
		h := slog.NewTextHandler(&theirs, &slog.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.String(slog.TimeKey, at.Format("2006-01-02T15:04:05.000Z07:00"))
			}
			return a
		}})
		slog.New(h).Info("request", "request_id", "id-1", "method", "GET", "path", "/web/home/7", "status", 200, "bytes", 10,
			"duration_us", int64(9), "client", "web", "view", view, "cache", "HIT")
		if ours.String() != theirs.String() {
			t.Errorf("view %q:\n ours: %s slog: %s", view, ours.String(), theirs.String())
		}
	}
}

func FuzzAppendTextValue(f *testing.F) {
	for _, s := range []string{"", "plain", "a b", "a=b", `q"`, `back\slash`, "\x7f", "\x00", "\xff", "nb\u00a0sp", "zw\u200b", "\u2028", "é✓"} {
		f.Add(s)
	}
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: valueOnly}))
	f.Fuzz(func(t *testing.T, s string) {
		buf.Reset()
		log.Info("", "k", s)
		if want := "k=" + string(appendTextValue(nil, s)) + "\n"; buf.String() != want {
			t.Fatalf("%q: ours %s, slog %s", s, want, buf.String())
		}
	})
}
