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

	mu       sync.Mutex
	m        map[string]authEntry // by account name
	inflight map[string]*authCall // verifications running, by name and MAC
}

// authCall is one bcrypt verification that logins with the same name and
// password arriving meanwhile wait for: an agent's --parallel connections
// log in at the same moment.
type authCall struct {
	done chan struct{}
	ok   bool
}

type authEntry struct {
	hash string // the account's PasswordHash when verified
	mac  [sha256.Size]byte
}

func newAuthCache() *authCache {
	c := &authCache{m: map[string]authEntry{}, inflight: map[string]*authCall{}}
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

// verify runs check (bcrypt) for name and password, unless the same
// verification is running already: then it waits for that one's answer.
// A success is remembered.
func (c *authCache) verify(name, hash, password string, check func() bool) bool {
	m := c.mac(name, password)
	key := name + "\x00" + hash + "\x00" + string(m[:])
	c.mu.Lock()
	if call := c.inflight[key]; call != nil {
		c.mu.Unlock()
		<-call.done
		return call.ok
	}
	call := &authCall{done: make(chan struct{})}
	c.inflight[key] = call
	c.mu.Unlock()
	call.ok = check()
	if call.ok {
		c.remember(name, hash, password)
	}
	c.mu.Lock()
	delete(c.inflight, key)
	c.mu.Unlock()
	close(call.done)
	return call.ok
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
