package accounts

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/fsnotify/fsnotify"
	"github.com/syncer-dev/syncer/internal/statelock"
	"golang.org/x/crypto/bcrypt"
)

// FileName is the name of the users file inside a state directory
// (`syncer serve --state DIR` and `syncer user --state DIR` use
// DIR/users.yaml).
const FileName = "users.yaml"

// PasswordCost is the bcrypt cost of the hashes Add and SetPassword write.
const PasswordCost = 10

// emptySum is the checksum of a missing (or empty) users file.
var emptySum = sha256.Sum256(nil)

// lockTimeout bounds how long a change waits for another process that holds
// the users file lock, so that a stuck process cannot hang `syncer user`.
const lockTimeout = 15 * time.Second

// watchDebounce gathers the burst of events of one save into one reload.
const watchDebounce = 100 * time.Millisecond

// watchPollInterval is how often Watch re-reads the file when fsnotify is
// not available (directory missing, watch limit reached).
const watchPollInterval = 2 * time.Second

// DB is the set of FTP accounts, kept in a YAML users file (or only in
// memory, see New). It is safe for concurrent use, also by several
// processes sharing one file: every change locks the file, re-reads it,
// applies the change and writes it back atomically, so concurrent changes
// never lose an account.
type DB struct {
	path string // "" for an in-memory DB
	cost int    // bcrypt cost of new hashes; tests lower it

	// dummyHash is compared against for unknown names (see Authenticate).
	dummyHash func() []byte

	// writeMu serialises changes inside this process; the file lock
	// serialises them between processes.
	writeMu sync.Mutex

	auth *authCache // passwords bcrypt has verified (authcache.go)

	mu    sync.RWMutex
	users map[string]User // by name
	sum   [sha256.Size]byte
}

// New returns an empty in-memory DB that is never saved; Reload
// and Watch do nothing on it.
func New() *DB {
	return newDB("")
}

func newDB(path string) *DB {
	db := &DB{path: path, cost: PasswordCost, users: map[string]User{}, auth: newAuthCache()}
	db.dummyHash = sync.OnceValue(func() []byte {
		secret := make([]byte, 32)
		_, _ = rand.Read(secret)
		h, err := bcrypt.GenerateFromPassword(secret, db.cost)
		if err != nil {
			panic("accounts: bcrypt of a random secret failed: " + err.Error())
		}
		return h
	})
	return db
}

// Open loads the users file at path. A missing file is an empty DB;
// the file (and its directory) is created, mode 0600, on the first change.
// Malformed YAML, unknown keys (such as a plain-text `password:`),
// duplicate names, bad names, bad permission letters, bad homes or a
// password_hash that is not a bcrypt hash are errors that wrap
// ErrUsersFile and name the file, the user and the problem.
func Open(path string) (*DB, error) {
	if path == "" {
		return nil, errors.New("open users file: empty path")
	}
	db := newDB(filepath.Clean(path))
	users, data, err := readUsersFile(db.path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	db.users = users
	db.sum = sha256.Sum256(data)
	return db, nil
}

// Path returns the users file, or "" for an in-memory DB.
func (db *DB) Path() string { return db.path }

// Authenticate returns the account name if password is its password. An
// unknown name and a wrong password both give ErrServerAuth, and both cost one
// bcrypt comparison, so that response times do not reveal which names
// exist.
func (db *DB) Authenticate(name, password string) (User, error) {
	u, ok := db.Lookup(name)
	if !ok {
		// Spend the same work as for a real account: no timing oracle.
		_ = bcrypt.CompareHashAndPassword(db.dummyHash(), []byte(password))
		return User{}, ErrServerAuth
	}
	if db.auth.verified(u.Name, u.PasswordHash, password) {
		return u, nil
	}
	ok = db.auth.verify(u.Name, u.PasswordHash, password, func() bool {
		return bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(password)) == nil
	})
	if !ok {
		return User{}, ErrServerAuth
	}
	return u, nil
}

// Lookup returns the account called name.
func (db *DB) Lookup(name string) (User, bool) {
	db.mu.RLock()
	defer db.mu.RUnlock()
	u, ok := db.users[name]
	return u, ok
}

// List returns every account, sorted by name.
func (db *DB) List() []User {
	db.mu.RLock()
	defer db.mu.RUnlock()
	return sortedUsers(db.users)
}

