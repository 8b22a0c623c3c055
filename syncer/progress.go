package syncer

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
)

// Bar is a Progress shown as a terminal progress bar: files done of files
// planned, bytes sent of bytes planned, rate and ETA. The totals grow while
// the scan runs, so the ETA settles once the scan is done.
type Bar struct {
	mu          sync.Mutex
	bar         *progressbar.ProgressBar
	files, done int
	bytes       int64
}

var _ Progress = (*Bar)(nil)

// NewBar draws on w (stderr, when it is a terminal).
func NewBar(w io.Writer) *Bar {
	b := &Bar{}
	b.bar = progressbar.NewOptions64(0,
		progressbar.OptionSetWriter(w),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionUseANSICodes(true),
		progressbar.OptionSetDescription("scanning"),
	)
	return b
}

func (b *Bar) Planned(files int, bytes int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.files += files
	b.bytes += bytes
	b.bar.ChangeMax64(max(b.bytes, 1))
	b.describe()
}

func (b *Bar) Sent(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	_ = b.bar.Add64(n)
}

func (b *Bar) FileDone() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done++
	b.describe()
}

func (b *Bar) describe() { b.bar.Describe(fmt.Sprintf("files %d/%d", b.done, b.files)) }

// Finish completes the bar and ends its line.
func (b *Bar) Finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	_ = b.bar.Finish()
	_ = b.bar.Exit()
}
