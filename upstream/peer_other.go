//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package upstream

import "net"

// peerClosed cannot peek here: idle connections the upstream closed are
// found when next used (and the call retried) or at the idle timeout, and
// bytes an upstream sends on an idle connection (a 408 before it closes)
// are read as the next call's answer. Linux and the BSDs peek.
func peerClosed(net.Conn) bool { return false }
