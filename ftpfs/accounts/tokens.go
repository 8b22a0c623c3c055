package accounts

// API tokens: bearer tokens for the web viewer and its JSON API, so that
// scripts need no FTP password. The tokens file keeps only a SHA-256 of
// each token.

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/syncer-dev/syncer/internal/archive"
	"github.com/syncer-dev/syncer/internal/statelock"
)

// TokensFileName is the tokens file inside a state directory (`syncer
// serve --state DIR` and `syncer token --state DIR` use DIR/tokens.json).
const TokensFileName = "tokens.json"

// tokenPrefix starts every token, so that secret scanners and people
// recognise one.
const tokenPrefix = "syncer_"

// Errors of the tokens API.
var (
	// ErrTokenExists is returned by Tokens.Add for a name already taken.
	ErrTokenExists = errors.New("token already exists")
	// ErrNoToken is returned by Tokens.Remove for a name that is not there.
	ErrNoToken = errors.New("no such token")
	// ErrTokensFile wraps every problem with the content of a tokens file.
	ErrTokensFile = errors.New("invalid tokens file")
)

// Token is one API token as the tokens file keeps it: never the token
// itself, only its SHA-256.
type Token struct {
	// Name identifies the token to operators (`syncer token list|remove`);
	// it follows the rules of account names (ValidateName).
	Name string `json:"name"`
	// Agent, if set, confines the token to that agent's tree (/Agent);
	// empty reads the whole archive.
	Agent   string    `json:"agent,omitempty"`
	Created time.Time `json:"created"`
	// SHA256 is the hex SHA-256 of the token.
	SHA256 string `json:"sha256"`
}

// Tokens is a tokens file. Verify re-reads the file whenever it changed,
// so tokens added or removed by another process (`syncer token`) apply to
// the next request, without a restart. Changes lock the file (as the users
// file is locked), re-read it and replace it atomically. Safe for
// concurrent use.
type Tokens struct {
	path string

	mu     sync.Mutex
	read   os.FileInfo // of the file last read, nil if missing
	loaded bool
	byHash map[string]Token // by SHA256
}

// OpenTokens reads the tokens file at path; a missing file has no tokens
// (it is created, mode 0600, by the first Add). A malformed file is an
// error wrapping ErrTokensFile that names it.
func OpenTokens(path string) (*Tokens, error) {
	if path == "" {
		return nil, errors.New("open tokens file: empty path")
	}
	t := &Tokens{path: filepath.Clean(path), byHash: map[string]Token{}}
	if err := t.refresh(); err != nil {
		return nil, err
	}
	return t, nil
}

// Path is the tokens file.
func (t *Tokens) Path() string { return t.path }

// tokensFile is the file's format.
type tokensFile struct {
	Comment string  `json:"#,omitempty"`
	Tokens  []Token `json:"tokens"`
}

const tokensFileComment = `syncer API tokens: manage them with "syncer token add|list|remove"; only SHA-256 hashes are kept`

// readTokensFile parses the file; missing is no tokens.
func readTokensFile(p string) (map[string]Token, error) {
	data, err := readShared(p)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]Token{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read tokens file: %w", err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w %s: %s", ErrTokensFile, p, fmt.Sprintf(format, args...))
	}
	var f tokensFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if len(bytes.TrimSpace(data)) > 0 {
		if err := dec.Decode(&f); err != nil {
			return nil, bad("malformed JSON: %v", err)
		}
	}
	byName := map[string]Token{}
	for i, tok := range f.Tokens {
		if err := checkToken(tok); err != nil {
			return nil, bad("token #%d: %v", i+1, err)
		}
		if _, dup := byName[tok.Name]; dup {
			return nil, bad("token %q given twice", tok.Name)
		}
		byName[tok.Name] = tok
	}
	return byName, nil
}

func checkToken(tok Token) error {
	if err := ValidateName(tok.Name); err != nil {
		return err
	}
	if tok.Agent != "" {
		if err := archive.CheckAgentID(tok.Agent); err != nil {
			return err
		}
	}
	if b, err := hex.DecodeString(tok.SHA256); err != nil || len(b) != sha256.Size {
		return fmt.Errorf("token %q: sha256 is not a hex SHA-256", tok.Name)
	}
	return nil
}

