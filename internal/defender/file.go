package defender

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/syncer-dev/syncer/internal/statelock"
)

// FileName is the bans file in a historian's state directory: `syncer
// serve` keeps it current, `syncer ban list|remove` read and edit it.
const FileName = "bans.json"

// lockTimeout bounds how long a change waits for another process that
// holds the bans file's lock.
const lockTimeout = 15 * time.Second

// pollInterval is how often a kept file is re-read for changes made by
// other processes (`syncer ban remove`).
const pollInterval = time.Second

// fileFormat is the bans file.
type fileFormat struct {
	Comment string `json:"comment"`
	Bans    []Ban  `json:"bans"`
}

const fileComment = `syncer bans: kept by "syncer serve", listed and lifted with "syncer ban list|remove"`

// ReadFile returns the bans in force recorded in the bans file at path,
// sorted by address; a missing file has none.
func ReadFile(path string) ([]Ban, error) {
	bans, err := readFile(path, time.Now())
	if err != nil {
		return nil, err
	}
	return sortedBans(bans), nil
}

func readFile(path string, now time.Time) (map[string]Ban, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]Ban{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read bans file: %w", err)
	}
	var f fileFormat
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if len(bytes.TrimSpace(data)) > 0 {
		if err := dec.Decode(&f); err != nil {
			return nil, fmt.Errorf("bans file %s: %w", path, err)
		}
	}
	out := make(map[string]Ban, len(f.Bans))
	for _, b := range f.Bans {
		k, err := CanonicalAddr(b.Addr)
		if err != nil {
			return nil, fmt.Errorf("bans file %s: %w", path, err)
		}
		b.Addr = k
		if now.Before(b.Until) {
			out[k] = b
		}
	}
	return out, nil
}

func sortedBans(m map[string]Ban) []Ban {
	out := make([]Ban, 0, len(m))
	for _, b := range m {
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b Ban) int { return strings.Compare(a.Addr, b.Addr) })
	return out
}

// editFile applies fn to the bans in path under the file's lock and writes
// the result back atomically when fn reports a change.
func editFile(path string, fn func(bans map[string]Ban) (changed bool, err error)) (map[string]Ban, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create bans file directory: %w", err)
	}
	unlock, err := statelock.File(path+".lock", lockTimeout)
	if err != nil {
		return nil, err
	}
	defer unlock()
	bans, err := readFile(path, time.Now())
	if err != nil {
		return nil, err
	}
	changed, err := fn(bans)
	if err != nil || !changed {
		return bans, err
	}
	data, err := json.MarshalIndent(fileFormat{Comment: fileComment, Bans: sortedBans(bans)}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode bans file: %w", err)
	}
	return bans, writeAtomic(path, append(data, '\n'))
}

// writeAtomic replaces p with data (temp file, fsync, rename).
func writeAtomic(p string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write bans file: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename: nothing to remove
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write bans file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write bans file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write bans file: %w", err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return fmt.Errorf("write bans file: %w", err)
	}
	return nil
}

// ErrNoBan is returned (wrapped) by RemoveFromFile for an address that is
// not banned.
var ErrNoBan = errors.New("no ban on this address")

// RemoveFromFile lifts addr's ban in the bans file at path (a running
// historian that keeps the file lifts it within about a second). An
// address that is not banned gives ErrNoBan; one that is not an IP
// address, an error naming it.
func RemoveFromFile(path, addr string) (Ban, error) {
	k, err := CanonicalAddr(addr)
	if err != nil {
		return Ban{}, err
	}
	var removed Ban
	_, err = editFile(path, func(bans map[string]Ban) (bool, error) {
		b, ok := bans[k]
		if !ok {
			return false, fmt.Errorf("%s: %w", k, ErrNoBan)
		}
		removed = b
		delete(bans, k)
		return true, nil
	})
	return removed, err
}

// File keeps a Defender's bans in a bans file: every ban that starts or is
// lifted is written to it, and changes other processes make to it
// (`syncer ban remove`) are applied to the Defender. Create it with
// KeepFile.
type File struct {
	d    *Defender
	path string
	log  *slog.Logger
	stop func()

	mu       sync.Mutex
	lastSeen map[string]Ban // the file's bans as last read or written
}

// KeepFile loads the bans recorded at path into d and keeps the file and
// d in step until Close. log receives write failures; nil discards.
func KeepFile(d *Defender, path string, log *slog.Logger) (*File, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &File{d: d, path: path, log: log.With("bans_file", path), lastSeen: map[string]Ban{}}
	if err := f.Reload(); err != nil {
		return nil, err
	}
	// Bans made before the file was kept (none, in syncer serve) are
	// written at once.
	for _, b := range d.Bans() {
		f.write(Event{Ban: b})
	}
	f.stop = d.OnChange(f.write)
	return f, nil
}

// write records one change in the file. A change the file already holds
// (one Reload just applied) writes nothing. f.mu is held from the edit to
// lastSeen's update, so that a Reload never pairs a file read before this
// change with a lastSeen that has it (it would lift the new ban).
func (f *File) write(ev Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	bans, err := editFile(f.path, func(bans map[string]Ban) (bool, error) {
		old, ok := bans[ev.Ban.Addr]
		if ev.Lifted {
			delete(bans, ev.Ban.Addr)
			return ok, nil
		}
		if ok && old.Until.Equal(ev.Ban.Until) {
			return false, nil
		}
		bans[ev.Ban.Addr] = ev.Ban
		return true, nil
	})
	if err != nil {
		f.log.Error("bans file not updated", "addr", ev.Ban.Addr, "lifted", ev.Lifted, "err", err)
		return
	}
	f.lastSeen = bans
}

// Reload applies the file to the Defender: bans that appeared in it start,
// bans that disappeared from it since it was last read are lifted (bans
// the Defender started and has not written yet are kept).
func (f *File) Reload() error {
	// Read under f.mu: see write. Not held below, where Ban and Unban
	// call write.
	f.mu.Lock()
	bans, err := readFile(f.path, time.Now())
	if err != nil {
		f.mu.Unlock()
		return err
	}
	prev := f.lastSeen
	f.lastSeen = bans
	f.mu.Unlock()
	for addr := range prev {
		if _, ok := bans[addr]; !ok {
			if f.d.Unban(addr) {
				f.log.Info("ban lifted (bans file)", "addr", addr)
			}
		}
	}
	for addr, b := range bans {
		if until, ok := f.d.Banned(addr); ok && until.Equal(b.Until) {
			continue
		}
		if _, ok := prev[addr]; ok {
			continue // the file's older view of a ban the Defender renewed
		}
		_ = f.d.Ban(addr, b.Until, b.Reason)
	}
	return nil
}

// Watch re-reads the file about every second until ctx ends.
func (f *File) Watch(ctx context.Context) {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := f.Reload(); err != nil {
				if err.Error() != lastErr {
					f.log.Error("bans file not reloaded; keeping the bans", "err", err)
					lastErr = err.Error()
				}
				continue
			}
			lastErr = ""
		}
	}
}

// Close stops writing changes to the file.
func (f *File) Close() {
	if f.stop != nil {
		f.stop()
	}
}
