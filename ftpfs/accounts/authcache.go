package accounts

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"sync"
)

// authCacheMax bounds the logins remembered; beyond, the cache starts
// again empty.
const authCacheMax = 4096

// authCache remembers the passwords that bcrypt has verified, so that an
// agent that opens several connections per push (--parallel) or pushes
// every minute pays the bcrypt cost (tens of milliseconds of CPU, on
// purpose) once, not at every login: a 2,000-file upload by lftp -P 4 spent
// a seventh of the server's CPU in bcrypt. What is kept is an HMAC of the
// password under a key made at start and held only in memory, tied to the
// account's bcrypt hash at that time: a changed password (a new hash,
// salted anew) or a removed account is never matched again. Only
// successes are remembered; a wrong password always costs bcrypt.
type authCache struct {
	key [32]byte

	mu sync.Mutex
	m  map[string]authEntry // by account name
}

type authEntry struct {
	hash string // the account's PasswordHash when verified
	mac  [sha256.Size]byte
}

func newAuthCache() *authCache {
	c := &authCache{m: map[string]authEntry{}}
	_, _ = rand.Read(c.key[:])
	return c
}

func (c *authCache) mac(name, password string) [sha256.Size]byte {
	h := hmac.New(sha256.New, c.key[:])
	h.Write([]byte(name))
	h.Write([]byte{0})
	h.Write([]byte(password))
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// verified reports whether password was verified for the account name
// while its hash was hash.
func (c *authCache) verified(name, hash, password string) bool {
	c.mu.Lock()
	e, ok := c.m[name]
	c.mu.Unlock()
	if !ok || e.hash != hash {
		return false
	}
	m := c.mac(name, password)
	return hmac.Equal(m[:], e.mac[:])
}

// remember records that bcrypt verified password for name with hash.
func (c *authCache) remember(name, hash, password string) {
	e := authEntry{hash: hash, mac: c.mac(name, password)}
	c.mu.Lock()
	if len(c.m) >= authCacheMax {
		clear(c.m)
	}
	c.m[name] = e
	c.mu.Unlock()
}
