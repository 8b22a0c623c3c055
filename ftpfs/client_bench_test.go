package ftpfs_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path"
	"testing"
	"time"

	"github.com/syncer-dev/syncer/ftpfs"
	"github.com/syncer-dev/syncer/ftpfs/ftptest"
)

// benchUploadSize is the file BenchmarkUpload sends per iteration.
const benchUploadSize = 64 << 20

// BenchmarkUpload measures upload throughput of our client over loopback
// (MB/s), one 64 MiB file per iteration, against each server that is
// available: ours in process, vsftpd and pyftpdlib. Comparing
// server=ftpfs with server=vsftpd gives our server's ratio:
//
//	go test -run '^$' -bench BenchmarkUpload -benchtime 5x ./ftpfs/
//
// To measure another server, set FTPFS_BENCH_SERVER (ftp:// or ftps://
// URL), FTPFS_BENCH_USER, FTPFS_BENCH_PASSWORD and optionally
// FTPFS_BENCH_DIR (a writable directory, default "/"); FTPFS_BENCH_FINGERPRINT
// pins an ftps certificate. Files are named bench-*.bin there.
func BenchmarkUpload(b *testing.B) {
	data := ftptest.RandomBytes(b, benchUploadSize)
	if url := os.Getenv("FTPFS_BENCH_SERVER"); url != "" {
		dir := os.Getenv("FTPFS_BENCH_DIR")
		if dir == "" {
			dir = "/"
		}
		tg := ftptest.Target{Name: "env", Dir: dir, Config: clientTimeouts(ftpfs.ClientConfig{
			Server: url, User: os.Getenv("FTPFS_BENCH_USER"),
			Password: os.Getenv("FTPFS_BENCH_PASSWORD"), Fingerprint: os.Getenv("FTPFS_BENCH_FINGERPRINT"),
		})}
		b.Run("server=env", func(b *testing.B) { benchUpload(b, tg, data) })
		return
	}
	b.Run("server=ftpfs", func(b *testing.B) { benchUpload(b, startOwnServer(b, false), data) })
	b.Run("server=vsftpd", func(b *testing.B) { benchUpload(b, startVsftpd(b), data) })
	b.Run("server=pyftpdlib", func(b *testing.B) { benchUpload(b, startPyftpd(b, ""), data) })
}

func benchUpload(b *testing.B, tg ftptest.Target, data []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	c, err := ftpfs.Dial(ctx, tg.Config)
	if err != nil {
		b.Fatalf("dial %s: %v", tg.Name, err)
	}
	defer c.Close()
	b.SetBytes(int64(len(data)))
	for i := 0; b.Loop(); i++ {
		p := path.Join(tg.Dir, fmt.Sprintf("bench-%d-%d.bin", time.Now().UnixNano(), i))
		res, err := c.Upload(ctx, p, bytes.NewReader(data), int64(len(data)))
		if err != nil {
			b.Fatalf("upload: %v", err)
		}
		if res.Sent != int64(len(data)) {
			b.Fatalf("upload sent %d bytes, want %d", res.Sent, len(data))
		}
		if tg.Local != nil {
			// Keep the temporary directory small between iterations.
			b.StopTimer()
			_ = os.Remove(tg.Local(p))
			b.StartTimer()
		}
	}
}
