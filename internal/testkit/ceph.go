package testkit

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Environment variables that point the S3 tests at an endpoint of the
// caller's (MinIO, SeaweedFS, a real bucket) instead of the Ceph cluster
// the harness starts: SYNCER_TEST_S3_ENDPOINT (a URL), the keys in
// SYNCER_TEST_S3_ACCESS_KEY and SYNCER_TEST_S3_SECRET_KEY, and optionally
// SYNCER_TEST_S3_REGION.
const (
	S3EndpointEnv  = "SYNCER_TEST_S3_ENDPOINT"
	S3AccessKeyEnv = "SYNCER_TEST_S3_ACCESS_KEY"
	S3SecretKeyEnv = "SYNCER_TEST_S3_SECRET_KEY"
	S3RegionEnv    = "SYNCER_TEST_S3_REGION"
)

// S3 is an S3-compatible endpoint for tests. Ceph is set when the harness
// started the cluster itself (RGW can then be stopped and started).
type S3 struct {
	Endpoint             string // URL, http://127.0.0.1:PORT
	AccessKey, SecretKey string
	Region               string
	Ceph                 *Ceph
}

// Ceph is the throwaway single-node cluster of scripts/ceph/ceph-run.sh.
type Ceph struct {
	Dir, script string
}

var (
	cephOnce sync.Once
	cephS3   S3
	cephErr  error
)

// StartS3 returns the endpoint of SYNCER_TEST_S3_ENDPOINT when it is set;
// otherwise it starts one Ceph cluster (mon, mgr, memstore OSD, radosgw)
// for the whole test binary on its first call, shared by every test that
// asks (they use distinct buckets). TestMain calls StopS3 after m.Run.
// Without root or the Ceph packages the test is Unavailable.
func StartS3(t testing.TB) S3 {
	t.Helper()
	if ep := os.Getenv(S3EndpointEnv); ep != "" {
		return S3{Endpoint: ep, AccessKey: os.Getenv(S3AccessKeyEnv), SecretKey: os.Getenv(S3SecretKeyEnv), Region: os.Getenv(S3RegionEnv)}
	}
	RequireRoot(t, "a throwaway Ceph cluster (or set "+S3EndpointEnv+")")
	Require(t, "ceph-mon", "ceph-mon")
	Require(t, "ceph-mgr", "ceph-mgr")
	Require(t, "ceph-osd", "ceph-osd")
	Require(t, "radosgw", "radosgw", "radosgw-admin")
	Require(t, "ceph-common", "ceph", "ceph-authtool", "monmaptool")
	Require(t, "uuid-runtime", "uuidgen")
	Require(t, "curl", "curl")
	cephOnce.Do(func() { cephS3, cephErr = startCeph(t) })
	if cephErr != nil {
		t.Fatal(cephErr)
	}
	return cephS3
}

func startCeph(t testing.TB) (S3, error) {
	script, err := repoFile("scripts/ceph/ceph-run.sh")
	if err != nil {
		return S3{}, err
	}
	dir, err := os.MkdirTemp("", "syncer-ceph-")
	if err != nil {
		return S3{}, err
	}
	c := &Ceph{Dir: dir, script: script}
	mon, rgw := FreePort(t), FreePort(t)
	out, err := c.run("start", fmt.Sprintf("MON_PORT=%d", mon), fmt.Sprintf("RGW_PORT=%d", rgw))
	if err != nil {
		_, _ = c.run("stop")
		_ = os.RemoveAll(dir)
		return S3{}, fmt.Errorf("start ceph: %v\n%s", err, out)
	}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[0] == "S3" {
			return S3{Endpoint: f[1], AccessKey: f[2], SecretKey: f[3], Region: "us-east-1", Ceph: c}, nil
		}
	}
	_, _ = c.run("stop")
	return S3{}, fmt.Errorf("start ceph: no endpoint in its output:\n%s", out)
}

func (c *Ceph) run(cmd string, env ...string) (string, error) {
	x := exec.Command("bash", c.script, cmd)
	x.Env = append(append(os.Environ(), "CEPH_DIR="+c.Dir), env...)
	out, err := x.CombinedOutput()
	return string(out), err
}

// StopRGW stops radosgw (SIGTERM, then SIGKILL), leaving the cluster up.
func (c *Ceph) StopRGW(t testing.TB) {
	t.Helper()
	if out, err := c.run("kill-rgw"); err != nil {
		t.Fatalf("stop radosgw: %v\n%s", err, out)
	}
}

// StartRGW starts radosgw again and waits until it answers.
func (c *Ceph) StartRGW(t testing.TB) {
	t.Helper()
	if out, err := c.run("start-rgw"); err != nil {
		t.Fatalf("start radosgw: %v\n%s", err, out)
	}
}

// StopS3 stops the Ceph cluster StartS3 started, if any, and removes its
// directory.
func StopS3() {
	if c := cephS3.Ceph; c != nil {
		_, _ = c.run("stop")
		_ = os.RemoveAll(c.Dir)
	}
}

// repoFile finds rel in the module root above the working directory.
func repoFile(rel string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, rel), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("%s: no go.mod above the working directory", rel)
		}
		dir = parent
	}
}
