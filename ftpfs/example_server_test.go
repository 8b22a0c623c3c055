package ftpfs_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/syncer-dev/syncer/ftpfs"
	"github.com/syncer-dev/syncer/ftpfs/accounts"
	"github.com/syncer-dev/syncer/ftpfs/activity"
)

// ExampleServer runs an archive server beside the caller's own work: start
// it on a free loopback port, add an agent account, and stop it.
func ExampleServer() {
	root, err := os.MkdirTemp("", "archive")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(root)

	srv, err := ftpfs.NewServer(ftpfs.ServerConfig{
		Root:       root,
		ListenAddr: "127.0.0.1:0",
		OnUpload: func(ev activity.UploadEvent) {
			// Called on the transfer's goroutine: keep it quick.
			if ev.Kind == activity.UploadClosed {
				fmt.Println("archived", ev.Path, ev.Size, "bytes")
			}
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := srv.Start(); err != nil {
		fmt.Println(err)
		return
	}
	// node17 may create and append files under /node17/ only.
	if err := srv.AddUser(accounts.User{Name: "node17"}, "a-long-secret"); err != nil {
		fmt.Println(err)
	}
	fmt.Println("listening:", srv.Addr() != nil, "connections:", len(srv.Connections()))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Stop(ctx); err != nil {
		fmt.Println(err)
	}
	fmt.Println("stopped")
	// Output:
	// listening: true connections: 0
	// stopped
}
