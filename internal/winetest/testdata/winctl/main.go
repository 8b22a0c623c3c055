//go:build windows

// Command winctl is the wine tests' Windows-side control: it does what a
// Windows logger, editor or logrotate-like tool does to files, through the
// Windows API under wine, so that wine's sharing checks apply to it as to
// syncer.exe (a Linux process touching the same files bypasses them).
//
//	winctl sleep SECONDS          keep the wine server (and services) up
//	winctl rename OLD NEW         MoveFileEx, as a logger's rotation
//	winctl hold FILE SECONDS      hold FILE open as os.Open does (no delete
//	                              sharing), print "held", then close it
//	winctl copytruncate SRC DST   copy SRC to DST, then truncate SRC
//
// Exit status 0 on success; 1 with the error on stderr.
package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "winctl:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("no command")
	}
	switch args[0] {
	case "sleep":
		s, _ := strconv.Atoi(args[1])
		time.Sleep(time.Duration(s) * time.Second)
		return nil
	case "rename":
		return os.Rename(args[1], args[2])
	case "hold":
		f, err := os.Open(args[1])
		if err != nil {
			return err
		}
		defer f.Close()
		fmt.Println("held")
		s, _ := strconv.ParseFloat(args[2], 64)
		time.Sleep(time.Duration(s * float64(time.Second)))
		return nil
	case "copytruncate":
		src, err := os.OpenFile(args[1], os.O_RDWR, 0)
		if err != nil {
			return err
		}
		defer src.Close()
		dst, err := os.Create(args[2])
		if err != nil {
			return err
		}
		if _, err := io.Copy(dst, src); err != nil {
			return err
		}
		if err := dst.Close(); err != nil {
			return err
		}
		return src.Truncate(0)
	}
	return fmt.Errorf("unknown command %q", args[0])
}
