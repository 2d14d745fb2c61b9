package telemetry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/expfmt"
)

// Children scrapes /metrics of other processes over Unix sockets for a parent's /metrics
// (see AddChildren): routerd re-exposes its supervised routerd-eventd children this way.
// Their families are passed through as text, merged by name (each child's series carry
// their own group), never decoded and encoded again.
type Children struct {
	// Sockets returns the socket paths to scrape at each scrape of the parent (children
	// come and go).
	Sockets func() []string
	// Prefix keeps only the families whose name starts with it (the children's own
	// metrics, not the store's that routerd exports itself).
	Prefix string
	// Timeout bounds one child's scrape (default 2s).
	Timeout time.Duration
}

// textFamily is one metric family of a text exposition: its "# HELP" and "# TYPE" lines
// and its sample lines, verbatim.
type textFamily struct {
	help, typ []byte
	samples   []byte
}

// scrape reads every child in parallel and merges their families into into. A child that
// cannot be scraped is reported in the error; the others are merged.
func (c Children) scrape(into map[string]*textFamily) error {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	paths := c.Sockets()
	bodies := make([][]byte, len(paths))
	errs := make([]error, len(paths))
	var wg sync.WaitGroup
	for i, path := range paths {
		wg.Go(func() { bodies[i], errs[i] = scrapeUnix(path, timeout) })
	}
	wg.Wait()
	for _, b := range bodies {
		splitText(b, c.Prefix, into)
	}
	return errors.Join(errs...)
}

// scrapeUnix reads the text exposition of /metrics on the Unix socket path, uncompressed.
func scrapeUnix(path string, timeout time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		},
		DisableKeepAlives:  true,
		DisableCompression: true,
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://unix/metrics", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("telemetry: scrape %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("telemetry: scrape %s: %s", path, resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		return nil, fmt.Errorf("telemetry: scrape %s: answer is %q, want the text format", path, ct)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("telemetry: scrape %s: %w", path, err)
	}
	return b, nil
}

// splitText adds the families of the text exposition data whose name starts with prefix
// to into: the first HELP and TYPE lines of a name are kept, sample lines are appended.
func splitText(data []byte, prefix string, into map[string]*textFamily) {
	var cur *textFamily
	family := func(name string) *textFamily {
		if !strings.HasPrefix(name, prefix) {
			return nil
		}
		f := into[name]
		if f == nil {
			f = &textFamily{}
			into[name] = f
		}
		return f
	}
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i+1], data[i+1:]
		} else {
			line, data = append(line, '\n'), nil
		}
		switch {
		case bytes.HasPrefix(line, []byte("# HELP ")), bytes.HasPrefix(line, []byte("# TYPE ")):
			rest := line[len("# HELP "):]
			name, _, _ := bytes.Cut(rest, []byte(" "))
			cur = family(strings.TrimSpace(string(name)))
			if cur == nil {
				continue
			}
			if line[2] == 'H' && cur.help == nil {
				cur.help = line
			} else if line[2] == 'T' && cur.typ == nil {
				cur.typ = line
			}
		case len(bytes.TrimSpace(line)) == 0, line[0] == '#':
		default:
			if cur != nil {
				cur.samples = append(cur.samples, line...)
			}
		}
	}
}
