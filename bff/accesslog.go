package bff

import (
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"
)

// AccessLogFormat is how access-log lines are written.
type AccessLogFormat int

const (
	// AccessLogJSON writes the line slog.JSONHandler would write.
	AccessLogJSON AccessLogFormat = iota
	// AccessLogText writes the line slog.TextHandler would write.
	AccessLogText
)

// accessLog writes one line per request, in the shape of the slog handlers,
// but formatted straight into a pooled buffer: at tens of thousands of
// requests a second, slog's generic handler cost a tenth of the CPU of a
// cache hit.
type accessLog struct {
	w            io.Writer
	format       AccessLogFormat
	failuresOnly bool // the log level is above INFO: WARN lines (5xx) only
	clock        stampCache
}

var lineBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// statusClientGone is logged when the client went away before anything was written.
const statusClientGone = 499

func (a *accessLog) write(now time.Time, r *http.Request, x *exchange, status int, d time.Duration) {
	level := "INFO"
	switch {
	case status >= 500:
		level = "WARN"
	case a.failuresOnly:
		return
	}
	bp := lineBuffers.Get().(*[]byte)
	l := line{b: (*bp)[:0], text: a.format == AccessLogText, clock: &a.clock}
	l.open(now, level)
	l.plain(fieldRequestID, x.info.id)
	l.str(fieldMethod, r.Method)
	l.str(fieldPath, r.URL.EscapedPath())
	l.int(fieldStatus, int64(status))
	l.int(fieldBytes, int64(x.bytes))
	l.int(fieldDuration, d.Microseconds())
	if x.info.client != "" {
		l.plain(fieldClient, x.info.client)
		l.str(fieldView, x.info.view)
	}
	if x.info.cache != CacheNone {
		l.plain(fieldCache, x.info.cache.String())
	}
	if x.info.partial != "" {
		l.str(fieldPartial, x.info.partial)
	}
	if x.info.upstreams != "" {
		l.str(fieldUpstreams, x.info.upstreams)
	}
	if x.info.err != nil {
		l.str(fieldError, x.info.err.Error())
	}
	l.close()
	_, _ = a.w.Write(l.b)
	if cap(l.b) <= 16<<10 {
		*bp = l.b
		lineBuffers.Put(bp)
	}
}

// line appends key/value pairs as JSON or as slog's text format.
type line struct {
	b    []byte
	text bool
	// clock, if set, formats the time from a cached second.
	clock *stampCache
}

// field is a key as each format writes it before its value.
type field struct{ json, text string }

func newField(key string) field { return field{json: `,"` + key + `":`, text: " " + key + "="} }

var (
	fieldRequestID = newField("request_id")
	fieldMethod    = newField("method")
	fieldPath      = newField("path")
	fieldStatus    = newField("status")
	fieldBytes     = newField("bytes")
	fieldDuration  = newField("duration_us")
	fieldClient    = newField("client")
	fieldView      = newField("view")
	fieldCache     = newField("cache")
	fieldPartial   = newField("partial")
	fieldUpstreams = newField("upstreams")
	fieldError     = newField("error")
)

// open starts an access line: the time, the level and the message,
// "request" (written whole: it needs no escaping).
func (l *line) open(now time.Time, level string) {
	if l.text {
		l.b = append(l.b, "time="...)
		l.b = l.clock.append(l.b, now, true)
		l.b = append(l.b, " level="...)
		l.b = append(l.b, level...)
		l.b = append(l.b, " msg=request"...)
		return
	}
	l.b = append(l.b, `{"time":"`...)
	l.b = l.clock.append(l.b, now, false)
	l.b = append(l.b, `","level":"`...)
	l.b = append(l.b, level...)
	l.b = append(l.b, `","msg":"request"`...)
}

func (l *line) key(f field) {
	if l.text {
		l.b = append(l.b, f.text...)
	} else {
		l.b = append(l.b, f.json...)
	}
}

func (l *line) str(f field, v string) {
	l.key(f)
	if l.text {
		l.b = appendTextValue(l.b, v)
	} else {
		l.b = appendJSONString(l.b, v)
	}
}

