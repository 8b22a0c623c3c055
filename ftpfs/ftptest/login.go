package ftptest

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// LoginFrom logs in to the FTP server at addr as user over a raw control
// connection from the loopback address local (Linux routes all of 127/8
// to lo, so a test can be many clients) and returns the reply code to
// PASS: 0 when the connection ended first, or the greeting's code when it
// was not 220. Nothing is left open.
func LoginFrom(t testing.TB, local, addr, user, password string) int {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	rd := bufio.NewReader(c)
	code := func() int {
		line, err := rd.ReadString('\n')
		if err != nil || len(line) < 4 {
			return 0
		}
		var n int
		fmt.Sscanf(line[:3], "%d", &n)
		if line[3] == '-' { // multi-line: read to its end
			end := line[:3] + " "
			for !strings.HasPrefix(line, end) {
				if line, err = rd.ReadString('\n'); err != nil {
					return 0
				}
			}
		}
		return n
	}
	if g := code(); g != 220 {
		return g
	}
	fmt.Fprintf(c, "USER %s\r\n", user)
	if code() != 331 {
		return 0
	}
	fmt.Fprintf(c, "PASS %s\r\n", password)
	return code()
}
