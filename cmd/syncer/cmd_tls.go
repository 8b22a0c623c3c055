package main

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/syncer-dev/syncer/ftpfs"
)

func newTLSCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tls fingerprint",
		Short: "Show the historian's TLS certificate pin",
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("tls: missing subcommand (fingerprint; see syncer tls --help)")
			}
			return usageErrorf("tls: unknown subcommand %q (fingerprint; see syncer tls --help)", args[0])
		},
	}
	cmd.AddCommand(newTLSFingerprintCommand())
	return cmd
}

func newTLSFingerprintCommand() *cobra.Command {
	var state, certFile string
	cmd := &cobra.Command{
		Use:   "fingerprint --state DIR",
		Short: "Print the SHA-256 pin of the historian's certificate, for agents' --tls-fingerprint",
		Long: `Print the fingerprint agents pin with --tls-fingerprint: the SHA-256 of the
certificate "syncer serve --tls-self-signed" keeps in <state>/` + ftpfs.SelfSignedCertFile + ` (or of
the certificate --cert names, for --tls-cert). serve logs the same value when
it starts; this prints it again at any time, with or without a running
server.`,
		Example: `  syncer tls fingerprint --state /var/lib/syncer
  syncer tls fingerprint --cert /etc/syncer/historian.pem`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			file := certFile
			switch {
			case file == "" && state == "":
				return usageErrorf("give --state DIR (a self-signed certificate) or --cert FILE")
			case file == "":
				file = filepath.Join(state, ftpfs.SelfSignedCertFile)
			}
			fp, err := certFingerprint(file)
			if err != nil {
				return usageErrorf("%v", err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), fp)
			return nil
		},
	}
	cmd.Flags().StringVar(&state, "state", "", "historian state `DIR`ectory holding the self-signed certificate")
	cmd.Flags().StringVar(&certFile, "cert", "", "certificate `FILE` (PEM) instead, as given to serve --tls-cert")
	return cmd
}

// certFingerprint is the pin of the first certificate in a PEM file.
func certFingerprint(file string) (string, error) {
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("%s: no certificate (has syncer serve --tls-self-signed run with this state directory?)", file)
	} else if err != nil {
		return "", err
	}
	for rest := b; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			return "", fmt.Errorf("%s: no PEM certificate in it", file)
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
			return "", fmt.Errorf("%s: %v", file, err)
		}
		return ftpfs.Fingerprint(blk.Bytes), nil
	}
}
