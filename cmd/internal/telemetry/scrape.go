package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
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

// Gather implements prometheus.Gatherer. A socket that cannot be scraped is reported in
// the error; the families of the others are returned.
func (g SocketGatherer) Gather() ([]*dto.MetricFamily, error) {
	timeout := g.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	var (
		out  []*dto.MetricFamily
		errs []error
	)
	for _, path := range g.Sockets() {
		fams, err := scrapeUnix(path, timeout)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for name, f := range fams {
			if strings.HasPrefix(name, g.Prefix) {
				out = append(out, f)
			}
		}
	}
	return out, errors.Join(errs...)
}

var _ prometheus.Gatherer = SocketGatherer{}

func scrapeUnix(path string, timeout time.Duration) (map[string]*dto.MetricFamily, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		},
		DisableKeepAlives: true,
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
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("telemetry: scrape %s: parse: %w", path, err)
	}
	return fams, nil
}
