package accounts

// The users file format: parsing with errors that name the file, the user
// and the problem, canonical encoding, and atomic replacement.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
	"gopkg.in/yaml.v3"
)

// readUsersFile reads and parses the users file. A missing file returns
// empty accounts, no data and an error wrapping fs.ErrNotExist.
func readUsersFile(p string) (map[string]User, []byte, error) {
	data, err := readShared(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return map[string]User{}, nil, fmt.Errorf("users file %s: %w", p, err)
		}
		return nil, nil, fmt.Errorf("read users file: %w", err)
	}
	users, err := parseUsers(p, data)
	if err != nil {
		return nil, nil, err
	}
	return users, data, nil
}

// writeFileAtomic replaces p with data: temp file in the same directory,
// fsync, rename, fsync of the directory. Readers see the old or the new
// file, never a partial one. The file is mode 0600 because it holds
// password hashes; when root rewrites a file owned by another user (the
// server's account), the owner is kept so the server can still read it.
func writeFileAtomic(p string, data []byte) error {
	return writeFileAtomicAs(p, data, "users file")
}

// writeFileAtomicAs is writeFileAtomic for a file that errors call what.
func writeFileAtomicAs(p string, data []byte, what string) error {
	dir, base := filepath.Split(p)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", what, err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("write %s: %w", what, err)
	}
	if old, err := os.Stat(p); err == nil {
		if err := keepOwner(tmp, old); err != nil {
			return fmt.Errorf("write %s: keep owner of %s: %w", what, p, err)
		}
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", what, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", what, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", what, err)
	}
	if err := replaceFile(tmp.Name(), p); err != nil {
		return fmt.Errorf("write %s: %w", what, err)
	}
	ok = true
	syncDir(dir)
	return nil
}

// usersFileHeader opens every saved users file.
const usersFileHeader = `# syncer users file. Change it with "syncer user add|remove|passwd";
# a running "syncer serve" reloads it. password_hash is a bcrypt hash:
# plain-text passwords are refused.
`

// encodeUsers renders accounts in the file format, sorted by name.
func encodeUsers(users map[string]User) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(usersFileHeader)
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	list := sortedUsers(users)
	if list == nil {
		list = []User{}
	}
	if err := enc.Encode(struct {
		Users []User `yaml:"users"`
	}{list}); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func sortedUsers(users map[string]User) []User {
	var list []User
	for _, u := range users {
		list = append(list, u)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	return list
}

// usersFileKeys are the keys of one account in the file.
var usersFileKeys = map[string]bool{
	"name": true, "password_hash": true, "perm": true, "admin": true,
	"home": true, "max_upload_rate": true, "max_download_rate": true,
}

// fileError is a problem with the content of a users file.
type fileError struct {
	path, msg string
	err       error // optional cause
}

func (e *fileError) Error() string { return "users file " + e.path + ": " + e.msg }
func (e *fileError) Unwrap() []error {
	if e.err != nil {
		return []error{ErrUsersFile, e.err}
	}
	return []error{ErrUsersFile}
}

// parseUsers parses a users file. Error messages never quote the values of
// password fields, since they might hold a password.
func parseUsers(p string, data []byte) (map[string]User, error) {
	fail := func(format string, args ...any) error {
		return &fileError{path: p, msg: fmt.Sprintf(format, args...)}
	}
	if !utf8.Valid(data) {
		return nil, fail("not UTF-8 text")
	}
	users := map[string]User{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return users, nil // empty or only comments
		}
		return nil, fail("malformed YAML: %s", yamlErrText(err))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fail("more than one YAML document (remove the extra '---')")
	}
	root := deref(&doc)
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		root = deref(root.Content[0])
	}
	if isNull(root) {
		return users, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, fail("line %d: want a mapping with the key \"users\", got a %s", root.Line, nodeKindName(root.Kind))
	}
	var list *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k := root.Content[i]
		if k.Value != "users" {
			return nil, fail("line %d: unknown key %q (the file has one key, \"users\")", k.Line, k.Value)
		}
		if list != nil {
			return nil, fail("line %d: key \"users\" given twice", k.Line)
		}
		list = deref(root.Content[i+1])
	}
	if list == nil || isNull(list) {
		return users, nil
	}
	if list.Kind != yaml.SequenceNode {
		return nil, fail("line %d: \"users\" must be a list of accounts, got a %s", list.Line, nodeKindName(list.Kind))
	}
	folded := map[string]string{}
	for i, item := range list.Content {
		u, err := parseUser(deref(item))
		if err != nil {
			who := fmt.Sprintf("account #%d", i+1)
			if u.Name != "" {
				who = fmt.Sprintf("user %q", u.Name)
			}
			return nil, &fileError{path: p, msg: fmt.Sprintf("%s (line %d): %v", who, item.Line, err), err: err}
		}
		if _, dup := users[u.Name]; dup {
			return nil, fail("user %q (line %d): duplicate name", u.Name, item.Line)
		}
		// Names become archive directories; names that differ only in case
		// would clash on case-insensitive file systems (macOS, Windows).
		if other, dup := folded[strings.ToLower(u.Name)]; dup {
			return nil, fail("user %q (line %d): name differs from %q only in case", u.Name, item.Line, other)
		}
		folded[strings.ToLower(u.Name)] = u.Name
		users[u.Name] = u
	}
	return users, nil
}

