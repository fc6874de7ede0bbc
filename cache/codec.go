package cache

import (
	"encoding/binary"
	"errors"
	"net/http"
	"time"
)

// An entry in the shared tier is, after a four-byte magic and version:
// stored-at, fetched-at (unix ns) and TTL (ns) as varints, the tag, the
// header fields, then the body to the end. The ETag is the body's hash and
// is computed again on read, so it cannot disagree with the body.

var entryMagic = [4]byte{'b', 'f', 'f', 1}

// maxHeaderFields bounds a decoded entry: ours carry under ten.
const maxHeaderFields = 64

var errCorrupt = errors.New("cache: shared entry is corrupt")

// encodeEntry writes e and the TTL it was stored with.
func encodeEntry(e *Entry, ttl time.Duration) []byte {
	n := len(entryMagic) + 3*binary.MaxVarintLen64 + len(e.Tag) + len(e.Body) + 16
	for _, f := range e.fields {
		n += len(f.key) + 4
		for _, v := range f.values {
			n += len(v) + 4
		}
	}
	b := make([]byte, 0, n)
	b = append(b, entryMagic[:]...)
	b = binary.AppendVarint(b, e.StoredAt.UnixNano())
	b = binary.AppendVarint(b, e.Fetched.UnixNano())
	b = binary.AppendVarint(b, int64(ttl))
	b = appendString(b, e.Tag)
	b = binary.AppendUvarint(b, uint64(len(e.fields)))
	for _, f := range e.fields {
		b = appendString(b, f.key)
		b = binary.AppendUvarint(b, uint64(len(f.values)))
		for _, v := range f.values {
			b = appendString(b, v)
		}
	}
	return append(b, e.Body...)
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// decodeEntry reads what encodeEntry wrote; the entry keeps b's bytes. Anything else (another
// program's value under our prefix, a truncated write) is errCorrupt,
// never a panic, and no length in the data can make it allocate more
// than the data's own size.
func decodeEntry(b []byte) (e *Entry, ttl time.Duration, err error) {
	if len(b) < len(entryMagic) || [4]byte(b[:4]) != entryMagic {
		return nil, 0, errCorrupt
	}
	d := decoder{b: b[len(entryMagic):], ok: true}
	stored, fetched, ttlNS := d.varint(), d.varint(), d.varint()
	tag := d.string()
	n := d.uvarint()
	if n > maxHeaderFields {
		return nil, 0, errCorrupt
	}
	header := make(http.Header, n)
	for i := uint64(0); i < n && d.ok; i++ {
		key := d.string()
		m := d.uvarint()
		if m > uint64(len(d.b)) { // each value takes at least a byte
			d.fail()
			break
		}
		values := make([]string, 0, m)
		for j := uint64(0); j < m && d.ok; j++ {
			values = append(values, d.string())
		}
		header[key] = values
	}
	if !d.ok || ttlNS <= 0 {
		return nil, 0, errCorrupt
	}
	e = NewEntry(d.b, header, time.Unix(0, stored)) // b is the caller's to give: not copied
	e.Fetched, e.Tag = time.Unix(0, fetched), tag
	return e, time.Duration(ttlNS), nil
}

type decoder struct {
	b  []byte
	ok bool
}

func (d *decoder) fail() { d.ok, d.b = false, nil }

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if !d.ok || n > uint64(len(d.b)) {
		d.fail()
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}
