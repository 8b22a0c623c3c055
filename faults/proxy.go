package faults

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Faults says what a Proxy does to the connections of one kind. The
// probabilities apply to every chunk relayed (a control reply line, or up
// to 32 KiB of data), in either direction.
type Faults struct {
	// Drop is the probability that the connection (both of its sides) is
	// closed instead of relaying the chunk.
	Drop float64
	// Stall is the probability that relaying pauses for StallFor before
	// the chunk is passed on.
	Stall    float64
	StallFor time.Duration
	// FromServer limits the faults to what the server sends: control
	// replies, and the data of a RETR or LIST (a download cut after the
	// server's last write ends like a whole one, then 226).
	FromServer bool
}

// Stats counts what a Proxy did.
type Stats struct {
	// Control and Data count the connections accepted of each kind.
	Control, Data int64
	// Drops and Stalls count the faults injected.
	Drops, Stalls int64
}

// Proxy relays FTP between clients and one server on loopback and injects
// faults. It rewrites the server's PASV (227) and EPSV (229) replies so that
// the data connections go through it too. It only understands plain FTP:
// after AUTH TLS the replies cannot be read, so use it without TLS.
//
// A Proxy is for tests: it listens on 127.0.0.1 only.
type Proxy struct {
	target string
	ln     net.Listener

	mu      sync.Mutex
	control Faults
	data    Faults
	rng     *rand.Rand
	conns   map[net.Conn]struct{}
	lns     map[net.Listener]struct{}
	closed  bool

	nControl, nData, drops, stalls atomic.Int64

	done chan struct{}
	wg   sync.WaitGroup
}

// Listen starts a proxy on 127.0.0.1 in front of the FTP server at target
// (HOST:PORT). seed makes the sequence of fault decisions repeatable for a
// given sequence of chunks.
func Listen(target string, seed uint64) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("proxy listen: %w", err)
	}
	p := &Proxy{
		target: target,
		ln:     ln,
		rng:    rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		conns:  map[net.Conn]struct{}{},
		lns:    map[net.Listener]struct{}{},
		done:   make(chan struct{}),
	}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// Addr is the proxy's listen address, to give to clients as the server.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetFaults sets the faults for control and for data connections; it
// applies at once, also to connections already open. The zero Faults
// relays faithfully.
func (p *Proxy) SetFaults(control, data Faults) {
	p.mu.Lock()
	p.control, p.data = control, data
	p.mu.Unlock()
}

// CutAll closes every open connection (both sides) and returns how many
// pairs it cut; new connections are still accepted.
func (p *Proxy) CutAll() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for c := range p.conns {
		_ = c.Close()
		n++
	}
	p.drops.Add(int64(n / 2))
	return n / 2
}

// Stats returns the counters so far.
func (p *Proxy) Stats() Stats {
	return Stats{Control: p.nControl.Load(), Data: p.nData.Load(), Drops: p.drops.Load(), Stalls: p.stalls.Load()}
}

// Close stops accepting, cuts every connection and waits for the relaying
// goroutines to end.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.done)
	err := p.ln.Close()
	for c := range p.conns {
		_ = c.Close()
	}
	for l := range p.lns {
		_ = l.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

// track registers c so that CutAll and Close reach it; false means the
// proxy is closed (c is closed then).
func (p *Proxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		for _, c := range cs {
			_ = c.Close()
		}
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *Proxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		_ = c.Close()
		delete(p.conns, c)
	}
}

// decide rolls the dice for one chunk: drop, or how long to stall.
func (p *Proxy) decide(data, fromServer bool) (drop bool, stall time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.control
	if data {
		f = p.data
	}
	if f.FromServer && !fromServer {
		return false, 0
	}
	if f.Drop > 0 && p.rng.Float64() < f.Drop {
		p.drops.Add(1)
		return true, 0
	}
	if f.Stall > 0 && f.StallFor > 0 && p.rng.Float64() < f.Stall {
		p.stalls.Add(1)
		return false, f.StallFor
	}
	return false, 0
}

