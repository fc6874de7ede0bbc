package upstream

import (
	"fmt"
	"io"
	"sync"
)

// Response bodies are read into recycled buffers: on the miss path they are
// most of the garbage a request leaves. Sizes come in classes so that a
// small buffer is never stretched into a big one.
var bodyClasses = [...]int{2 << 10, 8 << 10, 32 << 10, 128 << 10}

var bodyPools [len(bodyClasses)]sync.Pool

func classOf(n int) int {
	for i, size := range bodyClasses {
		if n <= size {
			return i
		}
	}
	return -1
}

// getBuffer returns an empty buffer with room for at least n bytes.
func getBuffer(n int) []byte {
	c := classOf(n)
	if c < 0 {
		return make([]byte, 0, n)
	}
	if p, ok := bodyPools[c].Get().(*[]byte); ok {
		return (*p)[:0]
	}
	return make([]byte, 0, bodyClasses[c])
}

// putBuffer recycles a buffer from getBuffer.
func putBuffer(b []byte) {
	c := classOf(cap(b))
	if c < 0 || cap(b) != bodyClasses[c] {
		return
	}
	b = b[:0]
	bodyPools[c].Put(&b)
}

// readBody reads a whole body of the given length (-1: unknown) into a
// recycled buffer, failing once it passes limit bytes.
func readBody(r io.Reader, length, limit int64) ([]byte, error) {
	if length > limit {
		return nil, fmt.Errorf("%w: Content-Length %d > %d", ErrBodyTooLarge, length, limit)
	}
	if length >= 0 {
		buf := getBuffer(int(length))[:length]
		if _, err := io.ReadFull(r, buf); err != nil {
			putBuffer(buf)
			return nil, err
		}
		return buf, nil
	}
	buf := getBuffer(bodyClasses[1])
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > limit {
				putBuffer(buf)
				return nil, fmt.Errorf("%w: more than %d bytes", ErrBodyTooLarge, limit)
			}
			bigger := getBuffer(2 * cap(buf))
			bigger = append(bigger, buf...)
			putBuffer(buf)
			buf = bigger
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			putBuffer(buf)
			return nil, fmt.Errorf("%w: more than %d bytes", ErrBodyTooLarge, limit)
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			putBuffer(buf)
			return nil, err
		}
	}
}
