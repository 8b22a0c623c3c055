package syncer

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// CommitFile is one file of a commit record: the historian checks its
// stored copy against Size and SHA256.
type CommitFile struct {
	// Path is the local path relative to the log directory. A name that is
	// not UTF-8 cannot be a JSON string: Path then holds it with invalid
	// bytes replaced and PathB64 holds the exact bytes (standard base64).
	Path    string `json:"path"`
	PathB64 string `json:"path_b64,omitempty"`
	// Remote is the server path relative to the agent's tree when it
	// differs from Path (a rotated log continued its old name's copy).
	Remote string `json:"remote,omitempty"`
	// Size is the archived length; SHA256 the hash of all Size bytes.
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// From is where this push started sending (0: the whole file, as a
	// new file or a new version).
	From int64 `json:"from"`
}

// commitLog collects the files archived by one push in a temporary file
// under the state directory, so that memory stays flat however many files
// a push archives. The record is uploaded as
// /<agent>/.syncer/commits/<UTC time, ns>-<seq>.json (the time keeps names
// unique when a lost manifest restarts seq):
//
//	{"agent": ID, "seq": N, "time": RFC3339, "files": [CommitFile...]}
type commitLog struct {
	mu sync.Mutex
	f  *os.File
	w  *bufio.Writer
	n  int
}

func newCommitLog(stateDir, agent string) (*commitLog, error) {
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	f, err := os.CreateTemp(stateDir, "commit-*.tmp")
	if err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	return &commitLog{f: f, w: bufio.NewWriter(f)}, nil
}

func (l *commitLog) add(cf CommitFile) error {
	b, err := json.Marshal(cf)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n > 0 {
		l.w.WriteString(",\n")
	}
	l.n++
	_, err = l.w.Write(b)
	return err
}

// discard removes the temporary file.
func (l *commitLog) discard() {
	l.f.Close()
	os.Remove(l.f.Name())
}

// archived records a file confirmed by the server in this push.
func (r *run) archived(rel, remote string, size, from int64, sum []byte) {
	r.count(&r.sum.Archived)
	cf := CommitFile{Path: rel, Size: size, SHA256: hex.EncodeToString(sum), From: from}
	if !utf8.ValidString(rel) {
		cf.Path = string([]rune(rel))
		cf.PathB64 = base64.StdEncoding.EncodeToString([]byte(rel))
	}
	if remote != rel {
		cf.Remote = remote
		if !utf8.ValidString(remote) {
			cf.Remote = string([]rune(remote))
		}
	}
	if r.rec != nil {
		if err := r.rec.add(cf); err != nil {
			r.a.log.Warn("commit record", "err", err)
		}
	}
	r.a.log.Debug("archived", "path", rel, "size", size, "from", from)
}

// AgentInfo is /<agent>/.syncer/agent.json: who the agent is, for the
// historian's agents page.
type AgentInfo struct {
	ID       string    `json:"id"`
	Host     string    `json:"host"`
	IPs      []string  `json:"ips"`
	Version  string    `json:"version"`
	Dir      string    `json:"dir"`
	Include  []string  `json:"include"`
	Exclude  []string  `json:"exclude"`
	Interval string    `json:"interval,omitempty"`
	LastPush *Summary  `json:"last_push,omitempty"`
	Time     time.Time `json:"time"`
}

// publish uploads the commit record (when this push archived something)
// and the agent description (then, and on the first push of a watch).
// Neither counts in bytes_sent: they are not log bytes.
func (r *run) publish(ctx context.Context) error {
	a := r.a
	if r.sum.Archived == 0 && (a.described || !a.opts.Heartbeat) {
		return nil
	}
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
	if r.sum.Archived > 0 {
		seq, err := a.manifest.NextSeq("commit")
		if err != nil {
			return err
		}
		l := r.rec
		l.mu.Lock()
		head := fmt.Sprintf(`{"agent":%s,"seq":%d,"time":%q,"files":[`+"\n", jsonString(a.opts.AgentID), seq, now.Format(time.RFC3339Nano))
		l.w.WriteString("\n]}\n")
		err = l.w.Flush()
		l.mu.Unlock()
		if err != nil {
			return fmt.Errorf("commit record: %w", err)
		}
		dir := path.Join(r.metaDir(), "commits")
		if err := c.MkdirAll(ctx, dir); err != nil {
			return fmt.Errorf("commit record: %w", err)
		}
		name := path.Join(dir, fmt.Sprintf("%s-%06d.json", now.Format("20060102T150405.000000000Z"), seq))
		body := io.MultiReader(stringsReader(head), io.NewSectionReader(l.f, 0, 1<<62))
		if _, err := c.Store(ctx, name, body, 0); err != nil {
			return fmt.Errorf("commit record: %w", err)
		}
	}
	host, _ := os.Hostname()
	sum := *r.sum
	sum.DurationMs = time.Since(r.start).Milliseconds()
	info := AgentInfo{
		ID: a.opts.AgentID, Host: host, IPs: localIPs(), Version: Version, Dir: a.opts.Dir,
		Include: a.opts.Include, Exclude: a.opts.Exclude, LastPush: &sum, Time: now,
	}
	if info.Exclude == nil {
		info.Exclude = []string{}
	}
	if a.opts.Interval > 0 {
		info.Interval = a.opts.Interval.String()
	}
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	if err := c.MkdirAll(ctx, r.metaDir()); err != nil {
		return fmt.Errorf("agent description: %w", err)
	}
	if _, err := c.Store(ctx, path.Join(r.metaDir(), "agent.json"), stringsReader(string(b)+"\n"), 0); err != nil {
		return fmt.Errorf("agent description: %w", err)
	}
	a.described = true
	return nil
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
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
