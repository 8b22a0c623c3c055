package syncer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/syncer-dev/syncer/ftpfs"
	"github.com/syncer-dev/syncer/internal/archive"
	"github.com/syncer-dev/syncer/store"
)

// Options configures an Agent.
type Options struct {
	// AgentID names the agent's tree on the server: files go to
	// /<AgentID>/<path relative to Dir>.
	AgentID string
	// RemoteRoot is the server directory that holds the agents' trees, "/"
	// when empty (the syncer server). Other servers may need a writable
	// subdirectory.
	RemoteRoot string
	// Dir is the log directory that is scanned.
	Dir string
	// Include and Exclude select files (see Matcher); Include defaults to
	// DefaultInclude.
	Include, Exclude []string
	// GlobCase says whether the patterns match letter case (default: as
	// the platform's names do, see GlobCase).
	GlobCase GlobCase
	// OldDirs are directories where rotated logs may be moved (logrotate's
	// olddir): relative ones are taken from each log's own directory. The
	// agent looks there, besides the log's directory, for a rotated log's
	// tail. They are never archived for themselves.
	OldDirs []string
	// FollowSymlinks makes the scan follow symbolic links to files and
	// directories; by default they are skipped.
	FollowSymlinks bool
	// Parallel is the number of upload workers, each with its own
	// connection (default 4).
	Parallel int
	// DryRun scans and prints what would be sent to DryRunOut; it sends
	// nothing and changes nothing in the manifest.
	DryRun    bool
	DryRunOut io.Writer
	// Interval is the watch interval, recorded in the agent description.
	Interval time.Duration
	// ExpectEvery is how often this agent is expected to push (a cron
	// schedule's period), recorded in the agent description so that the
	// historian can tell a late agent; watch's Interval serves when zero.
	ExpectEvery time.Duration
	// StateDir holds the manifest and the commit record being written.
	StateDir string
	// Logger receives progress and per-file failures; nil discards.
	Logger *slog.Logger
	// Progress, if set, is told about the work as it goes (a progress bar).
	Progress Progress
	// AroundPush, if set, is called as each push starts, and the function
	// it returns as the push ends. The syncer command tunes the garbage
	// collector there: process-wide settings are the program's to change,
	// not the library's.
	AroundPush func() (end func())
}

// Progress receives the progress of a push. Calls come from several
// goroutines at once.
type Progress interface {
	// Planned adds files and bytes found to be sent (the total grows while
	// the scan runs).
	Planned(files int, bytes int64)
	// Sent reports n more bytes written to the server.
	Sent(n int64)
	// FileDone reports one planned file finished (archived or failed).
	FileDone()
}

// FileError is one file that could not be archived in a push.
type FileError struct {
	Path  string `json:"path"`
	Error string `json:"error"`
}

// Summary is the result of a push; its JSON form is the `push --json`
// output fixed by SPEC.md. Extra fields: files_rotated (renamed logs
// recognised, their archived bytes not sent again) and files_gone (entries
// marked gone this push, the old name of a rotated log included).
type Summary struct {
	Agent          string `json:"agent"`
	FilesScanned   int64  `json:"files_scanned"`
	FilesNew       int64  `json:"files_new"`
	FilesAppended  int64  `json:"files_appended"`
	FilesRewritten int64  `json:"files_rewritten"`
	FilesUnchanged int64  `json:"files_unchanged"`
	FilesRotated   int64  `json:"files_rotated"`
	FilesGone      int64  `json:"files_gone"`
	FilesFailed    int64  `json:"files_failed"`
	// FilesUnrecoverable counts logs whose last bytes could not be
	// archived: a rotated log that vanished (rotated again or deleted
	// before the push found it) or whose compressed form does not continue
	// the archived bytes. BytesUnrecoverable counts the bytes of those
	// where the number is known (0 when it is not).
	FilesUnrecoverable int64       `json:"files_unrecoverable"`
	BytesUnrecoverable int64       `json:"bytes_unrecoverable"`
	BytesSent          int64       `json:"bytes_sent"`
	DurationMs         int64       `json:"duration_ms"`
	DryRun             bool        `json:"dry_run,omitempty"`
	Errors             []FileError `json:"errors"`
	// UnmatchedPatterns are the include patterns that selected no file
	// (reported by an agent's first push only).
	UnmatchedPatterns []string `json:"unmatched_patterns,omitempty"`
	// Archived counts files whose bytes were confirmed this run; it decides
	// whether a commit record is written.
	Archived int64 `json:"-"`
}

