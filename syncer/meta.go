package syncer

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/syncer-dev/syncer/internal/archive"
)

// CommitFile is one file of a commit record (archive.CommitFile).
type CommitFile = archive.CommitFile

// commitLog collects the files archived by one push in a temporary file
// under the state directory, so that memory stays flat however many files
// a push archives. The record is uploaded as
// /<agent>/.syncer/commits/<UTC time, ns>-<seq>.json (the time keeps names
// unique when a lost manifest restarts seq):
//
//	{"agent": ID, "seq": N, "time": RFC3339, "files": [CommitFile...]}
//
// Every entry is written through to the file before the manifest records
// the file (one write each, no buffer), and the file is removed only once
// the record is on the server. A push that is killed, or that fails after
// archiving files (server gone, network cut), thus leaves its entries
// behind, and the next push of the same agent uploads them as their own
// record first: without it the historian would never learn the SHA-256 of
// those files (the next push finds them unchanged) and would show them
// pending for ever.
type commitLog struct {
	mu sync.Mutex
	f  *os.File
	n  int
	// leftovers are the files of earlier pushes not published yet.
	leftovers []string
	published bool
	log       *slog.Logger
}

// commitLogPattern names the temporary files of one agent (several agents
// may share a state directory).
func commitLogPattern(agent string) string {
	return "commit-" + hex.EncodeToString([]byte(agent)) + "-*.tmp"
}

func newCommitLog(stateDir, agent string, log *slog.Logger) (*commitLog, error) {
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	// The manifest lock is held: no other push of this agent is writing
	// these files.
	leftovers, _ := filepath.Glob(filepath.Join(stateDir, commitLogPattern(agent)))
	// Oldest first: a later record of the same file (it grew) must reach
	// the historian after the earlier one, which it supersedes.
	mtime := func(name string) int64 {
		if fi, err := os.Stat(name); err == nil {
			return fi.ModTime().UnixNano()
		}
		return 0
	}
	sort.SliceStable(leftovers, func(i, j int) bool { return mtime(leftovers[i]) < mtime(leftovers[j]) })
	f, err := os.CreateTemp(stateDir, commitLogPattern(agent))
	if err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	return &commitLog{f: f, leftovers: leftovers, log: log}, nil
}

func (l *commitLog) add(cf CommitFile) error {
	b, err := json.Marshal(cf)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n > 0 {
		b = append([]byte(",\n"), b...)
	}
	l.n++
	_, err = l.f.Write(b)
	return err
}

// discard closes the temporary file and removes it unless it holds
// entries that did not reach the server.
func (l *commitLog) discard() {
	l.f.Close()
	if l.published || l.n == 0 {
		os.Remove(l.f.Name())
	} else {
		l.log.Info("commit record kept for the next push", "files", l.n)
	}
}

// readLeftover reads the entries of an earlier push's commit log; an entry
// cut by a crash in the middle of its write is dropped (its file was not
// recorded in the manifest yet, so it is sent and recorded again).
func readLeftover(name string) ([]byte, time.Time, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return nil, time.Time{}, err
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, time.Time{}, err
	}
	var out []byte
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSuffix(line, ",")
		if line == "" || !json.Valid([]byte(line)) {
			continue
		}
		if len(out) > 0 {
			out = append(out, ",\n"...)
		}
		out = append(out, line...)
	}
	return out, fi.ModTime(), nil
}

// record writes the commit entry of a file the server confirmed, before
// the manifest records it.
func (r *run) record(rel, remote string, size, from int64, sum []byte) {
	r.recordFile(CommitFile{Path: rel, Size: size, SHA256: hex.EncodeToString(sum), From: from}, rel, remote)
}

// recordFile completes cf's names (rel may not be UTF-8) and adds it to
// the commit record.
func (r *run) recordFile(cf CommitFile, rel, remote string) {
	cf.SetPaths(rel, remote)
	if r.rec != nil {
		if err := r.rec.add(cf); err != nil {
			r.a.log.Warn("commit record", "err", err)
		}
	}
}

