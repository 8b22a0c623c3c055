package tier

import (
	"bytes"
	"errors"
	"os/exec"
	"testing"

	"github.com/syncer-dev/syncer/internal/testkit"
)

// TestSeekableFormat: segments are zstd that the zstd tool decompresses
// whole, their seek table finds every frame, and a flipped byte in any
// frame is caught by the frame checksum.
func TestSeekableFormat(t *testing.T) {
	zstd := testkit.Require(t, "zstd", "zstd")[0]
	for _, n := range []int{0, 1, FrameSize - 1, FrameSize, 3*FrameSize + 5} {
		data := logs("s", n/50+1)[:n]
		seg, frames := compressSegment(data)
		tlen, err := seekTableLen(seg[len(seg)-footerSize:])
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseSeekTable(seg[len(seg)-tlen:])
		if err != nil || len(got) != len(frames) {
			t.Fatalf("%d bytes: seek table %v, err %v; want %v", n, got, err, frames)
		}
		var out []byte
		off := 0
		for _, f := range got {
			b, err := decodeFrame(seg[off:off+int(f.Comp)], f)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, b...)
			off += int(f.Comp)
		}
		if !bytes.Equal(out, data) {
			t.Fatalf("%d bytes: frames decode to %d bytes", n, len(out))
		}
		cmd := exec.Command(zstd, "-d", "-c")
		cmd.Stdin = bytes.NewReader(seg)
		whole, err := cmd.Output()
		if err != nil || !bytes.Equal(whole, data) {
			t.Fatalf("%d bytes: zstd -d gives %d bytes, %v", n, len(whole), err)
		}
		if n == 0 {
			continue
		}
		bad := bytes.Clone(seg[:got[0].Comp])
		bad[len(bad)/2] ^= 1
		if _, err := decodeFrame(bad, got[0]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%d bytes: flipped byte: %v, want ErrCorrupt", n, err)
		}
	}
}
