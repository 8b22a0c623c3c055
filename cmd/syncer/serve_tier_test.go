package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestServeTierFlags: a tier flag that cannot be used stops serve with
// exit 2 and one line naming the flag, before anything starts.
func TestServeTierFlags(t *testing.T) {
	base := t.TempDir()
	common := []string{"serve", "--root", filepath.Join(base, "a"), "--state", filepath.Join(base, "s"), "--ftp", "127.0.0.1:0", "--http", ""}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--seal-size", "8MiB"}, "--seal-size needs --tier"},
		{[]string{"--retain", "30d"}, "--retain needs --tier"},
		{[]string{"--tier", "http://bucket/p", "--tier-endpoint", "http://127.0.0.1:9"}, "--tier \"http://bucket/p\" is not s3://BUCKET/PREFIX"},
		{[]string{"--tier", "s3://bucket/p"}, "--tier needs --tier-endpoint"},
		{[]string{"--tier", "s3://bucket/p", "--tier-endpoint", "127.0.0.1:9000"}, "--tier-endpoint 127.0.0.1:9000: want http://HOST[:PORT]"},
		{[]string{"--tier", "s3://bucket/p", "--tier-endpoint", "http://127.0.0.1:9", "--seal-size", "0"}, "--seal-size 0: must be positive"},
		{[]string{"--tier", "s3://bucket/p", "--tier-endpoint", "http://127.0.0.1:9", "--retain-agent", "node1"}, `--retain-agent "node1": want ID=AGE`},
		{[]string{"--tier", "s3://bucket/p", "--tier-endpoint", "http://127.0.0.1:9", "--retain-agent", "node1=soon"}, `invalid age "soon"`},
		{[]string{"--tier", "s3://bucket/p", "--tier-endpoint", "http://127.0.0.1:9", "--local-keep", "-1d"}, `invalid argument "-1d" for "--local-keep"`},
		{[]string{"--tier", "s3://bucket/p", "--tier-endpoint", "https://127.0.0.1:9", "--tier-ca", filepath.Join(base, "nope.pem")}, "--tier-ca " + filepath.Join(base, "nope.pem") + ": open"},
	} {
		_, stderr, code := syncerRun(t, append(common, c.args...)...)
		if code != 2 || !strings.Contains(stderr, c.want) || strings.Count(strings.TrimSpace(stderr), "\n") > 1 {
			t.Errorf("serve %v: exit %d, stderr %q; want 2 and %q", c.args, code, stderr, c.want)
		}
	}
}
