//go:build windows

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/eventlog"
	"golang.org/x/sys/windows/svc/mgr"
)

// stopTimeout is how long `service stop` (and the service control manager,
// told by the wait hint) waits for watch to stop.
const stopTimeout = 30 * time.Second

// serviceInstall registers the service: `syncer.exe service run --name N
// --config FILE --log-file F`, started at boot, restarted after a failure,
// and the event log source N.
func serviceInstall(o serviceOptions) error {
	if o.Config == "" {
		return usageErrorf("syncer service install: --config FILE is required (the service runs syncer watch --config FILE)")
	}
	cfg, err := filepath.Abs(o.Config)
	if err != nil {
		return usageErrorf("--config %s: %v", o.Config, err)
	}
	// The file must be one watch accepts: a typo found now, not at boot.
	w := newWatchCommand()
	if err := w.Flags().Set("config", cfg); err != nil {
		return usageErrorf("--config %s: %v", cfg, err)
	}
	if err := applyEnvAndConfig(w.Flags()); err != nil {
		return usageErrorf("--config %s: %v", cfg, err)
	}
	logFile := o.LogFile
	if logFile == "" {
		state, _ := w.Flags().GetString("state")
		if state == "" {
			return usageErrorf("syncer service install: no state directory to put the log in; give --log-file")
		}
		logFile = filepath.Join(state, o.Name+".log")
	}
	if logFile, err = filepath.Abs(logFile); err != nil {
		return usageErrorf("--log-file %s: %v", o.LogFile, err)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("service install: find syncer.exe: %w", err)
	}
	m, err := connectSCM()
	if err != nil {
		return err
	}
	defer m.Disconnect()
	if s, err := m.OpenService(o.Name); err == nil {
		s.Close()
		return usageErrorf("service %s is installed already (syncer service uninstall --name %s first)", o.Name, o.Name)
	}
	s, err := m.CreateService(o.Name, exe, mgr.Config{
		DisplayName: "syncer agent (" + o.Name + ")",
		Description: "Pushes log files to the syncer historian: syncer watch --config " + cfg,
		StartType:   mgr.StartAutomatic,
	}, "service", "run", "--name", o.Name, "--config", cfg, "--log-file", logFile)
	if err != nil {
		return fmt.Errorf("service install %s: %w", o.Name, err)
	}
	defer s.Close()
	// Restart after a failure (watch itself retries an unreachable
	// historian; this covers a crash or an exit with an error).
	restart := []mgr.RecoveryAction{
		{Type: mgr.ServiceRestart, Delay: 10 * time.Second},
		{Type: mgr.ServiceRestart, Delay: 30 * time.Second},
		{Type: mgr.ServiceRestart, Delay: time.Minute},
	}
	if err := s.SetRecoveryActions(restart, 24*60*60); err != nil {
		fmt.Fprintf(os.Stderr, "syncer: service %s: restart on failure not set: %v\n", o.Name, err)
	} else if err := s.SetRecoveryActionsOnNonCrashFailures(true); err != nil {
		fmt.Fprintf(os.Stderr, "syncer: service %s: restart on an exit with an error not set: %v\n", o.Name, err)
	}
	if err := eventlog.InstallAsEventCreate(o.Name, eventlog.Error|eventlog.Warning|eventlog.Info); err != nil {
		// An existing source (a reinstall) is fine.
		if !strings.Contains(err.Error(), "exists") {
			_ = s.Delete()
			return fmt.Errorf("service install %s: event log source: %w", o.Name, err)
		}
	}
	fmt.Printf("service %s installed (starts at boot): syncer watch --config %s, log %s\n", o.Name, cfg, logFile)
	return nil
}

// serviceUninstall stops the service if it runs, then removes it and its
// event log source.
func serviceUninstall(o serviceOptions) error {
	m, s, err := openService(o.Name)
	if err != nil {
		return err
	}
	defer m.Disconnect()
	defer s.Close()
	if st, err := s.Query(); err == nil && st.State != svc.Stopped {
		if err := stopAndWait(s); err != nil {
			return fmt.Errorf("service uninstall %s: %w", o.Name, err)
		}
	}
	if err := s.Delete(); err != nil {
		return fmt.Errorf("service uninstall %s: %w", o.Name, err)
	}
	_ = eventlog.Remove(o.Name)
	fmt.Printf("service %s removed\n", o.Name)
	return nil
}

