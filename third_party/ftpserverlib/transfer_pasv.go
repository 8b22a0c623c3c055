package ftpserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"
)

// Active/Passive transfer connection handler
type transferHandler interface {
	// Get the connection to transfer data on
	Open() (net.Conn, error)

	// Close the connection (and any associated resource)
	Close() error

	// Set info about the transfer to return in STAT response
	SetInfo(info string)
	// Info about the transfer to return in STAT response
	GetInfo() string
}

// activeTransferHandler implements the transferHandler interface
var _ transferHandler = (*passiveTransferHandler)(nil)

// Passive connection
type passiveTransferHandler struct {
	listener       net.Listener          // TCP or SSL Listener
	deadlineSetter passiveDeadlineSetter // Listener used to set accept deadlines
	Port           int                   // TCP Port we are listening on
	connection     net.Conn              // TCP Connection established
	settings       *Settings             // Settings
	info           string                // transfer info
	logger         *slog.Logger          // Logger
	// data connection requirement checker
	checkDataConn func(dataConnIP net.IP, channelType DataChannel) error
	tlsConfig     *tls.Config // not nil if the data connection requires TLS
	deadline      time.Time   // until when connections are accepted
}

// maxPendingHandshakes bounds the data connections of one transfer whose
// TLS handshake is in progress. When a new one would exceed it, the one
// that has waited longest is closed: the client's own connection sends its
// ClientHello as soon as it reads the 150 reply, so the connections that
// have waited longest are those of others.
const maxPendingHandshakes = 1024

type ipValidationError struct {
	error string
}

func (e *ipValidationError) Error() string {
	return e.error
}

func (c *clientHandler) getCurrentIP() ([]string, error) {
	// Provide our external IP address so the ftp client can connect back to us
	ipParts := c.server.settings.PublicHost

	// If we don't have an IP address, we can take the one that was used for the current connection
	if ipParts == "" {
		// Defer to the user-provided resolver.
		if c.server.settings.PublicIPResolver != nil {
			var err error
			ipParts, err = c.server.settings.PublicIPResolver(c)

			if err != nil {
				return nil, fmt.Errorf("couldn't fetch public IP: %w", err)
			}
		} else {
			ipParts = strings.Split(c.conn.LocalAddr().String(), ":")[0]
		}
	}

	quads := strings.Split(ipParts, ".")
	if len(quads) != 4 {
		c.logger.Warn("Invalid passive IP", "IP", ipParts)

		return nil, &ipValidationError{error: fmt.Sprintf("invalid passive IP %#v", ipParts)}
	}

	return quads, nil
}

// ErrNoAvailableListeningPort is returned when no port could be found to accept incoming connection
var ErrNoAvailableListeningPort = errors.New("could not find any port to listen to")

const (
	portSearchMinAttempts = 10
	portSearchMaxAttempts = 1000
)

func getPassivePortCandidates(portMapping PasvPortGetter) []passivePortCandidate {
	nbAttempts := portMapping.NumberAttempts()

	if nbAttempts < portSearchMinAttempts {
		nbAttempts = portSearchMinAttempts
	} else if nbAttempts > portSearchMaxAttempts {
		nbAttempts = portSearchMaxAttempts
	}

	maxFetches := nbAttempts * 4
	if maxFetches < nbAttempts {
		maxFetches = nbAttempts
	}

	result := make([]passivePortCandidate, 0, nbAttempts)
	tried := make(map[int]struct{}, nbAttempts)

	for i := 0; len(result) < nbAttempts && i < maxFetches; i++ {
		exposedPort, listenedPort, ok := portMapping.FetchNext()
		if !ok {
			break
		}
		if _, ok := tried[listenedPort]; ok {
			continue
		}

		tried[listenedPort] = struct{}{}
		result = append(result, passivePortCandidate{
			exposedPort:  exposedPort,
			listenedPort: listenedPort,
		})
	}

	return result
}

func (c *clientHandler) findListenerWithinPortRange(portMapping PasvPortGetter) (int, *net.TCPListener, error) {
	candidates := getPassivePortCandidates(portMapping)

	for _, candidate := range candidates {
		laddr, errResolve := net.ResolveTCPAddr("tcp", fmt.Sprintf("0.0.0.0:%d", candidate.listenedPort))

		if errResolve != nil {
			c.logger.Error("Problem resolving local port", "err", errResolve, "port", candidate.listenedPort)

			return 0, nil, newNetworkError(fmt.Sprintf("could not resolve port %d", candidate.listenedPort), errResolve)
		}

		tcpListener, errListen := net.ListenTCP("tcp", laddr)
		if errListen == nil {
			return candidate.exposedPort, tcpListener, nil
		}
	}

	c.logger.Warn(
		"Could not find any free port",
		"nbAttempts", len(candidates),
	)

	return 0, nil, ErrNoAvailableListeningPort
}