// ErrManifest wraps failures of the manifest database itself: they end the
// push (nothing more can be recorded), unlike per-file failures.
var ErrManifest = errors.New("manifest failure")

// Agent pushes one log directory to one server tree. Push may be called
// repeatedly (watch) but not concurrently.
type Agent struct {
	opts     Options
	match    *Matcher
	manifest *store.Manifest
	log      *slog.Logger
	// patternsChecked is set once a push warned about include patterns
	// that matched nothing (the first one).
	patternsChecked bool
}

// NewAgent checks opts and returns an agent over manifest m (which the
// caller opens and closes, see store.Dir). Bad patterns fail with
// ErrBadPattern.
func NewAgent(opts Options, m *store.Manifest) (*Agent, error) {
	if err := archive.CheckAgentID(opts.AgentID); err != nil {
		// The id is a directory name on the server: it must not climb out
		// of or reach across the agents' trees.
		return nil, err
	}
	if opts.Dir == "" {
		return nil, errors.New("log directory is empty")
	}
	match, err := NewMatcherCase(opts.Include, opts.Exclude, opts.GlobCase)
	if err != nil {
		return nil, err
	}
	if opts.Parallel < 1 {
		opts.Parallel = 4
	}
	if len(opts.Include) == 0 {
		opts.Include = []string{DefaultInclude}
	}
	if opts.DryRunOut == nil {
		opts.DryRunOut = io.Discard
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Agent{opts: opts, match: match, manifest: m, log: log}, nil
}

// run is the shared state of one Push.
type run struct {
	a     *Agent
	conns Conns
	sum   *Summary
	mu    sync.Mutex // guards sum.Errors and the counters below via add
	sent  atomic.Int64
	rec   *commitLog
	start time.Time
	// onFatal ends the push with err (set by execute).
	onFatal func(err error)
	dryMu   sync.Mutex
	// dirty is set once this push wrote to the manifest.
	dirty atomic.Bool
	// noModTime is set once the server refused to set a file's time.
	noModTime atomic.Bool
	// claimMu guards claimed and rewrites.
	claimMu sync.Mutex
	// claimed holds the old paths a rotated or copied log has taken over in
	// this push: one new name per old name.
	claimed map[string]bool
	// rewrites are the files found rewritten, stored as new versions only
	// after every new and rotated file of the push (see execute).
	rewrites []job
	// held are old paths whose copy failed to continue their archived log:
	// their rewrite waits for the next push.
	held map[string]bool

	// departMu guards departures, which the walk and the workers add to.
	departMu sync.Mutex
	// departures are archived identities that left their paths (see
	// follow.go); dropped counts those past maxDepartures.
	departures []departure
	dropped    int
	// Used by resolve, on the goroutine of execute only: the files beside
	// departed logs, the ones taken this push, and the manifest paths the
	// plans write.
	// gzLeft are new matched gzip files that phase G did not recognise
	// (guarded by departMu): an unseen generation, or a file of its own.
	gzLeft     map[string]bool
	sibCache   map[string]*siblingDir
	sibClaimed map[string]bool
	targeted   map[string]bool
}

// maxDepartures bounds the departures one push looks for: a tree that lost
// a million files must not hold them all in memory. Past it, a vanished
// file is marked gone without a search.
const maxDepartures = 1 << 16

// depart records d for the departure phase of execute; it reports false
// when the bound is reached (the caller then marks the file gone).
func (r *run) addDeparture(d departure) bool {
	r.departMu.Lock()
	defer r.departMu.Unlock()
	if len(r.departures) >= maxDepartures {
		r.dropped++
		return false
	}
	r.departures = append(r.departures, d)
	return true
}

// stashGzip keeps a new gzip file that is not a compressed rotation for
// the departure phase.
func (r *run) stashGzip(rel string) {
	r.departMu.Lock()
	defer r.departMu.Unlock()
	if r.gzLeft == nil {
		r.gzLeft = map[string]bool{}
	}
	r.gzLeft[rel] = true
}

// gzLeftover returns the stashed gzip files no departure took.
func (r *run) gzLeftover() []string {
	r.departMu.Lock()
	defer r.departMu.Unlock()
	var out []string
	for rel := range r.gzLeft {
		if !r.targeted[rel] {
			out = append(out, rel)
		}
	}
	slices.Sort(out)
	return out
}

// isClaimed reports whether from was taken by a rotated or copied log.
func (r *run) isClaimed(from string) bool {
	r.claimMu.Lock()
	defer r.claimMu.Unlock()
	return r.claimed[from]
}

// holdRewrite keeps the rewrite of from out of this push.
func (r *run) holdRewrite(from string) {
	r.claimMu.Lock()
	defer r.claimMu.Unlock()
	if r.held == nil {
		r.held = map[string]bool{}
	}
	r.held[from] = true
}

// isHeld reports whether the rewrite of rel waits for the next push.
func (r *run) isHeld(rel string) bool {
	r.claimMu.Lock()
	defer r.claimMu.Unlock()
	return r.held[rel]
}

// claim reports whether the archived copy of from is still free to be
// continued by a rotated or copied log, and takes it.
func (r *run) claim(from string) bool {
	r.claimMu.Lock()
	defer r.claimMu.Unlock()
	if r.claimed[from] {
		return false
	}
	if r.claimed == nil {
		r.claimed = map[string]bool{}
	}
	r.claimed[from] = true
	return true
}

// deferRewrite keeps j for the last phase of the push.
func (r *run) deferRewrite(j job) {
	r.claimMu.Lock()
	defer r.claimMu.Unlock()
	j.final = true
	r.rewrites = append(r.rewrites, j)
}

// put writes a manifest entry (see store.Manifest.Put).
func (r *run) put(rel []byte, e store.Entry, sync bool) error {
	r.dirty.Store(true)
	return r.a.manifest.Put(rel, e, sync)
}

// dry prints one line of a dry run; workers print concurrently.
func (r *run) dry(format string, args ...any) {
	r.dryMu.Lock()
	defer r.dryMu.Unlock()
	fmt.Fprintf(r.a.opts.DryRunOut, format, args...)
}

// Push scans the log directory, sends what changed over conns (nil only in
// a dry run) and records it in the manifest. Files that fail are listed in
// the summary and do not stop the push; the error is non-nil only when the
// push as a whole failed (context cancelled, the manifest failed, the
// directory cannot be read). A cancelled push cuts transfers where they are:
// the manifest holds only what the server confirmed, and the next push
// resumes from the server's size. A fatal error of the manifest's database
// (*store.FatalError) ends the push with an error wrapping ErrManifest and
// it; the manifest is unusable after it.
func (a *Agent) Push(ctx context.Context, conns Conns) (res Summary, resErr error) {
	start := time.Now()
	sum := &Summary{Agent: a.opts.AgentID, DryRun: a.opts.DryRun, Errors: []FileError{}}
	defer store.RecoverFatal(func(fe *store.FatalError) {
		sum.DurationMs = time.Since(start).Milliseconds()
		res, resErr = *sum, fmt.Errorf("%w: %w", ErrManifest, fe)
	})
	if fi, err := os.Stat(a.opts.Dir); err != nil {
		return *sum, fmt.Errorf("log directory: %w", err)
	} else if !fi.IsDir() {
		return *sum, fmt.Errorf("log directory %s: not a directory", a.opts.Dir)
	}
	if conns == nil && !a.opts.DryRun {
		return *sum, errors.New("push: no connections")
	}
	if a.opts.AroundPush != nil {
		defer a.opts.AroundPush()()
	}
	r := &run{a: a, conns: conns, sum: sum, start: start}
	if !a.opts.DryRun {
		// Every push logs in, also when nothing changed: a wrong password,
		// a dead historian or a tree the account may not write to is
		// found now, not on the day a log changes.
		if err := r.greet(ctx); err != nil {
			sum.DurationMs = time.Since(start).Milliseconds()
			return *sum, err
		}
		var err error
		if r.rec, err = newCommitLog(a.opts.StateDir, a.opts.AgentID, a.log); err != nil {
			return *sum, err
		}
		defer r.rec.discard()
	}
	err := r.execute(ctx)
	if err == nil {
		a.checkPatterns(sum)
	}
	sum.BytesSent = r.sent.Load()
	sum.DurationMs = time.Since(start).Milliseconds()
	if err != nil {
		return *sum, err
	}
	if !a.opts.DryRun {
		// Entries written without sync (gone marks, touched stats) become
		// durable here; an unchanged tree wrote nothing and skips the fsync.
		if r.dirty.Load() {
			if serr := a.manifest.Sync(); serr != nil {
				return *sum, fmt.Errorf("%w: %w", ErrManifest, serr)
			}
		}
		if merr := r.publish(ctx); merr != nil {
			// The log bytes are archived and recorded; only the metadata
			// failed. It is sent again with the next push that archives.
			a.log.Warn("upload of agent metadata failed", "err", merr)
			if ctx.Err() != nil {
				return *sum, ctx.Err()
			}
		}
	}
	sum.DurationMs = time.Since(start).Milliseconds()
	return *sum, nil
}

// greet takes a connection (logging in) and makes sure the agent's tree
// exists and is the account's to write to.
func (r *run) greet(ctx context.Context) error {
	c, err := r.getConn(ctx)
	if err != nil {
		return err
	}
	err = c.MkdirAll(ctx, r.a.treeRoot())
	r.conns.Put(c, err)
	if errors.Is(err, ftpfs.ErrPermission) {
		return &DeniedError{AgentID: r.a.opts.AgentID, Dir: r.a.treeRoot() + "/", Err: err}
	}
	return err
}

// checkPatterns warns, after the first push, about include patterns that
// selected no file: a typo'd pattern otherwise archives nothing, quietly.
func (a *Agent) checkPatterns(sum *Summary) {
	if a.patternsChecked {
		return
	}
	a.patternsChecked = true
	sum.UnmatchedPatterns = a.match.Unmatched()
	for _, p := range sum.UnmatchedPatterns {
		a.log.Warn("include pattern matched no file", "pattern", p, "dir", a.opts.Dir)
	}
}

// fail records a failed file.
func (r *run) fail(rel string, err error) {
	r.mu.Lock()
	r.sum.FilesFailed++
	r.sum.Errors = append(r.sum.Errors, FileError{Path: rel, Error: err.Error()})
	r.mu.Unlock()
	r.a.log.Warn("file not archived", "path", rel, "err", err)
}

// count adds one file to a summary counter.
func (r *run) count(field *int64) {
	r.mu.Lock()
	*field++
	r.mu.Unlock()
}

// remotePath is the server path of rel (relative to the agent's tree).
func (r *run) remotePath(rel string) string {
	return r.a.treeRoot() + "/" + rel
}

// treeRoot is the server directory of the agent's tree.
func (a *Agent) treeRoot() string {
	return strings.TrimSuffix(path.Join("/", a.opts.RemoteRoot), "/") + "/" + a.opts.AgentID
}

// metaDir is the agent's metadata directory on the server.
func (r *run) metaDir() string { return r.a.treeRoot() + "/" + archive.MetaDir }
