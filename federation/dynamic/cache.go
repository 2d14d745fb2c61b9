package dynamic

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
)

// cachedRepo keeps every part in memory in front of a Repo, so that listing the live
// parts (on every reconcile and expiry check) costs no database read and no decoding.
// It is loaded from the Repo on first use; the Manager owning it must be the only writer
// of the parts while it runs (other tools go through the daemon's control API).
type cachedRepo struct {
	repo Repo

	mu     sync.Mutex
	loaded bool
	parts  map[string]Part
	// sorted is the parts in List's order, built on the first List after a change (nil:
	// stale); List returns copies, so a reconcile, an expiry check and a proposal's
	// checks in a row sort once.
	sorted []Part
}

func partKey(source, kind, name string) string { return source + "\x00" + kind + "\x00" + name }

func (c *cachedRepo) loadLocked(ctx context.Context) error {
	if c.loaded {
		return nil
	}
	all, err := c.repo.List(ctx)
	if err != nil {
		return err
	}
	c.parts = make(map[string]Part, len(all))
	for _, p := range all {
		c.parts[partKey(p.Source, p.Kind, p.Name)] = p
	}
	c.loaded = true
	return nil
}

// Get implements Repo.
func (c *cachedRepo) Get(ctx context.Context, source, kind, name string) (Part, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.loadLocked(ctx); err != nil {
		return Part{}, err
	}
	p, ok := c.parts[partKey(source, kind, name)]
	if !ok {
		return Part{}, fmt.Errorf("dynamic: get %s %s/%s: %w", source, kind, name, ErrNotFound)
	}
	return p, nil
}

// Put implements Repo: the store first, then the cache.
func (c *cachedRepo) Put(ctx context.Context, p Part) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.loadLocked(ctx); err != nil {
		return err
	}
	if err := c.repo.Put(ctx, p); err != nil {
		return err
	}
	c.parts[partKey(p.Source, p.Kind, p.Name)] = p
	c.sorted = nil
	return nil
}

// Delete implements Repo.
func (c *cachedRepo) Delete(ctx context.Context, source, kind, name string) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.loadLocked(ctx); err != nil {
		return false, err
	}
	ok, err := c.repo.Delete(ctx, source, kind, name)
	if err != nil {
		return false, err
	}
	delete(c.parts, partKey(source, kind, name))
	c.sorted = nil
	return ok, nil
}

// Commit implements Repo: the store first, then the cache.
func (c *cachedRepo) Commit(ctx context.Context, ch Changes) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.loadLocked(ctx); err != nil {
		return err
	}
	if err := c.repo.Commit(ctx, ch); err != nil {
		return err
	}
	for _, d := range ch.Delete {
		delete(c.parts, partKey(d.Source, d.Kind, d.Name))
	}
	for _, p := range ch.Put {
		c.parts[partKey(p.Source, p.Kind, p.Name)] = p
	}
	c.sorted = nil
	return nil
}

// scan calls fn with every part in no particular order, under the cache's lock (fn must
// not call back into the repo).
func (c *cachedRepo) scan(ctx context.Context, fn func(Part)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.loadLocked(ctx); err != nil {
		return err
	}
	for _, p := range c.parts {
		fn(p)
	}
	return nil
}

// List implements Repo (ordered by kind, name, source).
func (c *cachedRepo) List(ctx context.Context) ([]Part, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.loadLocked(ctx); err != nil {
		return nil, err
	}
	if c.sorted == nil {
		c.sorted = make([]Part, 0, len(c.parts))
		for _, p := range c.parts {
			c.sorted = append(c.sorted, p)
		}
		sort.Slice(c.sorted, func(i, j int) bool {
			a, b := c.sorted[i], c.sorted[j]
			if a.Kind != b.Kind {
				return a.Kind < b.Kind
			}
			if a.Name != b.Name {
				return a.Name < b.Name
			}
			return a.Source < b.Source
		})
	}
	return slices.Clone(c.sorted), nil
}

var _ Repo = (*cachedRepo)(nil)

// errNoRepo guards NewManager.
var errNoRepo = errors.New("dynamic: new manager: Repo is required")