func serviceStart(o serviceOptions) error {
	m, s, err := openService(o.Name)
	if err != nil {
		return err
	}
	defer m.Disconnect()
	defer s.Close()
	if err := s.Start(); err != nil {
		return fmt.Errorf("service start %s: %w", o.Name, err)
	}
	deadline := time.Now().Add(stopTimeout)
	for {
		st, err := s.Query()
		if err != nil {
			return fmt.Errorf("service start %s: %w", o.Name, err)
		}
		switch st.State {
		case svc.Running:
			fmt.Printf("service %s running (pid %d)\n", o.Name, st.ProcessId)
			return nil
		case svc.Stopped:
			return fmt.Errorf("service start %s: it stopped at once (exit code %d); see its log file and the event log", o.Name, st.ServiceSpecificExitCode)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("service start %s: still %s after %s", o.Name, stateName(st.State), stopTimeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func serviceStop(o serviceOptions) error {
	m, s, err := openService(o.Name)
	if err != nil {
		return err
	}
	defer m.Disconnect()
	defer s.Close()
	if err := stopAndWait(s); err != nil {
		return fmt.Errorf("service stop %s: %w", o.Name, err)
	}
	fmt.Printf("service %s stopped\n", o.Name)
	return nil
}

func serviceStatus(o serviceOptions) error {
	m, s, err := openService(o.Name)
	if err != nil {
		return err
	}
	defer m.Disconnect()
	defer s.Close()
	st, err := s.Query()
	if err != nil {
		return fmt.Errorf("service status %s: %w", o.Name, err)
	}
	line := fmt.Sprintf("service %s: %s", o.Name, stateName(st.State))
	if st.State == svc.Running {
		line += fmt.Sprintf(" (pid %d)", st.ProcessId)
	}
	if st.State == svc.Stopped && st.ServiceSpecificExitCode != 0 {
		line += fmt.Sprintf(" (last exit code %d)", st.ServiceSpecificExitCode)
	}
	if startType, cmdline, err := queryConfig(s); err == nil {
		start := map[uint32]string{mgr.StartAutomatic: "starts at boot", mgr.StartManual: "starts by hand", mgr.StartDisabled: "disabled"}[startType]
		if start == "" {
			start = fmt.Sprintf("start type %d", startType)
		}
		line += "; " + start + "; " + cmdline
	}
	fmt.Println(line)
	return nil
}

// stopAndWait sends the stop request and waits until the service stopped.
func stopAndWait(s *mgr.Service) error {
	st, err := s.Control(svc.Stop)
	if err != nil && !errors.Is(err, windows.ERROR_SERVICE_NOT_ACTIVE) {
		return err
	}
	deadline := time.Now().Add(stopTimeout)
	for st.State != svc.Stopped {
		if time.Now().After(deadline) {
			return fmt.Errorf("still %s after %s", stateName(st.State), stopTimeout)
		}
		time.Sleep(100 * time.Millisecond)
		if st, err = s.Query(); err != nil {
			return err
		}
	}
	return nil
}

func connectSCM() (*mgr.Mgr, error) {
	m, err := mgr.Connect()
	if err != nil {
		if errors.Is(err, windows.ERROR_ACCESS_DENIED) {
			return nil, errors.New("service control manager: access denied (run from an elevated prompt: Run as administrator)")
		}
		return nil, fmt.Errorf("service control manager: %w", err)
	}
	return m, nil
}

func openService(name string) (*mgr.Mgr, *mgr.Service, error) {
	m, err := connectSCM()
	if err != nil {
		return nil, nil, err
	}
	s, err := m.OpenService(name)
	if err != nil {
		m.Disconnect()
		if errors.Is(err, windows.ERROR_SERVICE_DOES_NOT_EXIST) {
			return nil, nil, usageErrorf("service %s is not installed (syncer service install --config FILE)", name)
		}
		return nil, nil, fmt.Errorf("service %s: %w", name, err)
	}
	return m, s, nil
}

func stateName(s svc.State) string {
	switch s {
	case svc.Stopped:
		return "stopped"
	case svc.StartPending:
		return "starting"
	case svc.StopPending:
		return "stopping"
	case svc.Running:
		return "running"
	case svc.ContinuePending:
		return "continuing"
	case svc.PausePending:
		return "pausing"
	case svc.Paused:
		return "paused"
	}
	return fmt.Sprintf("state %d", s)
}

// serviceRun is the service's process: watch --config, its log to the log
// file and the event log, stopped by the service control manager.
func serviceRun(o serviceOptions) error {
	if o.Config == "" {
		return usageErrorf("syncer service run: --config FILE is required")
	}
	var sinks []io.Writer
	if o.LogFile != "" {
		f, err := openAppendShared(o.LogFile)
		if err != nil {
			return fmt.Errorf("service %s: log file: %w", o.Name, err)
		}
		defer f.Close()
		// A service has no console: the lines watch and run write to
		// stderr (the last error among them) go to the file.
		os.Stderr = f
		sinks = append(sinks, f)
	}
	elog, err := eventlog.Open(o.Name)
	if err == nil {
		defer elog.Close()
		sinks = append(sinks, eventWriter{elog})
	}
	logSink = io.MultiWriter(sinks...)
	h := &agentService{config: o.Config, elog: elog}
	if err := svc.Run(o.Name, h); err != nil {
		if errors.Is(err, windows.ERROR_FAILED_SERVICE_CONTROLLER_CONNECT) {
			return usageErrorf("syncer service run: only the service control manager starts this (syncer service start --name %s)", o.Name)
		}
		return fmt.Errorf("service %s: %w", o.Name, err)
	}
	return nil
}

// agentService runs watch as the service control manager's handler.
type agentService struct {
	config string
	elog   *eventlog.Log
}

// Execute runs watch until it ends or the service control manager asks
// the service to stop or the machine shuts down; a stop cancels watch as
// SIGTERM does (the current transfer is cut, the manifest keeps what the
// server confirmed) and waits for it.
func (a *agentService) Execute(_ []string, reqs <-chan svc.ChangeRequest, status chan<- svc.Status) (bool, uint32) {
	status <- svc.Status{State: svc.StartPending}
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"watch", "--config", a.config}) }()
	status <- svc.Status{State: svc.Running, Accepts: svc.AcceptStop | svc.AcceptShutdown}
	for {
		select {
		case code := <-done:
			// watch ended by itself: a configuration error or a fatal
			// one; the line is in the log file. A non-zero
			// service-specific code makes the manager restart it.
			a.report(code)
			return code != 0, uint32(code)
		case c := <-reqs:
			switch c.Cmd {
			case svc.Interrogate:
				status <- c.CurrentStatus
			case svc.Stop, svc.Shutdown:
				status <- svc.Status{State: svc.StopPending, WaitHint: uint32(stopTimeout / time.Millisecond)}
				cancel(&interrupted{syscall.SIGTERM})
				code := <-done
				a.report(code)
				return code != 0, uint32(code)
			}
		}
	}
}

func (a *agentService) report(code int) {
	if a.elog == nil {
		return
	}
	if code == 0 {
		_ = a.elog.Info(1, "syncer watch stopped")
		return
	}
	_ = a.elog.Error(3, fmt.Sprintf("syncer watch exited with code %d; see the service's log file", code))
}

// eventWriter sends each log line to the event log, at the line's level.
type eventWriter struct{ l *eventlog.Log }

func (w eventWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\r\n"), "\n") {
		switch {
		case line == "":
		case strings.Contains(line, "level=ERROR"):
			_ = w.l.Error(3, line)
		case strings.Contains(line, "level=WARN"):
			_ = w.l.Warning(2, line)
		default:
			_ = w.l.Info(1, line)
		}
	}
	return len(p), nil
}

