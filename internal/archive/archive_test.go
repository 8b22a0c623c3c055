package archive

import (
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"
)

func TestAgentIDs(t *testing.T) {
	for _, id := range []string{"node1", "web-01.example", "Ünïcode", "caf\xe9"} {
		if err := CheckAgentID(id); err != nil {
			t.Errorf("CheckAgentID(%q) = %v, want nil", id, err)
		}
	}
	for _, id := range []string{"", ".", "..", "a/b", `a\b`, "a\x00b", "a\nb", "a\rb", MetaDir} {
		if err := CheckAgentID(id); err == nil || !strings.Contains(err.Error(), "must be one path segment") {
			t.Errorf("CheckAgentID(%q) = %v, want one path segment", id, err)
		}
	}
}

func TestValidRel(t *testing.T) {
	for _, rel := range []string{"", "a.log", "app/a.log", "caf\xe9/\xff.log", ".syncer/agent.json", "a/.b/c"} {
		if !ValidRel(rel) {
			t.Errorf("ValidRel(%q) = false", rel)
		}
	}
	for _, rel := range []string{"/a", "a/", "a//b", "./a", "a/./b", "a/..", "../a", "a\x00b", "."} {
		if ValidRel(rel) {
			t.Errorf("ValidRel(%q) = true", rel)
		}
	}
}

func TestMetaNames(t *testing.T) {
	for p, want := range map[string]bool{
		"/node1/.syncer/agent.json": true, "node1/.syncer/agent.json": true,
		"/node1/.syncer/commits/x.json": false, "/node1/a/.syncer/agent.json": false,
		"/.syncer/agent.json": false, "/node1/agent.json": false,
	} {
		if got := IsAgentInfo(p); got != want {
			t.Errorf("IsAgentInfo(%q) = %v", p, got)
		}
	}
	for rel, want := range map[string]bool{".syncer": true, ".syncer/x": true, ".syncerx": false, "a/.syncer": false} {
		if got := IsMeta(rel); got != want {
			t.Errorf("IsMeta(%q) = %v", rel, got)
		}
	}
	at := time.Date(2026, 12, 3, 6, 30, 1, 5, time.FixedZone("x", 3600))
	name := CommitRecordName(at, 42)
	if name != "20261203T053001.000000005Z-000042.json" {
		t.Errorf("CommitRecordName = %q", name)
	}
	if got, ok := CommitRecordOf(CommitsDir + "/" + name); !ok || got != name {
		t.Errorf("CommitRecordOf(commits/%s) = %q, %v", name, got, ok)
	}
	for _, rel := range []string{"agent.json", "commits/a/b.json", "commits/x.txt", "commits/", "commits/.json/.."} {
		if _, ok := CommitRecordOf(rel); ok {
			t.Errorf("CommitRecordOf(%q) = ok", rel)
		}
	}
}

// TestCommitRecordRoundTrip: what the agent streams is what the historian
// reads, names byte-exact whatever their encoding.
func TestCommitRecordRoundTrip(t *testing.T) {
	files := []struct{ local, remote string }{
		{"a.log", "a.log"},
		{"caf\xe9.log", "caf\xe9.log"},
		{"app.log.1", "app.log"},
		{"r\xe9sum\xe9.log.1", "r\xe9sum\xe9.log"},
		{"ok.log", "caf\xe9.log"},
	}
	var entries []string
	for i, f := range files {
		var cf CommitFile
		cf.SetPaths(f.local, f.remote)
		cf.Size, cf.SHA256 = int64(i), strings.Repeat("ab", 32)
		b, err := json.Marshal(cf)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, string(b))
	}
	at := time.Date(2026, 12, 3, 6, 30, 0, 123, time.UTC)
	b, err := io.ReadAll(NewCommitRecordReader("node\"1", 7, at, strings.NewReader(strings.Join(entries, ",\n"))))
	if err != nil {
		t.Fatal(err)
	}
	var rec CommitRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if rec.Agent != "node\"1" || rec.Seq != 7 || !rec.Time.Equal(at) || len(rec.Files) != len(files) {
		t.Fatalf("record %+v", rec)
	}
	for i, cf := range rec.Files {
		got, err := cf.Archived()
		if err != nil || got != files[i].remote {
			t.Errorf("file %d: Archived() = %q, %v; want %q", i, got, err, files[i].remote)
		}
		if cf.Size != int64(i) {
			t.Errorf("file %d: size %d", i, cf.Size)
		}
	}
	bad := CommitFile{Path: "x", PathB64: "!!"}
	if _, err := bad.Archived(); err == nil {
		t.Error("Archived() of a bad path_b64: no error")
	}
}

func TestVersionNames(t *testing.T) {
	at := time.Date(2026, 11, 24, 12, 0, 5, 999, time.FixedZone("x", -3600))
	for n, want := range map[int]string{1: "a.log.superseded-20261124T130005Z", 2: "a.log.superseded-20261124T130005Z-2", 13: "a.log.superseded-20261124T130005Z-13"} {
		got := VersionName("a.log", at, n)
		if got != want {
			t.Errorf("VersionName(%d) = %q, want %q", n, got, want)
		}
		base, vt, ok := VersionOf(got)
		if !ok || base != "a.log" || !vt.Equal(at.Truncate(time.Second)) {
			t.Errorf("VersionOf(%q) = %q, %v, %v", got, base, vt, ok)
		}
	}
	// A version of a version keeps the outer marker.
	if base, _, ok := VersionOf("a.superseded-20260101T000000Z.superseded-20260102T000000Z"); !ok || base != "a.superseded-20260101T000000Z" {
		t.Errorf("nested version: %q %v", base, ok)
	}
	for _, name := range []string{"a.log", ".superseded-20261124T130005Z", "a.superseded-2026", "a.superseded-20261124T130005Zx",
		"a.superseded-20261124T130005Z-", "a.superseded-20261124T130005Z-1", "a.superseded-20261124T130005Z-02", "a.superseded-20261324T130005Z"} {
		if _, _, ok := VersionOf(name); ok {
			t.Errorf("VersionOf(%q) = ok", name)
		}
	}
}

// FuzzNames: whatever bytes a name holds, the commit record carries it
// exactly, and a version name parses back to its base and second.
func FuzzNames(f *testing.F) {
	f.Add("a.log", "a.log", int64(0), 1)
	f.Add("caf\xe9.log.1", "caf\xe9.log", int64(1764700000), 2)
	f.Add("\xff\xfe", "x.superseded-20260101T000000Z", int64(-1), 13)
	f.Fuzz(func(t *testing.T, local, remote string, unix int64, n int) {
		var cf CommitFile
		cf.SetPaths(local, remote)
		b, err := json.Marshal(cf)
		if err != nil {
			t.Fatal(err)
		}
		var back CommitFile
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		want := remote
		if want == "" {
			want = local
		}
		if got, err := back.Archived(); err != nil || got != want {
			t.Fatalf("SetPaths(%q, %q): Archived() = %q, %v", local, remote, got, err)
		}
		if want == "" || n < 1 || n > 1000 || unix < 0 || unix > 1<<40 {
			return
		}
		at := time.Unix(unix, 0)
		v := VersionName(want, at, n)
		if base, vt, ok := VersionOf(v); !ok || base != want || !vt.Equal(at) {
			t.Fatalf("VersionOf(VersionName(%q, %v, %d)) = %q, %v, %v", want, at, n, base, vt, ok)
		}
	})
}