// parseUser reads one account; it returns the name, if it got that far,
// with an error.
func parseUser(n *yaml.Node) (User, error) {
	var u User
	if n.Kind != yaml.MappingNode {
		return u, fmt.Errorf("want a mapping of name, password_hash, perm, ..., got a %s", nodeKindName(n.Kind))
	}
	// The name first, so that every later error can say whose it is.
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		// A repeated key would leave it unclear which value counts.
		if k := n.Content[i]; seen[k.Value] {
			return u, fmt.Errorf("line %d: key %q given twice", k.Line, k.Value)
		}
		seen[n.Content[i].Value] = true
		if n.Content[i].Value == "name" {
			v, err := scalarString(deref(n.Content[i+1]))
			if err != nil {
				return u, fmt.Errorf("name: %v", err)
			}
			u.Name = v
		}
	}
	if u.Name == "" {
		return u, errors.New("missing name")
	}
	if err := ValidateName(u.Name); err != nil {
		name := u.Name
		u.Name = "" // not a usable label; the error quotes it
		return u, fmt.Errorf("name %q: %w", name, err)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i].Value, deref(n.Content[i+1])
		var err error
		switch key {
		case "name":
		case "password_hash":
			u.PasswordHash, err = scalarString(val)
		case "perm":
			u.Perm, err = scalarString(val)
		case "home":
			u.Home, err = scalarString(val)
		case "admin":
			if isNull(val) {
				break
			}
			if val.Kind != yaml.ScalarNode || val.Tag != "!!bool" {
				err = fmt.Errorf("want true or false")
				break
			}
			err = val.Decode(&u.Admin)
		case "max_upload_rate":
			err = u.MaxUploadRate.UnmarshalYAML(val)
		case "max_download_rate":
			err = u.MaxDownloadRate.UnmarshalYAML(val)
		case "password":
			// Never quote the value: it is a password.
			err = errors.New("plain-text passwords are not allowed; store a bcrypt password_hash (set one with \"syncer user passwd\")")
		default:
			err = fmt.Errorf("unknown key (keys are %s)", strings.Join(sortedKeys(usersFileKeys), ", "))
		}
		if err != nil {
			return u, fmt.Errorf("line %d: %s: %w", n.Content[i].Line, keyText(key), err)
		}
	}
	if u.PasswordHash == "" {
		return u, errors.New("missing password_hash")
	}
	if !isBcryptHash(u.PasswordHash) {
		// Never quote the value: it may be a password typed in by mistake.
		return u, errors.New("password_hash is not a bcrypt hash (plain-text passwords are not allowed; set one with \"syncer user passwd\")")
	}
	nu, err := normalizeUser(u)
	if err != nil {
		return u, err
	}
	return nu, nil
}

// keyText shows a key in an error: as it is when it looks like one, else
// quoted, so that a key with line breaks (a YAML block or quoted key)
// cannot make the error span lines or forge log lines.
func keyText(key string) string {
	for _, r := range key {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return strconv.Quote(key)
		}
	}
	return key
}

// isBcryptHash reports whether h is a well-formed bcrypt hash.
func isBcryptHash(h string) bool {
	if !strings.HasPrefix(h, "$2a$") && !strings.HasPrefix(h, "$2b$") && !strings.HasPrefix(h, "$2y$") {
		return false
	}
	_, err := bcrypt.Cost([]byte(h))
	return err == nil && len(h) == 60
}

func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && n.Alias != nil && i < 8; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == 0 || n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// scalarString returns the text of a scalar; null is "".
func scalarString(n *yaml.Node) (string, error) {
	if isNull(n) {
		return "", nil
	}
	if n.Kind != yaml.ScalarNode {
		return "", fmt.Errorf("want a value, got a %s", nodeKindName(n.Kind))
	}
	return n.Value, nil
}

func sortedKeys(m map[string]bool) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// yamlErrText turns a YAML error into one line.
func yamlErrText(err error) string {
	s := strings.TrimPrefix(err.Error(), "yaml: ")
	return strings.Join(strings.Fields(s), " ")
}
