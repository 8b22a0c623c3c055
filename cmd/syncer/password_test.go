package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf16"
)

// utf16LE encodes s as PowerShell 5.1's Out-File writes it by default.
func utf16LE(s string, bom bool) []byte {
	var b []byte
	if bom {
		b = append(b, 0xff, 0xfe)
	}
	for _, u := range utf16.Encode([]rune(s)) {
		b = append(b, byte(u), byte(u>>8))
	}
	return b
}

// TestPasswordFileEncodings: the files Windows tools write for a password.
// A UTF-8 byte-order mark is dropped; UTF-16 is refused with a line that
// says how to save the file, instead of a wrong password that counts
// toward the server's ban.
func TestPasswordFileEncodings(t *testing.T) {
	for _, tc := range []struct {
		name    string
		data    []byte
		want    string
		wantErr string
	}{
		{"plain", []byte("s3cret\n"), "s3cret", ""},
		{"crlf", []byte("s3cret\r\n"), "s3cret", ""},
		{"no newline", []byte("s3cret"), "s3cret", ""},
		{"utf8 bom (PowerShell 5.1 Set-Content -Encoding utf8)", []byte("\xef\xbb\xbfs3cret\r\n"), "s3cret", ""},
		{"utf8 bom, non-ascii", []byte("\xef\xbb\xbfgrüße\r\n"), "grüße", ""},
		{"utf16le bom (Out-File default)", utf16LE("s3cret\r\n", true), "", "UTF-16"},
		{"utf16be bom", []byte{0xfe, 0xff, 0, 's', 0, '3'}, "", "UTF-16"},
		{"utf16le without bom", utf16LE("s3cret", false), "", "UTF-16"},
		{"latin-1", []byte("gr\xfc\xdfe\n"), "", "not UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "password")
			if err := os.WriteFile(p, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := readPassword(p)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), p) {
					t.Fatalf("readPassword = %q, %v; want an error naming %s and %q", got, err, p, tc.wantErr)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Fatalf("error shows the password: %v", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("readPassword = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
