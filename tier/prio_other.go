//go:build !linux

package tier

// lowerThreadPriority does nothing here: the sealing loop runs at the
// process's priority.
func lowerThreadPriority() (restore func(), err error) { return func() {}, nil }
