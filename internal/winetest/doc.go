// Package winetest runs the agent's Windows build (syncer.exe push, watch,
// user and service) under wine against a real historian (syncer serve,
// built for Linux), in CI. It holds only tests; see wine_linux_test.go for
// what they show and which limits are wine's.
package winetest
