package tier

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/syncer-dev/syncer/internal/archive"
)

// Superseded moves the record of the file at p ("/agent/rel") to version
// ("/agent/rel.superseded-TIME"), where the FTP server has just renamed it
// before a new upload from the start takes its place: the segments and
// the evicted offset belong to the renamed file. The historian calls it
// from the FTP server's upload events.
func (t *Tier) Superseded(p, version string) {
	agent, rel := splitPath(strings.TrimPrefix(p, "/"))
	vagent, vrel := splitPath(strings.TrimPrefix(version, "/"))
	if agent != vagent || rel == "" || vrel == "" {
		return
	}
	t.evictMu.Lock()
	defer t.evictMu.Unlock()
	rec, ok, err := t.cat.get(agent, rel)
	if err != nil || !ok {
		return
	}
	if err := t.moveRec(&rec, vrel); err != nil {
		t.log.Error("tier: cannot move the record of a superseded file", "agent", agent, "path", rel, "version", vrel, "err", err)
	}
	// Segment names keep the path they were sealed under: until a catalog
	// snapshot says where they belong now, a restore from the bucket
	// alone would give them to the new file. Ship one at the next pass.
	t.snapshotDue.Store(true)
}

// moveRec moves rec to rel (with its seal intent); evictMu is held.
func (t *Tier) moveRec(rec *fileRec, rel string) error {
	from := rec.Path
	rec.Path = rel
	if err := t.cat.put(rec); err != nil {
		rec.Path = from
		return err
	}
	if n, nonce, ok := t.intent(&fileRec{Agent: rec.Agent, Path: from}); ok {
		_ = t.setIntent(rec, n, nonce)
		_ = t.cat.db.Delete(pendingKey(rec.Agent, from), nil)
	}
	return t.cat.del(rec.Agent, from)
}

// reattach handles a record whose file was replaced without Superseded
// (a crash between the rename and the event): the sealed file is the
// version beside it with the record's inode; the record moves there.
func (t *Tier) reattach(rec *fileRec, ino uint64) error {
	t.evictMu.Lock()
	defer t.evictMu.Unlock()
	dir, base := path.Split(rec.Path)
	des, err := fs.ReadDir(t.root.FS(), path.Clean(rec.Agent+"/"+dir))
	if err != nil {
		return err
	}
	for _, de := range des {
		if !strings.HasPrefix(de.Name(), base+archive.VersionMarker) {
			continue
		}
		if vi, ok := t.localIno(rec.Agent, dir+de.Name()); ok && vi == rec.Ino {
			t.snapshotDue.Store(true)
			return t.moveRec(rec, dir+de.Name())
		}
	}
	return fmt.Errorf("no version of it holds inode %d (the file now there is inode %d)", rec.Ino, ino)
}

func (t *Tier) localIno(agent, rel string) (uint64, bool) {
	fi, err := t.root.Stat(agent + "/" + rel)
	if err != nil {
		return 0, false
	}
	return fileIno(fi)
}

func inode(f *os.File) (uint64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if ino, ok := fileIno(fi); ok {
		return ino, nil
	}
	return 0, errors.New("no inode numbers here")
}
