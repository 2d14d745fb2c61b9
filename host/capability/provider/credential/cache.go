package credential

import (
	"context"
	"sync"
	"time"
)

// Cache defaults.
const (
	// DefaultRefreshBefore renews a credential this long before it expires.
	DefaultRefreshBefore = 5 * time.Minute
	// DefaultTTL is how long a credential without an expiry is reused.
	DefaultTTL = 15 * time.Minute
)

// Cached reuses the credential of Source until RefreshBefore before it expires (or TTL
// after it was fetched when it names no expiry). Concurrent callers share one fetch.
// Errors are not cached: the next call tries again.
type Cached struct {
	// Source is asked when the cache is empty or stale (required).
	Source Source
	// RefreshBefore and TTL default to DefaultRefreshBefore and DefaultTTL.
	RefreshBefore, TTL time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time

	mu    sync.Mutex
	cur   Credential
	valid time.Time // reuse cur before this time
}

// Credential returns the cached credential or fetches a new one.
func (c *Cached) Credential(ctx context.Context) (Credential, error) {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t := now()
	if c.cur.Provider != "" && t.Before(c.valid) {
		return c.cur, nil
	}
	cred, err := c.Source.Credential(ctx)
	if err != nil {
		return Credential{}, err
	}
	refresh, ttl := c.RefreshBefore, c.TTL
	if refresh <= 0 {
		refresh = DefaultRefreshBefore
	}
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	c.cur, c.valid = cred, t.Add(ttl)
	if !cred.Expires.IsZero() {
		c.valid = cred.Expires.Add(-refresh)
	}
	return cred, nil
}

// Invalidate drops the cached credential, for example after the provider rejected it.
func (c *Cached) Invalidate() {
	c.mu.Lock()
	c.cur, c.valid = Credential{}, time.Time{}
	c.mu.Unlock()
}

// Static returns a Source that always returns c (for tests, and for a credential the
// host already holds).
func Static(c Credential) Source { return static{c} }

type static struct{ c Credential }

func (s static) Credential(context.Context) (Credential, error) { return s.c, nil }

// String describes the credential without a secret.
func (s static) String() string { return s.c.String() }
