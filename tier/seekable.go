package tier

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/cespare/xxhash/v2"
	"github.com/klauspost/compress/zstd"
)

// The segment format is zstd's seekable format (facebook/zstd,
// contrib/seekable_format/zstd_seekable_compression_format.md): the data
// cut in frames of FrameSize bytes, each an independent zstd frame, then a
// seek table in a skippable frame. Any zstd tool decompresses a segment
// whole; a reader fetches only the frames it needs with range GETs, and
// checks each frame's XXH64 (low 32 bits) from the table.
// github.com/SaveTheRbtz/zstd-seekable-format-go is not served by the
// module proxy here, and the format is small, so it is written here on
// klauspost/compress's zstd.

// FrameSize is the uncompressed size of a segment's frames: large enough
// to compress well (the ratio is within a few percent of one frame per
// segment), small enough that a random 4 KiB read fetches and decompresses
// little.
const FrameSize = 512 << 10

const (
	skippableMagic = 0x184D2A5E
	seekableMagic  = 0x8F92EAB1
	footerSize     = 9
	checksumFlag   = 1 << 7
)

// frame is one entry of a seek table.
type frame struct {
	Comp   uint32 `json:"c"` // compressed size
	Decomp uint32 `json:"d"` // uncompressed size
	Sum    uint32 `json:"x"` // low 32 bits of XXH64 of the uncompressed bytes
}

var (
	encOnce sync.Once
	enc     *zstd.Encoder
	dec     *zstd.Decoder
)

func codecs() (*zstd.Encoder, *zstd.Decoder) {
	encOnce.Do(func() {
		var err error
		enc, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
		if err != nil {
			panic(err)
		}
		dec, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(64<<20))
		if err != nil {
			panic(err)
		}
	})
	return enc, dec
}

// compressSegment returns data in the seekable format and its seek table.
func compressSegment(data []byte) ([]byte, []frame) {
	e, _ := codecs()
	out := make([]byte, 0, len(data)/4+64)
	var frames []frame
	for off := 0; off < len(data) || (off == 0 && len(data) == 0); {
		end := min(off+FrameSize, len(data))
		chunk := data[off:end]
		before := len(out)
		out = e.EncodeAll(chunk, out)
		frames = append(frames, frame{Comp: uint32(len(out) - before), Decomp: uint32(len(chunk)), Sum: uint32(xxhash.Sum64(chunk))})
		if off = end; len(data) == 0 {
			break
		}
	}
	return append(out, seekTable(frames)...), frames
}

// seekTable is the skippable frame that ends a segment.
func seekTable(frames []frame) []byte {
	size := len(frames)*12 + footerSize
	b := make([]byte, 0, 8+size)
	b = binary.LittleEndian.AppendUint32(b, skippableMagic)
	b = binary.LittleEndian.AppendUint32(b, uint32(size))
	for _, f := range frames {
		b = binary.LittleEndian.AppendUint32(b, f.Comp)
		b = binary.LittleEndian.AppendUint32(b, f.Decomp)
		b = binary.LittleEndian.AppendUint32(b, f.Sum)
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(frames)))
	b = append(b, checksumFlag)
	return binary.LittleEndian.AppendUint32(b, seekableMagic)
}

// seekTableLen is the length of the seek table of a segment whose last
// footerSize bytes are footer.
func seekTableLen(footer []byte) (int, error) {
	if len(footer) != footerSize || binary.LittleEndian.Uint32(footer[5:]) != seekableMagic {
		return 0, errors.New("no seekable zstd footer")
	}
	if footer[4]&checksumFlag == 0 {
		return 0, errors.New("seek table without checksums")
	}
	n := int(binary.LittleEndian.Uint32(footer))
	if n > 1<<22 {
		return 0, fmt.Errorf("seek table of %d frames", n)
	}
	return 8 + n*12 + footerSize, nil
}

// parseSeekTable reads the seek table that ends a segment (b is the
// table, as long as seekTableLen said).
func parseSeekTable(b []byte) ([]frame, error) {
	if len(b) < 8+footerSize || binary.LittleEndian.Uint32(b) != skippableMagic {
		return nil, errors.New("bad seek table")
	}
	n, err := seekTableLen(b[len(b)-footerSize:])
	if err != nil {
		return nil, err
	}
	if n != len(b) || int(binary.LittleEndian.Uint32(b[4:])) != len(b)-8 {
		return nil, errors.New("seek table length disagrees with its footer")
	}
	frames := make([]frame, (len(b)-8-footerSize)/12)
	for i := range frames {
		p := b[8+i*12:]
		frames[i] = frame{Comp: binary.LittleEndian.Uint32(p), Decomp: binary.LittleEndian.Uint32(p[4:]), Sum: binary.LittleEndian.Uint32(p[8:])}
	}
	return frames, nil
}

// decodeFrame decompresses one frame and checks it against its entry.
func decodeFrame(comp []byte, f frame) ([]byte, error) {
	_, d := codecs()
	if len(comp) != int(f.Comp) {
		return nil, fmt.Errorf("%w: frame of %d bytes, want %d", ErrCorrupt, len(comp), f.Comp)
	}
	out, err := d.DecodeAll(comp, make([]byte, 0, f.Decomp))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if len(out) != int(f.Decomp) || uint32(xxhash.Sum64(out)) != f.Sum {
		return nil, fmt.Errorf("%w: frame checksum does not match", ErrCorrupt)
	}
	return out, nil
}
