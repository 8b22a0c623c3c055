package archive

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// AgentInfo is /<agent>/.syncer/agent.json: who the agent is, for the
// historian's agents page. The agent writes it at the end of every push,
// as its heartbeat, also when nothing changed.
type AgentInfo struct {
	ID       string   `json:"id"`
	Host     string   `json:"host"`
	IPs      []string `json:"ips"`
	Version  string   `json:"version"`
	Dir      string   `json:"dir"`
	Include  []string `json:"include"`
	Exclude  []string `json:"exclude"`
	Interval string   `json:"interval,omitempty"`
	// ExpectEvery is how often a cron-run agent says it pushes (push
	// --expect-every), a Go duration; watch agents have Interval.
	ExpectEvery string `json:"expect_every,omitempty"`
	// LastPush is the agent's summary of its last push (syncer.Summary),
	// kept as JSON: the historian shows it without interpreting it.
	LastPush json.RawMessage `json:"last_push,omitempty"`
	Time     time.Time       `json:"time"`
}

// CommitRecord is one push's record under .syncer/commits/: the files it
// archived, so that the historian can check its stored copies.
type CommitRecord struct {
	Agent string       `json:"agent"`
	Seq   uint64       `json:"seq"`
	Time  time.Time    `json:"time"`
	Files []CommitFile `json:"files"`
}

// CommitFile is one file of a commit record: the historian checks its
// stored copy against Size and SHA256.
type CommitFile struct {
	// Path is the local path relative to the log directory. A name that is
	// not UTF-8 cannot be a JSON string: Path then holds it with invalid
	// bytes replaced and PathB64 holds the exact bytes (standard base64).
	// SetPaths fills them; Archived reads them back.
	Path    string `json:"path"`
	PathB64 string `json:"path_b64,omitempty"`
	// Remote is the server path relative to the agent's tree when it
	// differs from Path (a rotated log continued its old name's copy),
	// with RemoteB64 as PathB64.
	Remote    string `json:"remote,omitempty"`
	RemoteB64 string `json:"remote_b64,omitempty"`
	// Size is the archived length; SHA256 the hash of all Size bytes.
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// From is where this push started sending (0: the whole file, as a
	// new file or a new version).
	From int64 `json:"from"`
	// Gap says lines were written to this version of the log on the node
	// after its last push and could not be archived (the rotated log left
	// the node before the agent found it): the historian shows the file
	// as incomplete, not verified.
	Gap bool `json:"gap,omitempty"`
}

// SetPaths records the local path and, when it differs, the archived path
// of the file ("" for the same), exactly, whatever bytes they hold.
func (cf *CommitFile) SetPaths(local, remote string) {
	cf.Path, cf.PathB64 = jsonName(local)
	cf.Remote, cf.RemoteB64 = "", ""
	if remote != local && remote != "" {
		cf.Remote, cf.RemoteB64 = jsonName(remote)
	}
}

// Archived is the path of the file relative to the agent's tree, as
// SetPaths recorded it.
func (cf *CommitFile) Archived() (string, error) {
	if cf.Remote != "" || cf.RemoteB64 != "" {
		return exactName(cf.Remote, cf.RemoteB64, "remote_b64")
	}
	return exactName(cf.Path, cf.PathB64, "path_b64")
}

func jsonName(name string) (s, b64 string) {
	if utf8.ValidString(name) {
		return name, ""
	}
	return string([]rune(name)), base64.StdEncoding.EncodeToString([]byte(name))
}

func exactName(s, b64, field string) (string, error) {
	if b64 == "" {
		return s, nil
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return "", fmt.Errorf("%s: %w", field, err)
	}
	return string(raw), nil
}

// CommitRecordName is the name under .syncer/commits/ of the record of
// push seq dated at: the time (to the nanosecond, UTC) keeps names unique
// when a lost manifest restarts seq, and sorts them in time order.
func CommitRecordName(at time.Time, seq uint64) string {
	return fmt.Sprintf("%s-%06d.json", at.UTC().Format("20060102T150405.000000000Z"), seq)
}

// CommitRecordOf reports whether rel, relative to the metadata directory,
// is a commit record, and returns its name under CommitsDir.
func CommitRecordOf(rel string) (name string, ok bool) {
	name, ok = strings.CutPrefix(rel, CommitsDir+"/")
	return name, ok && strings.HasSuffix(name, ".json") && ValidName(name)
}

// NewCommitRecordReader streams a CommitRecord's JSON whose files are
// entries, each a JSON CommitFile, separated by ",\n": the agent collects
// them in a file as it archives, so memory stays flat however many files a
// push archives.
func NewCommitRecordReader(agent string, seq uint64, at time.Time, entries io.Reader) io.Reader {
	id, _ := json.Marshal(agent)
	head := fmt.Sprintf(`{"agent":%s,"seq":%d,"time":%q,"files":[`+"\n", id, seq, at.UTC().Format(time.RFC3339Nano))
	return io.MultiReader(strings.NewReader(head), entries, strings.NewReader("\n]}\n"))
}
