package tier

import "golang.org/x/sys/unix"

// sealNice is how much lower than the rest of the process the sealing
// loop's thread runs: compressing and hashing segments yields the CPU to
// ingest (uploads, the index's hashing) and to readers whenever they want
// it, and takes what they leave.
const sealNice = 10

// lowerThreadPriority lowers the priority of the calling OS thread (the
// caller has locked its goroutine to it) by sealNice, capped at nice 19,
// and returns the function that puts it back.
func lowerThreadPriority() (restore func(), err error) {
	tid := unix.Gettid()
	raw, err := unix.Getpriority(unix.PRIO_PROCESS, tid) // 20 - nice on Linux
	if err != nil {
		return func() {}, err
	}
	if err := unix.Setpriority(unix.PRIO_PROCESS, tid, min(20-raw+sealNice, 19)); err != nil {
		return func() {}, err
	}
	return func() { _ = unix.Setpriority(unix.PRIO_PROCESS, tid, 20-raw) }, nil
}
