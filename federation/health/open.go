package health

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"time"

	"routerd.net/routerd/federation/store"
)

// OpenBusyTimeout bounds how long OpenStore waits for a lock another process holds.
const OpenBusyTimeout = 3 * time.Second

// OpenStore opens the node's store file for the checks. Unlike store.Open it never
// creates a missing file (a doctor run must not make a missing store look healthy); the
// error says which file was looked for and what to do.
func OpenStore(path string) (*store.Store, error) {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("store file %s does not exist: routerd-eventd has not run with this state dir yet, or --state-dir points elsewhere", path)
	case err != nil:
		return nil, fmt.Errorf("store file %s: %w", path, err)
	case fi.IsDir():
		return nil, fmt.Errorf("store file %s is a directory: --state-dir must name the directory that holds routerd.db", path)
	}
	// A short busy timeout bounds the wait when a daemon holds the write lock while
	// Open checks the schema version.
	s, err := store.Open(path, store.Options{Logger: slog.New(slog.DiscardHandler), CheckpointInterval: -1, BusyTimeout: OpenBusyTimeout})
	if err != nil {
		return nil, fmt.Errorf("open store file %s: %w", path, err)
	}
	return s, nil
}