func (c *clientHandler) handlePASV(_ string) error {
	command := c.GetLastCommand()
	exposedPort, listener, deadlineSetter, err := c.getPassiveListener()

	if err != nil {
		c.logger.Error("Could not listen for passive connection", "err", err)
		c.writeMessage(StatusServiceNotAvailable, fmt.Sprintf("Could not listen for passive connection: %v", err))

		return nil
	}

	if wrapper, ok := c.server.driver.(MainDriverExtensionPassiveWrapper); ok {
		listener, err = wrapper.WrapPassiveListener(listener)
		if err != nil {
			c.logger.Error("Could not wrap passive connection", "err", err)
			c.writeMessage(StatusServiceNotAvailable, fmt.Sprintf("Could not listen for passive connection: %v", err))

			return nil
		}
	}

	// The TLS handshake is not left to a tls.Listener: it runs after the
	// 150 reply (clients start it then), and a connection whose handshake
	// fails is dropped while the transfer waits for the right one.
	var tlsConfig *tls.Config

	if c.HasTLSForTransfers() || c.server.settings.TLSRequired == ImplicitEncryption {
		if tlsConfig, err = c.dataTLSConfig(); err != nil {
			c.writeMessage(StatusServiceNotAvailable, fmt.Sprintf("Cannot get a TLS config: %v", err))
			listener.Close() //nolint:errcheck,gosec

			return nil
		}
	}

	if exposedPort == 0 {
		if tcpAddr, ok := listener.Addr().(*net.TCPAddr); ok {
			exposedPort = tcpAddr.Port
		}
	}
	transferHandler := &passiveTransferHandler{
		listener:       listener,
		deadlineSetter: deadlineSetter,
		Port:           exposedPort,
		settings:       c.server.settings,
		logger:         c.logger,
		checkDataConn:  c.checkDataConnectionRequirement,
		tlsConfig:      tlsConfig,
	}

	// We should rewrite this part
	if command == "PASV" {
		if c.handlePassivePASV(transferHandler) {
			return nil
		}
	} else {
		c.writeMessage(StatusEnteringEPSV, fmt.Sprintf("Entering Extended Passive Mode (|||%d|)", transferHandler.Port))
	}

	c.transferMu.Lock()
	if c.transfer != nil {
		c.transfer.Close() //nolint:errcheck,gosec
	}

	c.transfer = transferHandler
	c.transferMu.Unlock()
	c.setLastDataChannel(DataChannelPassive)

	return nil
}

func (c *clientHandler) getPassiveListener() (int, net.Listener, passiveDeadlineSetter, error) {
	portMapping := c.server.settings.PassiveTransferPortRange
	if c.server.settings.PassiveTransferPortMultiplexing && portMapping != nil {
		controlConnIP, err := getIPFromRemoteAddr(c.RemoteAddr())
		if err != nil {
			return 0, nil, nil, err
		}

		return c.server.passiveListeners.reserve(controlConnIP, portMapping)
	}

	addr, _ := net.ResolveTCPAddr("tcp", ":0")
	var (
		exposedPort int
		tcpListener *net.TCPListener
		err         error
	)

	if portMapping != nil {
		exposedPort, tcpListener, err = c.findListenerWithinPortRange(portMapping)
	} else {
		tcpListener, err = net.ListenTCP("tcp", addr)
	}
	if err != nil {
		return 0, nil, nil, err
	}

	return exposedPort, tcpListener, tcpListener, nil
}

func (c *clientHandler) handlePassivePASV(transferHandler *passiveTransferHandler) bool {
	portByte1 := transferHandler.Port / 256
	portByte2 := transferHandler.Port - (portByte1 * 256)
	quads, err2 := c.getCurrentIP()

	if err2 != nil {
		c.writeMessage(StatusServiceNotAvailable, fmt.Sprintf("Could not listen for passive connection: %v", err2))

		return true
	}

	c.writeMessage(
		StatusEnteringPASV,
		fmt.Sprintf(
			"Entering Passive Mode (%s,%s,%s,%s,%d,%d)",
			quads[0], quads[1], quads[2], quads[3],
			portByte1, portByte2,
		),
	)

	return false
}

// ConnectionWait returns the first connection that comes from an allowed
// address within wait. Connections from other addresses are closed and the
// wait goes on: a stranger who finds the port can neither fail the
// transfer nor leave a connection behind for the next one.
func (p *passiveTransferHandler) ConnectionWait(wait time.Duration) (net.Conn, error) {
	if p.connection != nil {
		return p.connection, nil
	}

	p.deadline = time.Now().Add(wait)
	if p.deadlineSetter != nil {
		if err := p.deadlineSetter.SetDeadline(p.deadline); err != nil {
			return nil, fmt.Errorf("failed to set deadline: %w", err)
		}
	}

	conn, err := p.accept()
	if err != nil {
		return nil, err
	}

	p.connection = conn

	return conn, nil
}

