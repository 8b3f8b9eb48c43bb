package plan

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DefaultSessionTimeout is the deadline of a session whose invoker sets no
// timeOut, in both runtimes: no session runs for ever, and the next one
// of its invoker is never held back by it.
const DefaultSessionTimeout = 24 * time.Hour

// SessionTimeout is how long a session may run: its invoker's timeOut,
// else fallback (a runtime's configured default), else
// DefaultSessionTimeout.
func SessionTimeout(timeOut *metav1.Duration, fallback time.Duration) time.Duration {
	switch {
	case timeOut != nil && timeOut.Duration > 0:
		return timeOut.Duration
	case fallback > 0:
		return fallback
	}
	return DefaultSessionTimeout
}
