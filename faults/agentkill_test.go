package faults

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/syncer-dev/syncer/internal/testkit"
)

// TestAgentKill9 kills `syncer push` with SIGKILL at random moments, 20
// times in a row (FAULTS_FULL=1; 5 by default), while it uploads one large file and while
// it uploads many small ones; the log files grow between the kills. A clean
// push then completes and every file is byte-identical on the historian,
// with no extra versions (nothing was rewritten on the node).
func TestAgentKill9(t *testing.T) {
	kills, large, small := 20, 48<<20, 3000
	if !full() {
		kills, large, small = 5, 16<<20, 500
	}
	cases := []struct {
		name  string
		write func(t *testing.T, dir string, rng *rand.Rand)
		grow  func(t *testing.T, dir string, rng *rand.Rand)
	}{
		{"large file", func(t *testing.T, dir string, rng *rand.Rand) {
			writeLogFile(t, filepath.Join(dir, "big.log"), large, rng)
		}, func(t *testing.T, dir string, rng *rand.Rand) {
			appendFile(t, filepath.Join(dir, "big.log"), logBytes(1000+rng.IntN(5000), rng))
		}},
		{"many small files", func(t *testing.T, dir string, rng *rand.Rand) {
			for i := range small {
				writeLogFile(t, filepath.Join(dir, fmt.Sprintf("d%02d/f%04d.log", i%37, i)), 200+rng.IntN(8000), rng)
			}
		}, func(t *testing.T, dir string, rng *rand.Rand) {
			for range 10 {
				i := rng.IntN(small)
				appendFile(t, filepath.Join(dir, fmt.Sprintf("d%02d/f%04d.log", i%37, i)), logBytes(10+rng.IntN(500), rng))
			}
		}},
	}
	for ci, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			rng := rand.New(rand.NewPCG(uint64(ci), 42))
			h := newHistorian(t, base, "node1")
			// A rate limit stretches the push so that the kills land
			// inside transfers, not only before or after them.
			h.extra = []string{"--max-upload-rate", "2MiB"}
			h.start()
			logs, state := filepath.Join(base, "logs"), filepath.Join(base, "agent")
			tc.write(t, logs, rng)
			args := append([]string{"push", "--parallel", "4"}, agentArgs("node1", h.ftp, logs, state)...)
			killedMidway := 0
			for i := range kills {
				cmd := exec.Command(testkit.SyncerBinary(t), args...)
				cmd.Env = append(os.Environ(), "SYNCER_PASSWORD="+h.passwords["node1"])
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				done := make(chan error, 1)
				go func() { done <- cmd.Wait() }()
				wait := time.Duration(100+rng.IntN(1400)) * time.Millisecond
				select {
				case err := <-done:
					t.Logf("kill %d: the push ended by itself first (%v)", i, err)
				case <-time.After(wait):
					_ = cmd.Process.Signal(syscall.SIGKILL)
					<-done
					killedMidway++
				}
				tc.grow(t, logs, rng)
			}
			if killedMidway == 0 {
				t.Fatal("no push was killed while running: the test proved nothing")
			}
			r := push(t, h.passwords["node1"], agentArgs("node1", h.ftp, logs, state)...)
			if r.code != 0 {
				t.Fatalf("clean push after %d kills: exit %d\n%s\n%s", kills, r.code, r.stdout, r.stderr)
			}
			files, lost := compareTree(t, logs, filepath.Join(h.root, "node1"))
			versions := superseded(t, filepath.Join(h.root, "node1"))
			if versions != 0 {
				t.Errorf("%d superseded versions after kills of pushes of files that only grew", versions)
			}
			// The index agrees with the disk after all this.
			checkIndex(t, h, "node1", logs)
			if t.Failed() && os.Getenv("FAULTS_KEEP") != "" {
				keep, _ := os.MkdirTemp("", "faults-keep-")
				_ = exec.Command("cp", "-a", base, keep).Run()
				t.Logf("kept in %s", keep)
			}
			report(t, fmt.Sprintf("kill -9 of `syncer push` %d times (%s)", killedMidway, tc.name),
				fmt.Sprintf("next push completed; %d files identical by SHA-256, %d extra versions (`TestAgentKill9`)", files, versions), lost)
			h.stop()
		})
	}
}

// superseded counts the archived versions of log files named
// *.superseded-* (the agent's own records under .syncer/ are left out: its
// description is replaced on every push by design).
func superseded(t testing.TB, dir string) int {
	t.Helper()
	n := 0
	_ = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.IsDir() && fi.Name() == ".syncer" {
			return filepath.SkipDir
		}
		if err == nil && strings.Contains(filepath.Base(p), ".superseded-") {
			n++
		}
		return nil
	})
	return n
}

// checkIndex wants the historian's index to show every *.log of src with
// its SHA-256 and status verified, within a grace period for the upload
// events to reach it.
func checkIndex(t testing.TB, h *historian, agent, src string) {
	t.Helper()
	want := map[string]string{}
	_ = filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() && strings.HasSuffix(p, ".log") {
			rel, _ := filepath.Rel(src, p)
			want[filepath.ToSlash(rel)] = sumFile(t, p)
		}
		return nil
	})
	var bad []string
	ok := waitFor(30*time.Second, func() bool {
		bad = bad[:0]
		for rel, sum := range want {
			fi, found := h.apiFile(agent, rel)
			if !found || fi.SHA256 != sum || fi.Status != "verified" {
				bad = append(bad, fmt.Sprintf("%s: %+v found=%v", rel, fi, found))
				if len(bad) > 5 {
					break
				}
			}
		}
		return len(bad) == 0
	})
	if !ok {
		t.Errorf("index disagrees with the source: %v", bad)
	}
}