// archived counts a file confirmed by the server and recorded in this push.
func (r *run) archived(rel string, size, from int64) {
	r.count(&r.sum.Archived)
	r.a.log.Debug("archived", "path", rel, "size", size, "from", from)
}

// publish uploads the commit record (when this push archived something)
// and the agent description, on every push: it is the agent's heartbeat,
// which tells the historian that the agent is alive and what its last
// push did. Neither counts in bytes_sent: they are not log bytes.
func (r *run) publish(ctx context.Context) error {
	c, err := r.getConn(ctx)
	if err != nil {
		return err
	}
	err = r.publishWith(ctx, c)
	r.conns.Put(c, err)
	return err
}

func (r *run) publishWith(ctx context.Context, c Conn) error {
	a := r.a
	now := time.Now().UTC()
	dir := path.Join(r.metaDir(), archive.CommitsDir)
	store := func(at time.Time, files io.Reader) error {
		seq, err := a.manifest.NextSeq("commit")
		if err != nil {
			return err
		}
		if err := c.MkdirAll(ctx, dir); err != nil {
			return fmt.Errorf("commit record: %w", err)
		}
		name := path.Join(dir, archive.CommitRecordName(at, seq))
		body := archive.NewCommitRecordReader(a.opts.AgentID, seq, at, files)
		if _, err := c.Store(ctx, name, body, 0); err != nil {
			return fmt.Errorf("commit record: %w", err)
		}
		return nil
	}
	// Records of earlier pushes that did not reach the server, with the
	// time of their last entry (the historian matches a record to the
	// versions that existed then).
	for len(r.rec.leftovers) > 0 {
		name := r.rec.leftovers[0]
		files, at, err := readLeftover(name)
		if err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("commit record: %w", err)
		}
		if err == nil && len(files) > 0 {
			if err := store(at, bytes.NewReader(files)); err != nil {
				return err
			}
		}
		os.Remove(name)
		r.rec.leftovers = r.rec.leftovers[1:]
	}
	if r.rec.n > 0 {
		// The record is dated when the push began: the versions its files
		// were pushed aside into during the push are named after that,
		// which is how the historian finds them (see store's commitTarget).
		if err := store(r.start, io.NewSectionReader(r.rec.f, 0, 1<<62)); err != nil {
			return err
		}
		r.rec.published = true
	}
	host, _ := os.Hostname()
	sum := *r.sum
	sum.DurationMs = time.Since(r.start).Milliseconds()
	last, err := json.Marshal(&sum)
	if err != nil {
		return err
	}
	info := archive.AgentInfo{
		ID: a.opts.AgentID, Host: host, IPs: localIPs(), Version: Version, Dir: a.opts.Dir,
		Include: a.opts.Include, Exclude: a.opts.Exclude, LastPush: last, Time: now,
	}
	if info.Exclude == nil {
		info.Exclude = []string{}
	}
	if a.opts.Interval > 0 {
		info.Interval = a.opts.Interval.String()
	}
	if a.opts.ExpectEvery > 0 {
		info.ExpectEvery = a.opts.ExpectEvery.String()
	}
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	if err := c.MkdirAll(ctx, r.metaDir()); err != nil {
		return fmt.Errorf("agent description: %w", err)
	}
	if _, err := c.Store(ctx, path.Join(r.metaDir(), archive.AgentInfoFile), stringsReader(string(b)+"\n"), 0); err != nil {
		return fmt.Errorf("agent description: %w", err)
	}
	return nil
}

func stringsReader(s string) io.Reader { return strings.NewReader(s) }

// localIPs lists the machine's non-loopback unicast addresses.
func localIPs() []string {
	ips := []string{}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ips
	}
	for _, a := range addrs {
		var ip net.IP
		switch v := a.(type) {
		case *net.IPNet:
			ip = v.IP
		case *net.IPAddr:
			ip = v.IP
		}
		if ip == nil || ip.IsLoopback() || ip.IsLinkLocalUnicast() {
			continue
		}
		ips = append(ips, ip.String())
	}
	return ips
}
