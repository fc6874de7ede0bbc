//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package upstream

import "net"

// peerClosed cannot peek here: idle connections the upstream closed are
// found when next used (and the call retried) or at the idle timeout.
func peerClosed(net.Conn) bool { return false }
