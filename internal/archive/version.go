package archive

import (
	"fmt"
	"strings"
	"time"
)

// VersionMarker separates a file's name from the UTC time it was
// superseded at in the name of a kept version:
// NAME.superseded-YYYYMMDDTHHMMSSZ, with "-2", "-3"... on a collision
// (several versions of one name within a second).
const VersionMarker = ".superseded-"

const versionStamp = "20060102T150405Z"

// VersionName is the name of the n-th (from 1) version of name superseded
// within the second of at.
func VersionName(name string, at time.Time, n int) string {
	v := name + VersionMarker + at.UTC().Format(versionStamp)
	if n > 1 {
		v = fmt.Sprintf("%s-%d", v, n)
	}
	return v
}

// VersionOf splits a version's name into its base name and the time it was
// superseded at; ok is false for names that are not versions.
func VersionOf(name string) (base string, at time.Time, ok bool) {
	i := strings.LastIndex(name, VersionMarker)
	if i <= 0 {
		return "", time.Time{}, false
	}
	stamp := name[i+len(VersionMarker):]
	if len(stamp) < len(versionStamp) {
		return "", time.Time{}, false
	}
	t, err := time.Parse(versionStamp, stamp[:len(versionStamp)])
	if err != nil || !collisionSuffix(stamp[len(versionStamp):]) {
		return "", time.Time{}, false
	}
	return name[:i], t, true
}

// collisionSuffix reports whether s is what VersionName may put after the
// time: nothing, or "-N" with N from 2.
func collisionSuffix(s string) bool {
	if s == "" {
		return true
	}
	n, ok := strings.CutPrefix(s, "-")
	if !ok || n == "" || n[0] == '0' {
		return false
	}
	for i := 0; i < len(n); i++ {
		if n[i] < '0' || n[i] > '9' {
			return false
		}
	}
	return n != "1"
}