// refresh re-reads the file if it changed since it was last read; on an
// error the tokens read before stay.
func (t *Tokens) refresh() error {
	st, err := os.Stat(t.path)
	if err != nil {
		st = nil
	}
	t.mu.Lock()
	same := t.loaded && sameFile(st, t.read)
	t.mu.Unlock()
	if same {
		return nil
	}
	byName, err := readTokensFile(t.path)
	if err != nil {
		return fmt.Errorf("%w (keeping the tokens loaded before)", err)
	}
	byHash := make(map[string]Token, len(byName))
	for _, tok := range byName {
		byHash[tok.SHA256] = tok
	}
	t.mu.Lock()
	t.byHash, t.read, t.loaded = byHash, st, true
	t.mu.Unlock()
	return nil
}

// sameFile reports whether a and b (nil: missing) are the same content
// as far as a stat tells: the same file (an atomic replacement is a new
// one), size and modification time.
func sameFile(a, b os.FileInfo) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// Verify returns the token secret is, if it is one of the file's. It
// re-reads the file first if it changed; err reports a file that could
// not be re-read (the tokens read before are used).
func (t *Tokens) Verify(secret string) (tok Token, ok bool, err error) {
	err = t.refresh()
	if !strings.HasPrefix(secret, tokenPrefix) || len(secret) > 256 {
		return Token{}, false, err
	}
	sum := sha256.Sum256([]byte(secret))
	t.mu.Lock()
	tok, ok = t.byHash[hex.EncodeToString(sum[:])]
	t.mu.Unlock()
	return tok, ok, err
}

// List returns the tokens in the file, sorted by name.
func (t *Tokens) List() ([]Token, error) {
	byName, err := readTokensFile(t.path)
	if err != nil {
		return nil, err
	}
	return sortedTokens(byName), nil
}

func sortedTokens(byName map[string]Token) []Token {
	list := make([]Token, 0, len(byName))
	for _, tok := range byName {
		list = append(list, tok)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	return list
}

// Add makes a token called name, confined to agent's tree unless agent is
// empty, and returns it: this is the only time the token is seen, the
// file keeps its SHA-256. Errors: ErrTokenExists, ErrInvalidUser (a bad
// name or agent id), ErrTokensFile.
func (t *Tokens) Add(name, agent string) (secret string, tok Token, err error) {
	if err := ValidateName(name); err != nil {
		return "", Token{}, fmt.Errorf("add token: %w", err)
	}
	if agent != "" {
		if err := archive.CheckAgentID(agent); err != nil {
			return "", Token{}, fmt.Errorf("add token %q: %w", name, invalidf("invalid %v", err))
		}
	}
	raw := make([]byte, 32) // 256 bits: not guessable, so a hash without salt or stretching is enough
	if _, err := rand.Read(raw); err != nil {
		return "", Token{}, fmt.Errorf("add token %q: %w", name, err)
	}
	secret = tokenPrefix + base64.RawURLEncoding.EncodeToString(raw)
	sum := sha256.Sum256([]byte(secret))
	tok = Token{Name: name, Agent: agent, Created: time.Now().UTC().Truncate(time.Second), SHA256: hex.EncodeToString(sum[:])}
	err = t.modify(func(byName map[string]Token) error {
		if _, ok := byName[name]; ok {
			return fmt.Errorf("add token %q: %w", name, ErrTokenExists)
		}
		byName[name] = tok
		return nil
	})
	if err != nil {
		return "", Token{}, err
	}
	return secret, tok, nil
}

// Remove deletes the token called name; ErrNoToken if there is none.
func (t *Tokens) Remove(name string) (Token, error) {
	var old Token
	err := t.modify(func(byName map[string]Token) error {
		var ok bool
		if old, ok = byName[name]; !ok {
			return fmt.Errorf("remove token %q: %w", name, ErrNoToken)
		}
		delete(byName, name)
		return nil
	})
	return old, err
}

// modify applies fn to the file's tokens under the file lock and saves
// the result atomically. A file it cannot parse is left alone.
func (t *Tokens) modify(fn func(byName map[string]Token) error) error {
	if err := os.MkdirAll(filepath.Dir(t.path), 0o700); err != nil {
		return fmt.Errorf("create tokens file directory: %w", err)
	}
	unlock, err := statelock.File(t.path+".lock", lockTimeout)
	if err != nil {
		return err
	}
	defer unlock()
	byName, err := readTokensFile(t.path)
	if err != nil {
		return err
	}
	if err := fn(byName); err != nil {
		return err
	}
	data, err := json.MarshalIndent(tokensFile{Comment: tokensFileComment, Tokens: sortedTokens(byName)}, "", "  ")
	if err != nil {
		return fmt.Errorf("encode tokens file: %w", err)
	}
	if err := writeFileAtomicAs(t.path, append(data, '\n'), "tokens file"); err != nil {
		return err
	}
	return t.refresh()
}
