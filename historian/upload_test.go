package historian

import (
	"maps"
	"testing"

	"github.com/syncer-dev/syncer/ftpfs/activity"
)

// counts is an uploadCounter that remembers what it was told, per agent.
type counts struct{ bytes, files, failures map[string]int64 }

func (c *counts) Received(agent string, n int64) {
	if n > 0 { // as httpview.Metrics: nothing received is no sample
		c.bytes[agent] += n
	}
}
func (c *counts) FileReceived(agent string) { c.files[agent]++ }
func (c *counts) UploadFailed(agent string) { c.failures[agent]++ }

// TestUploadsCount: the running totals of upload events become bytes
// received per agent, without counting a byte twice; closed and failed
// uploads are counted; a superseded version is no upload. (It was
// httpview's TestMetricsCountUploads.)
func TestUploadsCount(t *testing.T) {
	c := &counts{bytes: map[string]int64{}, files: map[string]int64{}, failures: map[string]int64{}}
	u := newUploads(nil, c)
	for _, ev := range []activity.UploadEvent{
		{Kind: activity.UploadOpened, Path: "/n1/a.log", Written: 0},
		{Kind: activity.UploadProgress, Path: "/n1/a.log", Written: 100},
		{Kind: activity.UploadProgress, Path: "/n1/a.log", Written: 250},
		{Kind: activity.UploadClosed, Path: "/n1/a.log", Written: 300},
		{Kind: activity.UploadOpened, Path: "/n1/b.log"},
		{Kind: activity.UploadFailed, Path: "/n1/b.log", Written: 40},
		{Kind: activity.UploadSuperseded, Path: "/n2/c.log", Written: 999},
	} {
		u.event(ev)
	}
	for _, tc := range []struct {
		name      string
		got, want map[string]int64
	}{
		{"bytes", c.bytes, map[string]int64{"n1": 340}},
		{"files", c.files, map[string]int64{"n1": 1}},
		{"failures", c.failures, map[string]int64{"n1": 1}},
	} {
		if !maps.Equal(tc.got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	if len(u.written) != 0 {
		t.Errorf("ended uploads still remembered: %v", u.written)
	}
}