// Add creates account u with password. Empty fields get defaults: Perm
// DefaultAgentPerm (DefaultAdminPerm for an admin), Home "/NAME" ("/" for an
// admin). u.PasswordHash is ignored; the password is stored as a bcrypt
// hash of cost PasswordCost. Invalid settings wrap ErrInvalidUser; a taken
// name gives ErrUserExists. A file-backed DB saves before returning.
func (db *DB) Add(u User, password string) error {
	u, err := normalizeUser(u)
	if err != nil {
		return err
	}
	db.mu.RLock()
	err = checkNameFree(db.users, u.Name)
	db.mu.RUnlock()
	if err != nil {
		// Fail before the slow hash; modify checks again under the lock.
		return fmt.Errorf("add user %q: %w", u.Name, err)
	}
	hash, err := hashPassword(password, db.cost)
	if err != nil {
		return fmt.Errorf("add user %q: %w", u.Name, err)
	}
	u.PasswordHash = hash
	return db.modify(func(users map[string]User) error {
		if err := checkNameFree(users, u.Name); err != nil {
			return fmt.Errorf("add user %q: %w", u.Name, err)
		}
		users[u.Name] = u
		return nil
	})
}

// Update replaces the settings of an existing account (perm, admin, home,
// rates) and keeps its password hash; empty fields get the defaults Add
// gives. ErrNoUser if there is no such account.
func (db *DB) Update(u User) error {
	u, err := normalizeUser(u)
	if err != nil {
		return err
	}
	return db.modify(func(users map[string]User) error {
		old, ok := users[u.Name]
		if !ok {
			return fmt.Errorf("update user %q: %w", u.Name, ErrNoUser)
		}
		u.PasswordHash = old.PasswordHash
		users[u.Name] = u
		return nil
	})
}

// Remove deletes an account; ErrNoUser if there is none. What the account
// archived stays in the archive.
func (db *DB) Remove(name string) error {
	return db.modify(func(users map[string]User) error {
		if _, ok := users[name]; !ok {
			return fmt.Errorf("remove user %q: %w", name, ErrNoUser)
		}
		delete(users, name)
		return nil
	})
}

// SetPassword replaces an account's password; ErrNoUser if there is no
// such account, ErrInvalidUser for an unusable password.
func (db *DB) SetPassword(name, password string) error {
	if _, ok := db.Lookup(name); !ok {
		return fmt.Errorf("set password of %q: %w", name, ErrNoUser)
	}
	hash, err := hashPassword(password, db.cost)
	if err != nil {
		return fmt.Errorf("set password of %q: %w", name, err)
	}
	return db.modify(func(users map[string]User) error {
		u, ok := users[name]
		if !ok {
			return fmt.Errorf("set password of %q: %w", name, ErrNoUser)
		}
		u.PasswordHash = hash
		users[name] = u
		return nil
	})
}

// Reload re-reads the users file. On any error (including a file that has
// disappeared) it keeps the accounts it had and returns the error: a
// broken or half-edited file must not lock every agent out.
func (db *DB) Reload() error {
	_, err := db.reload(false)
	return err
}

// reload re-reads the file and reports whether the accounts changed. With
// onlyIfChanged, content identical to what was last loaded or saved is not
// parsed again.
func (db *DB) reload(onlyIfChanged bool) (bool, error) {
	if db.path == "" {
		return false, nil
	}
	data, err := readShared(db.path)
	if err != nil {
		db.mu.RLock()
		neverExisted := db.sum == emptySum
		db.mu.RUnlock()
		if onlyIfChanged && neverExisted && errors.Is(err, fs.ErrNotExist) {
			return false, nil // still no file, still no accounts: nothing changed
		}
		return false, fmt.Errorf("reload users file: %w (keeping the accounts loaded before)", err)
	}
	sum := sha256.Sum256(data)
	db.mu.RLock()
	same := sum == db.sum
	db.mu.RUnlock()
	if same && onlyIfChanged {
		return false, nil
	}
	users, err := parseUsers(db.path, data)
	if err != nil {
		return false, fmt.Errorf("reload: %w (keeping the accounts loaded before)", err)
	}
	db.mu.Lock()
	db.users, db.sum = users, sum
	db.mu.Unlock()
	return !same, nil
}

