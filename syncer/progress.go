package syncer

import (
	"io"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
)

// Bar is a Progress shown as a terminal progress bar in one unit, bytes:
// bytes sent of bytes planned, in IEC units (KiB, MiB), and the rate. It
// shows no time left: the total grows while the scan runs, so any
// estimate made before the scan ends is wrong (it showed 35 minutes for a
// 2 s push). Nothing is drawn until the push plans its first file, which
// is after the login. Log lines go through Writer, which takes the bar
// off its line, writes the lines above it and draws it again.
type Bar struct {
	mu      sync.Mutex
	bar     *progressbar.ProgressBar
	bytes   int64
	started bool
}

var _ Progress = (*Bar)(nil)

// NewBar draws on w (stderr, when it is a terminal).
func NewBar(w io.Writer) *Bar {
	b := &Bar{}
	b.bar = progressbar.NewOptions64(1,
		progressbar.OptionSetWriter(w),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionUseIECUnits(true),
		progressbar.OptionSetPredictTime(false),
		progressbar.OptionSetElapsedTime(false),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetWidth(30),
		progressbar.OptionUseANSICodes(true),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetRenderBlankState(false),
		progressbar.OptionShowCount(),
	)
	// The rate counts from the start of the push, not from the first
	// bytes: those fill the socket buffers at once, which showed as
	// hundreds of GiB/s.
	b.bar.StartWithoutRender()
	return b
}

func (b *Bar) Planned(files int, bytes int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.bytes += bytes
	if files == 0 && !b.started {
		return
	}
	b.started = true
	b.bar.ChangeMax64(max(b.bytes, 1))
}

func (b *Bar) Sent(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.started = true
	_ = b.bar.Add64(n)
}

func (b *Bar) FileDone() {}

// Writer returns w for log lines: each write clears the bar's line first
// and draws the bar again after it, so that warnings stand on their own
// lines above the bar.
func (b *Bar) Writer(w io.Writer) io.Writer { return barWriter{b, w} }

type barWriter struct {
	b *Bar
	w io.Writer
}

func (bw barWriter) Write(p []byte) (int, error) {
	b := bw.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.started {
		_ = b.bar.Clear()
	}
	n, err := bw.w.Write(p)
	if b.started {
		_ = b.bar.RenderBlank()
	}
	return n, err
}

// Finish takes the bar off the screen; the caller prints the summary.
func (b *Bar) Finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.started {
		_ = b.bar.Clear()
	}
	b.started = false
	_ = b.bar.Exit()
}