// openAppendShared opens (creating) the log file for appending, with read,
// write and delete sharing so that an operator can read, rotate or delete
// it while the service runs.
func openAppendShared(name string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
		return nil, err
	}
	p, err := windows.UTF16PtrFromString(name)
	if err != nil {
		return nil, err
	}
	h, err := windows.CreateFile(p, windows.FILE_APPEND_DATA,
		windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE|windows.FILE_SHARE_DELETE,
		nil, windows.OPEN_ALWAYS, windows.FILE_ATTRIBUTE_NORMAL, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	return os.NewFile(uintptr(h), name), nil
}

var _ svc.Handler = (*agentService)(nil)

// serviceAvailable: the service control manager is here.
func serviceAvailable() error { return nil }

// queryConfig returns the service's start type and command line.
// (mgr.Service.Config also asks for the description and the delayed
// start, which wine's service manager does not answer.)
func queryConfig(s *mgr.Service) (startType uint32, cmdline string, err error) {
	n := uint32(1024)
	for {
		b := make([]byte, n)
		c := (*windows.QUERY_SERVICE_CONFIG)(unsafe.Pointer(&b[0]))
		err := windows.QueryServiceConfig(s.Handle, c, n, &n)
		if err == nil {
			return c.StartType, windows.UTF16PtrToString(c.BinaryPathName), nil
		}
		if !errors.Is(err, windows.ERROR_INSUFFICIENT_BUFFER) || n <= uint32(len(b)) {
			return 0, "", err
		}
	}
}