// Watch reloads the users file whenever it changes, until ctx is done. It
// watches the file's directory, so an atomic rename (as `syncer user add`
// does) is seen, and falls back to polling every few seconds when the
// directory cannot be watched. A reload error is logged and the previous
// accounts are kept; changed (if not nil) is called after every reload that
// changed the accounts. On an in-memory DB Watch returns at once.
func (db *DB) Watch(ctx context.Context, log *slog.Logger, changed func()) {
	if db.path == "" {
		return
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("users_file", db.path)
	check := db.watchCheck(log, changed)

	w, err := fsnotify.NewWatcher()
	if err == nil {
		if err = w.Add(filepath.Dir(db.path)); err != nil {
			w.Close()
		}
	}
	if err != nil {
		log.Warn("cannot watch the users file directory; polling it instead", "err", err, "interval", watchPollInterval)
		db.poll(ctx, check)
		return
	}
	defer w.Close()

	base := filepath.Base(db.path)
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	defer debounce.Stop()
	check() // catch a change made before the watch started
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				log.Warn("users file watch ended; polling instead")
				db.poll(ctx, check)
				return
			}
			if filepath.Base(ev.Name) == base {
				debounce.Reset(watchDebounce)
			}
		case err, ok := <-w.Errors:
			if !ok {
				log.Warn("users file watch ended; polling instead")
				db.poll(ctx, check)
				return
			}
			// An overflow may have dropped the event we wait for.
			log.Warn("users file watch error; checking the file", "err", err)
			debounce.Reset(watchDebounce)
		case <-debounce.C:
			check()
		}
	}
}

// watchCheck returns the function Watch calls to reload on a possible
// change. The same failure is logged once, not on every event or poll.
func (db *DB) watchCheck(log *slog.Logger, changed func()) func() {
	var lastErr string
	return func() {
		ok, err := db.reload(true)
		if err != nil {
			if err.Error() != lastErr {
				log.Error("users file not reloaded", "err", err)
				lastErr = err.Error()
			}
			return
		}
		lastErr = ""
		if ok {
			log.Info("users file reloaded", "users", len(db.List()))
			if changed != nil {
				changed()
			}
		}
	}
}

// poll calls check every watchPollInterval until ctx is done.
func (db *DB) poll(ctx context.Context, check func()) {
	t := time.NewTicker(watchPollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			check()
		}
	}
}

// modify applies fn to the current accounts and saves the result. For a
// file-backed DB it holds the file lock, re-reads the file so that changes
// made by other processes are kept, and refuses to touch a file it cannot
// parse (an operator's hand edit must not be overwritten).
func (db *DB) modify(fn func(users map[string]User) error) error {
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	if db.path == "" {
		db.mu.RLock()
		users := make(map[string]User, len(db.users)+1)
		for k, v := range db.users {
			users[k] = v
		}
		db.mu.RUnlock()
		if err := fn(users); err != nil {
			return err
		}
		db.mu.Lock()
		db.users = users
		db.mu.Unlock()
		return nil
	}

	dir := filepath.Dir(db.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create users file directory: %w", err)
	}
	unlock, err := statelock.File(db.path+".lock", lockTimeout)
	if err != nil {
		return err
	}
	defer unlock()

	users, _, err := readUsersFile(db.path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := fn(users); err != nil {
		return err
	}
	data, err := encodeUsers(users)
	if err != nil {
		return fmt.Errorf("encode users file %s: %w", db.path, err)
	}
	if err := writeFileAtomic(db.path, data); err != nil {
		return err
	}
	db.mu.Lock()
	db.users, db.sum = users, sha256.Sum256(data)
	db.mu.Unlock()
	return nil
}

// invalidUserError is a rejected account setting; it wraps ErrInvalidUser.
type invalidUserError struct{ msg string }

func (e *invalidUserError) Error() string { return e.msg }
func (e *invalidUserError) Unwrap() error { return ErrInvalidUser }

func invalidf(format string, args ...any) error {
	return &invalidUserError{fmt.Sprintf(format, args...)}
}

// ValidateName checks an account name: 1 to 64 characters of
// [A-Za-z0-9._-], not starting with '.' or '-'. The rule is strict because
// the name becomes a top-level archive directory and an agent id: it must
// be a single safe path element ('.', '..' and '/' are impossible) that no
// shell or URL mangles, and must not hide as a dot directory (the agent's
// own metadata lives in .syncer). It is stricter than the archive's own
// rule for agent ids (archive.CheckAgentID), which every valid name meets.
// Errors wrap ErrInvalidUser.
func ValidateName(name string) error {
	if name == "" {
		return invalidf("invalid user name: empty")
	}
	if len(name) > 64 {
		return invalidf("invalid user name: longer than 64 characters")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return invalidf("invalid user name %q: only letters A-Z a-z, digits, '.', '_' and '-' are allowed", name)
		}
	}
	if name[0] == '.' || name[0] == '-' {
		return invalidf("invalid user name %q: must not start with '.' or '-'", name)
	}
	return nil
}

