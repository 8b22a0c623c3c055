//go:build windows

package syncer

// windowsNames: patterns are read as Windows users write them (`\` a
// separator) and, by default, matched without regard to case.
const windowsNames = true