// sleep waits d or until the proxy closes; false means it closed.
func (p *Proxy) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.done:
		return false
	}
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			select {
			case <-p.done:
				return
			default:
			}
			// A transient error (a client gone before the accept, no
			// descriptor free): keep serving.
			if !p.sleep(10 * time.Millisecond) {
				return
			}
			continue
		}
		p.nControl.Add(1)
		p.wg.Add(1)
		go p.control1(c)
	}
}

// control1 relays one control connection.
func (p *Proxy) control1(client net.Conn) {
	defer p.wg.Done()
	server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		_ = client.Close()
		return
	}
	if !p.track(client, server) {
		return
	}
	defer p.untrack(client, server)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.pipe(client, server, false, false)
		p.untrack(client, server)
	}()
	host, _, _ := net.SplitHostPort(p.target)
	r := bufio.NewReader(server)
	for {
		line, err := r.ReadString('\n')
		if line != "" {
			drop, stall := p.decide(false, true)
			if drop {
				return
			}
			if stall > 0 && !p.sleep(stall) {
				return
			}
			line = p.rewrite(line, host)
			if _, werr := io.WriteString(client, line); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

var (
	pasvRe = regexp.MustCompile(`^227 .*?\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)`)
	epsvRe = regexp.MustCompile(`^229 .*?\(\|\|\|(\d+)\|\)`)
)

// rewrite points a PASV or EPSV reply at a new one-shot data listener of
// the proxy that relays to the port the server named. Other lines pass
// unchanged.
func (p *Proxy) rewrite(line, serverHost string) string {
	if m := pasvRe.FindStringSubmatch(line); m != nil {
		hi, _ := strconv.Atoi(m[5])
		lo, _ := strconv.Atoi(m[6])
		dst := net.JoinHostPort(strings.Join(m[1:5], "."), strconv.Itoa(hi<<8|lo))
		port, err := p.dataListener(dst)
		if err != nil {
			return "425 proxy: " + err.Error() + "\r\n"
		}
		return fmt.Sprintf("227 Entering Passive Mode (127,0,0,1,%d,%d)\r\n", port>>8, port&0xff)
	}
	if m := epsvRe.FindStringSubmatch(line); m != nil {
		dst := net.JoinHostPort(serverHost, m[1])
		port, err := p.dataListener(dst)
		if err != nil {
			return "425 proxy: " + err.Error() + "\r\n"
		}
		return fmt.Sprintf("229 Entering Extended Passive Mode (|||%d|)\r\n", port)
	}
	return line
}

// dataListener accepts one connection on a new port and relays it to dst.
func (p *Proxy) dataListener(dst string) (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		_ = ln.Close()
		return 0, errors.New("closed")
	}
	p.lns[ln] = struct{}{}
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer func() {
			p.mu.Lock()
			delete(p.lns, ln)
			p.mu.Unlock()
			_ = ln.Close()
		}()
		_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(30 * time.Second))
		client, err := ln.Accept()
		if err != nil {
			return
		}
		p.nData.Add(1)
		server, err := net.DialTimeout("tcp", dst, 5*time.Second)
		if err != nil {
			_ = client.Close()
			return
		}
		if !p.track(client, server) {
			return
		}
		back := make(chan struct{})
		go func() {
			defer close(back)
			p.pipe(server, client, true, true)
			// The server finished sending (a RETR or LIST): pass the
			// end on, keep the other direction open until it ends.
			if tc, ok := client.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
			}
		}()
		p.pipe(client, server, true, false)
		if tc, ok := server.(*net.TCPConn); ok {
			// The client finished sending (a STOR): half-close, so
			// the server sees the end of the upload.
			_ = tc.CloseWrite()
		}
		// Wait for the server to close its side, bounded.
		select {
		case <-back:
		case <-time.After(30 * time.Second):
		case <-p.done:
		}
		p.untrack(client, server)
		<-back
	}()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// pipe copies src to dst chunk by chunk, injecting faults, until either
// side fails or a drop closes both. fromServer says that src is the server.
func (p *Proxy) pipe(src, dst net.Conn, data, fromServer bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			drop, stall := p.decide(data, fromServer)
			if drop {
				_ = src.Close()
				_ = dst.Close()
				return
			}
			if stall > 0 && !p.sleep(stall) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
