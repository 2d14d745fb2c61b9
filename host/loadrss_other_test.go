//go:build !linux

package host

import "errors"

// loadPeakEnv makes the test binary act as the load measurement child (Linux only: it
// reads and resets the peak RSS through /proc).
const loadPeakEnv = "ROUTERD_HOST_LOAD_PEAK_CHILD"

// loadPeakChild needs Linux's /proc.
func loadPeakChild(module, cache string) error {
	return errors.New("the load measurement child needs Linux (/proc/self/clear_refs)")
}
