//go:build !unix

package syncer_test

import "errors"

func mkfifo(string) error { return errors.New("no FIFOs on this platform") }
