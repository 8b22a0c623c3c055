//go:build !windows

package syncer

// windowsNames: false; `\` escapes in a pattern and case is matched
// exactly unless asked otherwise.
const windowsNames = false