// accept returns the next connection from an allowed address, closing the
// others.
func (p *passiveTransferHandler) accept() (net.Conn, error) {
	for {
		conn, err := p.listener.Accept()
		if err != nil {
			return nil, fmt.Errorf("failed to accept passive transfer connection: %w", err)
		}

		ipAddress, err := getIPFromRemoteAddr(conn.RemoteAddr())
		if err == nil {
			err = p.checkDataConn(ipAddress, DataChannelPassive)
		}

		if err != nil {
			// we don't want to expose the full error to the client, we just log it
			p.logger.Warn("Passive data connection refused", "remoteAddr", conn.RemoteAddr().String(), "err", err)
			conn.Close() //nolint:errcheck,gosec

			continue
		}

		return conn, nil
	}
}

// Handshake runs the TLS handshake, if the data connection requires TLS,
// on the connection ConnectionWait returned and on every further one from
// an allowed address until one succeeds or the deadline passes. They run
// concurrently, so that a silent connection cannot hold the transfer up.
// The first connection whose handshake succeeds is the transfer's; every
// other one is closed.
func (p *passiveTransferHandler) Handshake() (net.Conn, error) {
	if p.tlsConfig == nil || p.connection == nil {
		return p.connection, nil
	}

	ctx, cancel := context.WithDeadline(context.Background(), p.deadline)
	defer cancel()

	var (
		pending sync.WaitGroup
		mu      sync.Mutex
		won     *tls.Conn
		waiting []net.Conn // connections whose handshake is in progress, oldest first
	)

	stopAccepting := func() {
		if p.deadlineSetter != nil {
			p.deadlineSetter.SetDeadline(time.Now()) //nolint:errcheck,gosec
		} else {
			p.listener.Close() //nolint:errcheck,gosec
		}
	}

	// The accept loop ends at the deadline also for a listener that has
	// no deadline of its own.
	defer context.AfterFunc(ctx, stopAccepting)()

	try := func(raw net.Conn) {
		mu.Lock()
		if won != nil {
			mu.Unlock()
			raw.Close() //nolint:errcheck,gosec

			return
		}

		if len(waiting) >= maxPendingHandshakes {
			oldest := waiting[0]
			waiting = waiting[1:]
			p.logger.Warn("Passive data connection dropped: too many TLS handshakes in progress", "remoteAddr", oldest.RemoteAddr().String())
			oldest.Close() //nolint:errcheck,gosec
		}

		waiting = append(waiting, raw)
		mu.Unlock()
		pending.Add(1)

		go func() {
			defer pending.Done()

			tlsConn := tls.Server(raw, p.tlsConfig)
			err := tlsConn.HandshakeContext(ctx)

			mu.Lock()
			defer mu.Unlock()

			dropped := true

			for i, c := range waiting {
				if c == raw {
					waiting = append(waiting[:i], waiting[i+1:]...)
					dropped = false

					break
				}
			}

			switch {
			case dropped:
				// closed by try while its handshake ended
			case err != nil:
				p.logger.Warn("Passive data connection refused: TLS handshake failed", "remoteAddr", raw.RemoteAddr().String(), "err", err)
				raw.Close() //nolint:errcheck,gosec
			case won != nil:
				raw.Close() //nolint:errcheck,gosec
			default:
				won = tlsConn
				stopAccepting()
			}
		}()
	}

	try(p.connection)
	p.connection = nil

	for {
		raw, err := p.accept()
		if err != nil {
			break
		}

		try(raw)
	}

	pending.Wait()

	if won == nil {
		return nil, errNoTLSDataConnection
	}

	p.connection = won

	return won, nil
}

func (p *passiveTransferHandler) GetInfo() string {
	return p.info
}

func (p *passiveTransferHandler) SetInfo(info string) {
	p.info = info
}

func (p *passiveTransferHandler) Open() (net.Conn, error) {
	timeout := time.Duration(time.Second.Nanoseconds() * int64(p.settings.ConnectionTimeout))

	return p.ConnectionWait(timeout)
}

// Closing only the client connection is not supported at that time
func (p *passiveTransferHandler) Close() error {
	if p.listener != nil {
		if err := p.listener.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			p.logger.Warn("Problem closing passive listener", "err", err)
		}
	}

	if p.connection != nil {
		if err := p.connection.Close(); err != nil {
			p.logger.Warn(
				"Problem closing passive connection", "err", err)
		}
	}

	return nil
}