// permLetters are pyftpdlib's permission letters.
const permLetters = "elradfmwMT"

// ValidatePerm checks a permission string: only letters of "elradfmwMT"
// (e cwd, l list, r retrieve, a append, d delete, f rename, m mkdir,
// w store, M chmod, T set mtime), each at most once. The empty string is
// valid (no permissions). Errors wrap ErrInvalidUser.
func ValidatePerm(perm string) error {
	seen := map[rune]bool{}
	for _, c := range perm {
		if !strings.ContainsRune(permLetters, c) {
			return invalidf("invalid permissions %q: unknown letter %q (letters are %s)", perm, c, permLetters)
		}
		if seen[c] {
			return invalidf("invalid permissions %q: letter %q given twice", perm, c)
		}
		seen[c] = true
	}
	return nil
}

// validateHome checks an account's home: a clean absolute archive path.
func validateHome(home string, admin bool) error {
	switch {
	case !strings.HasPrefix(home, "/"):
		return invalidf("invalid home %q: must be an absolute archive path such as /node17", home)
	case !utf8.ValidString(home) || strings.ContainsFunc(home, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return invalidf("invalid home %q: control characters or bad UTF-8", home)
	case path.Clean(home) != home:
		return invalidf("invalid home %q: not a clean path (want %q)", home, path.Clean(home))
	case home == "/" && !admin:
		// An agent confined to "/" would not be confined at all: the
		// whole archive would be its home. Only admins may have that.
		return invalidf("invalid home \"/\": only admin accounts may have the whole archive as home")
	}
	return nil
}

// normalizeUser validates u and fills in default perm and home.
func normalizeUser(u User) (User, error) {
	if err := ValidateName(u.Name); err != nil {
		return u, err
	}
	if u.Perm == "" {
		u.Perm = DefaultAgentPerm
		if u.Admin {
			u.Perm = DefaultAdminPerm
		}
	}
	if err := ValidatePerm(u.Perm); err != nil {
		return u, err
	}
	if u.Home == "" {
		u.Home = "/" + u.Name
		if u.Admin {
			u.Home = "/"
		}
	}
	if err := validateHome(u.Home, u.Admin); err != nil {
		return u, err
	}
	if u.MaxUploadRate < 0 || u.MaxDownloadRate < 0 {
		return u, invalidf("invalid rate: must not be negative")
	}
	return u, nil
}

// checkNameFree refuses a name that is taken, also in another case.
func checkNameFree(users map[string]User, name string) error {
	if _, ok := users[name]; ok {
		return ErrUserExists
	}
	for other := range users {
		if strings.EqualFold(other, name) {
			return fmt.Errorf("%w (as %q; names differing only in case would clash as archive directories)", ErrUserExists, other)
		}
	}
	return nil
}

// ValidatePassword checks that password can be used: not empty, at most 72
// bytes (bcrypt ignores the rest), and without CR, LF or NUL, which the FTP
// PASS command cannot carry. The error never contains the password; it
// wraps ErrInvalidUser.
func ValidatePassword(password string) error {
	switch {
	case password == "":
		return invalidf("invalid password: empty")
	case len(password) > 72:
		return invalidf("invalid password: longer than 72 bytes (bcrypt would ignore the rest)")
	case strings.ContainsAny(password, "\r\n\x00"):
		return invalidf("invalid password: contains a line break or NUL, which FTP cannot send")
	}
	return nil
}

// hashPassword validates and bcrypt-hashes a password.
func hashPassword(password string, cost int) (string, error) {
	if err := ValidatePassword(password); err != nil {
		return "", err
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}