// plain writes a value that needs no quoting in the text format nor
// escaping in JSON: letters, digits, '-', '_' and '.' (request IDs, client
// names, cache results).
func (l *line) plain(f field, v string) {
	l.key(f)
	if l.text {
		l.b = append(l.b, v...)
		return
	}
	l.b = append(l.b, '"')
	l.b = append(l.b, v...)
	l.b = append(l.b, '"')
}

func (l *line) int(f field, v int64) {
	l.key(f)
	l.b = strconv.AppendInt(l.b, v, 10)
}

func (l *line) close() {
	if !l.text {
		l.b = append(l.b, '}')
	}
	l.b = append(l.b, '\n')
}

// stampCache formats times as slog does (RFC 3339 with nanoseconds for
// JSON, milliseconds for text) from a cached rendering of the current
// second: time.AppendFormat cost as much as the rest of an access-log line.
// The zone offset is cached with the second, which is exact because
// offsets only change on whole seconds. A nil cache formats directly.
type stampCache struct {
	last atomic.Pointer[stamp]
}

type stamp struct {
	unix int64
	loc  *time.Location
	head []byte // "2006-01-02T15:04:05"
	zone []byte // "Z" or "-07:00"
}

func (c *stampCache) append(b []byte, t time.Time, millis bool) []byte {
	if c == nil {
		if millis {
			return t.AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
		}
		return t.AppendFormat(b, time.RFC3339Nano)
	}
	s := c.last.Load()
	if s == nil || s.unix != t.Unix() || s.loc != t.Location() {
		s = &stamp{unix: t.Unix(), loc: t.Location(),
			head: t.AppendFormat(nil, "2006-01-02T15:04:05"), zone: t.AppendFormat(nil, "Z07:00")}
		c.last.Store(s)
	}
	b = append(b, s.head...)
	ns := t.Nanosecond()
	switch {
	case millis:
		b = appendDigits(append(b, '.'), ns/1e6, 3)
	case ns != 0: // RFC3339Nano drops trailing zeros, and the dot with them
		digits := 9
		for ns%10 == 0 {
			ns /= 10
			digits--
		}
		b = appendDigits(append(b, '.'), ns, digits)
	}
	return append(b, s.zone...)
}

// appendDigits writes v zero-padded to n digits.
func appendDigits(b []byte, v, n int) []byte {
	var d [9]byte
	for i := n - 1; i >= 0; i-- {
		d[i] = byte('0' + v%10)
		v /= 10
	}
	return append(b, d[:n]...)
}

// appendTextValue writes v bare when slog.TextHandler would, else quoted.
func appendTextValue(b []byte, v string) []byte {
	if textNeedsQuotes(v) {
		return strconv.AppendQuote(b, v)
	}
	return append(b, v...)
}

// textNeedsQuotes is slog.TextHandler's rule: an empty value, a space,
// '=', a quote or a control byte in ASCII, or any other rune that is not
// printable or is a space (a no-break space, U+2028), or invalid UTF-8.
// DEL and the backslash stay bare.
func textNeedsQuotes(v string) bool {
	if v == "" {
		return true
	}
	for i := 0; i < len(v); {
		c := v[i]
		if c < utf8.RuneSelf {
			if c <= ' ' || c == '=' || c == '"' {
				return true
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(v[i:])
		if r == utf8.RuneError || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return true
		}
		i += size
	}
	return false
}

const hexDigits = "0123456789abcdef"

// jsonPlain marks the bytes a JSON string holds as they are: printable
// ASCII but the quote and the backslash (slog's JSON handler leaves <, >
// and & as they are too).
var jsonPlain = func() (plain [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		plain[c] = c != '"' && c != '\\'
	}
	return plain
}()

// appendJSONString writes s as a JSON string as slog's JSON handler does:
// control characters, quotes, backslashes and invalid UTF-8 escaped.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if jsonPlain[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' { // line breaks to JavaScript
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
