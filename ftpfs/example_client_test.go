package ftpfs_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/syncer-dev/syncer/ftpfs"
	"github.com/syncer-dev/syncer/ftpfs/accounts"
)

// ExampleClient uploads a growing log file: the second Upload sends only
// the bytes appended since the first. The server here runs in process; an
// agent dials the historian's ftp:// or ftps:// address.
func ExampleClient() {
	root, err := os.MkdirTemp("", "archive")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(root)
	srv, err := ftpfs.NewServer(ftpfs.ServerConfig{Root: root, ListenAddr: "127.0.0.1:0"})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := srv.AddUser(accounts.User{Name: "node17"}, "a-long-secret"); err != nil {
		fmt.Println(err)
		return
	}
	if err := srv.Start(); err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Stop(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := ftpfs.Dial(ctx, ftpfs.ClientConfig{
		Server:   "ftp://" + srv.Addr().String(),
		User:     "node17",
		Password: "a-long-secret",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	if err := c.MkdirAll(ctx, "/node17/app"); err != nil {
		fmt.Println(err)
		return
	}
	log := "starting\n"
	res, err := c.Upload(ctx, "/node17/app/app.log", strings.NewReader(log), int64(len(log)))
	fmt.Printf("resumed at %d, sent %d, err %v\n", res.Offset, res.Sent, err)

	log += "ready\n" // the file grew
	res, err = c.Upload(ctx, "/node17/app/app.log", strings.NewReader(log), int64(len(log)))
	fmt.Printf("resumed at %d, sent %d, err %v\n", res.Offset, res.Sent, err)

	var got strings.Builder
	if _, err := c.Retrieve(ctx, "/node17/app/app.log", &got, 0); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%q\n", got.String())
	// Output:
	// resumed at 0, sent 9, err <nil>
	// resumed at 9, sent 6, err <nil>
	// "starting\nready\n"
}

// ExamplePool shows the worker pattern: each worker takes a client, gives
// it back with its error (a dead connection is dropped and redialed), and
// retries only transient errors.
func ExamplePool() {
	pool := ftpfs.NewPool(ftpfs.ClientConfig{
		Server:   "ftps://historian.example.org:2121",
		User:     "node17",
		Password: os.Getenv("SYNCER_PASSWORD"),
	}, 4)
	defer pool.Close()

	upload := func(ctx context.Context, name string, data string) error {
		for {
			c, err := pool.Get(ctx) // redials with backoff until ctx is done
			if err != nil {
				return err
			}
			_, err = c.Upload(ctx, "/node17/"+name, strings.NewReader(data), int64(len(data)))
			pool.Put(c, err)
			if err == nil || !ftpfs.IsTransient(err) {
				return err
			}
		}
	}
	_ = upload // no Output: this example needs a historian to talk to
}
