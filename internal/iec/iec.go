// Package iec formats byte counts in IEC units (KiB, MiB, GiB: powers of
// 1024), the units syncer's flags (--max-upload-rate 10MiB) and docs use.
// A leaf.
package iec

import (
	"fmt"
	"strconv"
)

// Bytes formats n as "512 B", "1.5 KiB", "12.3 MiB".
func Bytes(n int64) string {
	const unit = 1024
	if n < unit && n > -unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	neg := ""
	if n < 0 {
		neg, n = "-", -n
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%s%.1f %ciB", neg, float64(n)/float64(div), "KMGTPE"[exp])
}

// Rate formats bytes per second, "4.1 MiB/s".
func Rate(bytesPerSecond float64) string { return Bytes(int64(bytesPerSecond)) + "/s" }
