//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package upstream

import (
	"errors"
	"net"
	"syscall"
	"time"
)

// peerClosed reports whether an idle connection is no longer usable: the
// upstream closed it, reset it, or sent bytes nobody asked for. It peeks
// without blocking, so an idle connection costs one syscall to check.
func peerClosed(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	// The last call's deadline may have passed, and a raw read checks it
	// first; an idle connection needs none until its next call sets one.
	if c.SetReadDeadline(time.Time{}) != nil {
		return true
	}
	closed := false
	var b [1]byte
	_ = rc.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// Nothing to read is the one healthy answer: zero bytes is the
		// upstream's FIN, and anything else is a byte or an error.
		closed = !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR)
		return true // never wait for readability
	})
	return closed
}
