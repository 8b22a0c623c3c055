// Package faults holds syncer's fault-injection, load and abuse tests and
// the test-only helpers they share. Nothing in the product imports it.
//
// Proxy is a loopback TCP proxy for FTP that drops or stalls the control
// and data connections at random. The tests (faults/*_test.go) run the
// real binary (`syncer serve`, `syncer push`, `syncer watch`) or the real
// packages in-process and end, wherever the archive is concerned, by
// comparing the SHA-256 of every source file with its archived copy.
//
// `go test ./faults/` runs the bounded variants (what `make test` and CI
// run); FAULTS_FULL=1 selects the full sizes, which `make faults`
// (scripts/faults/run.sh) sets before printing the table of the README's
// "Faults and abuse" section.
package faults
