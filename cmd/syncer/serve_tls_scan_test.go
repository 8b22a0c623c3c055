package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// selfSignedFindings are testssl.sh's findings that hold for every
// self-signed certificate by definition, whatever the server does: no
// chain to a trusted CA (agents pin the fingerprint instead), and no CRL
// or OCSP responder (nothing could revoke it but the operator, who
// deletes it). Anything else above LOW fails TestServeTLSScan.
var selfSignedFindings = map[string]bool{"cert_chain_of_trust": true, "cert_revocation": true}

// TestServeTLSScan runs testssl.sh and sslscan (Debian packages) against
// the FTPS service of `syncer serve --tls-self-signed`, with testssl.sh's
// protocol, cipher category, forward secrecy, server defaults and
// vulnerability checks (about 20 s, bounded at 4 minutes): no finding
// above LOW but those of any self-signed certificate; sslscan sees TLS 1.2
// and 1.3 only, with AEAD suites only. (Before: testssl.sh rated the
// 10-year validity HIGH, and sslscan saw ECDHE-ECDSA-AES128-SHA and
// -AES256-SHA.)
func TestServeTLSScan(t *testing.T) {
	testssl, sslscan := tlsScanners(t)
	c := newServeConfig(t, "pw-node1-tls-scan", "tls-self-signed: true\n")
	p := startServe(t, c.config, c.http)
	defer p.stop(t)
	scanTLS(t, testssl, sslscan, c.ftp, true)
}

// TestServeHTTPSTLSScan is TestServeTLSScan against the web viewer's
// HTTPS, with the FTP server's self-signed certificate and the same
// allowed findings. (Before: the viewer had no HTTPS to scan.)
func TestServeHTTPSTLSScan(t *testing.T) {
	testssl, sslscan := tlsScanners(t)
	c := newServeConfigLogin(t, "pw-node1-tls-scan", "tls-self-signed: true\n")
	p := startServe(t, c.config, c.http)
	defer p.stop(t)
	if p.scheme != "https" {
		t.Fatalf("the viewer speaks %s with --tls-self-signed", p.scheme)
	}
	scanTLS(t, testssl, sslscan, c.http, false)
}

// tlsScanners finds testssl.sh and sslscan, or skips.
func tlsScanners(t *testing.T) (testssl, sslscan string) {
	t.Helper()
	if testing.Short() {
		t.Skip("the TLS scanners take about 20 s (not with -short)")
	}
	testssl, err := exec.LookPath("testssl")
	if err != nil {
		if testssl, err = exec.LookPath("testssl.sh"); err != nil {
			t.Skip("testssl.sh is not installed (Debian package testssl.sh; .ci/run installs it)")
		}
	}
	sslscan, err = exec.LookPath("sslscan")
	if err != nil {
		t.Skip("sslscan is not installed (Debian package sslscan; .ci/run installs it)")
	}
	return testssl, sslscan
}

// scanTLS runs both scanners against addr (FTP with AUTH TLS when
// starttls, direct TLS otherwise) and judges their findings.
func scanTLS(t *testing.T, testssl, sslscan, addr string, starttls bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	jsonFile := filepath.Join(t.TempDir(), "testssl.json")
	args := []string{"--quiet", "--color", "0", "--warnings", "batch", "-p", "-s", "-f", "-S", "-U", "--jsonfile", jsonFile, addr}
	if starttls {
		args = append([]string{"--starttls", "ftp"}, args...)
	}
	cmd := exec.CommandContext(ctx, testssl, args...)
	out, err := cmd.CombinedOutput()
	// testssl.sh's exit status counts its findings of any severity; the
	// JSON file is what is judged.
	b, rerr := os.ReadFile(jsonFile)
	if rerr != nil {
		t.Fatalf("testssl.sh wrote no results (%v, %v):\n%s", rerr, err, out)
	}
	var findings []struct{ ID, Severity, Finding string }
	if err := json.Unmarshal(b, &findings); err != nil {
		t.Fatalf("testssl.sh results: %v", err)
	}
	checked := 0
	bySeverity := map[string]int{}
	for _, f := range findings {
		checked++
		bySeverity[f.Severity]++
		switch f.Severity {
		case "MEDIUM", "HIGH", "CRITICAL":
			if !selfSignedFindings[f.ID] {
				t.Errorf("testssl.sh: %s %s: %s", f.Severity, f.ID, f.Finding)
			}
		case "WARN", "FATAL":
			t.Errorf("testssl.sh could not test %s: %s", f.ID, f.Finding)
		}
	}
	if checked < 20 {
		t.Fatalf("testssl.sh reported only %d results:\n%s", checked, out)
	}
	t.Logf("testssl.sh %s: %d results by severity %v", addr, checked, bySeverity)

	ctx2, cancel2 := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel2()
	sargs := []string{"--no-colour", addr}
	if starttls {
		sargs = []string{"--no-colour", "--starttls-ftp", addr}
	}
	out, err = exec.CommandContext(ctx2, sslscan, sargs...).CombinedOutput()
	if err != nil {
		t.Fatalf("sslscan: %v\n%s", err, out)
	}
	accepted := regexp.MustCompile(`(?m)^(?:Preferred|Accepted)\s+(\S+)\s+\d+ bits\s+(\S+)`)
	suites := accepted.FindAllStringSubmatch(string(out), -1)
	if len(suites) == 0 {
		t.Fatalf("sslscan found no cipher suite:\n%s", out)
	}
	for _, m := range suites {
		proto, suite := m[1], m[2]
		if proto != "TLSv1.2" && proto != "TLSv1.3" {
			t.Errorf("sslscan: %s accepted (%s)", proto, suite)
		}
		if !strings.Contains(suite, "GCM") && !strings.Contains(suite, "CHACHA20") {
			t.Errorf("sslscan: %s %s accepted, not an AEAD suite", proto, suite)
		}
	}
}
