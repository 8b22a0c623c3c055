package httpview

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/syncer-dev/syncer/store"
)

// rawServer is a Server over root with its index built.
func rawServer(tb testing.TB, root string) *Server {
	tb.Helper()
	ix, err := store.OpenIndex(store.IndexConfig{Dir: filepath.Join(tb.TempDir(), "ix"), Root: root, ReconcileEvery: -1})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ix.Run(ctx) }()
	<-ix.Ready()
	s, err := New(Config{Index: ix, Root: root})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		cancel()
		<-done
		ix.Close()
		s.Close()
	})
	return s
}

// readerFromRecorder is a response writer with net/http's io.ReaderFrom,
// which is what lets it sendfile(2) from a file to the socket.
type readerFromRecorder struct {
	*httptest.ResponseRecorder
	readFrom int64
}

func (w *readerFromRecorder) ReadFrom(r io.Reader) (int64, error) {
	n, err := io.Copy(w.ResponseRecorder, r)
	w.readFrom += n
	return n, err
}

// TestRawBodyGoesThroughReaderFrom: through every middleware of the
// server, /raw hands the whole file to the connection's io.ReaderFrom (so
// net/http can sendfile it), not to Write; a Range request too.
func TestRawBodyGoesThroughReaderFrom(t *testing.T) {
	root := t.TempDir()
	data := bytes.Repeat([]byte("a line of the log\n"), 100000)
	writeFile(t, filepath.Join(root, "node1", "app.log"), data)
	s := rawServer(t, root)
	for _, tc := range []struct {
		rng  string
		want []byte
	}{{"", data}, {"bytes=100-", data[100:]}} {
		w := &readerFromRecorder{ResponseRecorder: httptest.NewRecorder()}
		req := httptest.NewRequest("GET", "/raw/node1/app.log", nil)
		if tc.rng != "" {
			req.Header.Set("Range", tc.rng)
		}
		s.Handler().ServeHTTP(w, req)
		if !bytes.Equal(w.Body.Bytes(), tc.want) {
			t.Fatalf("range %q: body of %d bytes, want %d (status %d)", tc.rng, w.Body.Len(), len(tc.want), w.Code)
		}
		if w.readFrom != int64(len(tc.want)) {
			t.Errorf("range %q: %d of %d bytes went through ReadFrom", tc.rng, w.readFrom, len(tc.want))
		}
		if w.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("security headers missing: %v", w.Header())
		}
	}
}

// BenchmarkRawVsServeContent downloads a 256 MiB file over loopback from
// /raw and from a bare net/http handler calling http.ServeContent on the
// same file (the ceiling of /raw), with the same Go client.
//
//	go test -run '^$' -bench RawVsServeContent -benchtime 10x ./httpview/
func BenchmarkRawVsServeContent(b *testing.B) {
	root := b.TempDir()
	p := filepath.Join(root, "node1", "big.log")
	size := writeFullLog(b, root)
	ours := httptest.NewServer(rawServer(b, root).Handler())
	defer ours.Close()
	bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(p)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer f.Close()
		http.ServeContent(w, r, "big.log", time.Time{}, f)
	}))
	defer bare.Close()
	for _, tc := range []struct{ name, url string }{{"raw", ours.URL + "/raw/node1/big.log"}, {"servecontent", bare.URL + "/"}} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(size)
			for range b.N {
				resp, err := http.Get(tc.url)
				if err != nil {
					b.Fatal(err)
				}
				n, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if n != size {
					b.Fatalf("got %d bytes of %d", n, size)
				}
			}
		})
	}
}
