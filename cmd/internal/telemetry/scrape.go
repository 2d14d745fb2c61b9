package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// SocketGatherer scrapes /metrics of other processes over Unix sockets and hands their
// families to a Prometheus handler: routerd re-exposes its supervised routerd-eventd
// children this way (see AddGatherer).
type SocketGatherer struct {
	// Sockets returns the socket paths to scrape at each gather (children come and go).
	Sockets func() []string
	// Prefix keeps only the families whose name starts with it (the children's own
	// metrics, not the store's that routerd exports itself); "" keeps all.
	Prefix string
	// Timeout bounds one scrape (default 2s).
	Timeout time.Duration
}

// Gather implements prometheus.Gatherer. The sockets are scraped in parallel; one that
// cannot be scraped is reported in the error, the families of the others are returned.
func (g SocketGatherer) Gather() ([]*dto.MetricFamily, error) {
	timeout := g.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	paths := g.Sockets()
	type result struct {
		fams []*dto.MetricFamily
		err  error
	}
	results := make([]result, len(paths))
	var wg sync.WaitGroup
	for i, path := range paths {
		wg.Go(func() {
			fams, err := scrapeUnix(path, g.Prefix, timeout)
			results[i] = result{fams, err}
		})
	}
	wg.Wait()
	var (
		out  []*dto.MetricFamily
		errs []error
	)
	for _, r := range results {
		out = append(out, r.fams...)
		errs = append(errs, r.err)
	}
	return out, errors.Join(errs...)
}

var _ prometheus.Gatherer = SocketGatherer{}

// scrapeUnix reads the families named with prefix from the /metrics of the Unix socket
// path, asking for the protobuf exposition (cheaper to decode than text) uncompressed.
func scrapeUnix(path, prefix string, timeout time.Duration) ([]*dto.MetricFamily, error) {
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
	req.Header.Set("Accept", string(expfmt.NewFormat(expfmt.TypeProtoDelim)))
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("telemetry: scrape %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("telemetry: scrape %s: %s", path, resp.Status)
	}
	dec := expfmt.NewDecoder(resp.Body, expfmt.ResponseFormat(resp.Header))
	var out []*dto.MetricFamily
	for {
		f := &dto.MetricFamily{}
		if err := dec.Decode(f); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("telemetry: scrape %s: decode: %w", path, err)
		}
		if strings.HasPrefix(f.GetName(), prefix) {
			out = append(out, f)
		}
	}
}
