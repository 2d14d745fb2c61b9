package telemetry

import (
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// ParseText reads a Prometheus text exposition (a /metrics answer) into its families.
func ParseText(r io.Reader) (map[string]*dto.MetricFamily, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("telemetry: parse exposition: %w", err)
	}
	return fams, nil
}

var (
	// ulidLike matches a ULID (event ids, batch ids): 26 Crockford base32 characters.
	ulidLike = regexp.MustCompile(`^[0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{26}$`)
	// uuidLike matches a UUID.
	uuidLike = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	// longNumber matches Unix times and other counters used as values (9 digits or more).
	longNumber = regexp.MustCompile(`^[0-9]{9,}$`)
)

// UnboundedLabels returns a line per label that carries, or may carry, an unbounded value:
// an id (ULID, UUID), an address (IP, IP:port, prefix), a timestamp (RFC 3339, a long
// number), or more than maxValues distinct values for one label of one metric. Labels must
// name things the configuration bounds (group, peer, plugin, reason, ...), never the
// traffic. The "le" and "quantile" labels of histograms and summaries are skipped.
func UnboundedLabels(fams map[string]*dto.MetricFamily, maxValues int) []string {
	var out []string
	for _, name := range sortedKeys(fams) {
		values := map[string]map[string]bool{}
		for _, m := range fams[name].GetMetric() {
			for _, lp := range m.GetLabel() {
				k, v := lp.GetName(), lp.GetValue()
				if k == "le" || k == "quantile" {
					continue
				}
				if values[k] == nil {
					values[k] = map[string]bool{}
				}
				values[k][v] = true
			}
		}
		for _, k := range sortedKeys(values) {
			if n := len(values[k]); n > maxValues {
				out = append(out, fmt.Sprintf("%s{%s}: %d distinct values (more than %d)", name, k, n, maxValues))
			}
			for _, v := range sortedKeys(values[k]) {
				if why := unboundedValue(v); why != "" {
					out = append(out, fmt.Sprintf("%s{%s=%q}: looks like %s", name, k, v, why))
				}
			}
		}
	}
	return out
}

// unboundedValue says what kind of unbounded value v looks like ("" when none).
func unboundedValue(v string) string {
	switch {
	case ulidLike.MatchString(v):
		return "an id (ULID)"
	case uuidLike.MatchString(v):
		return "an id (UUID)"
	case longNumber.MatchString(v):
		return "a timestamp or id (long number)"
	}
	if _, err := netip.ParseAddr(v); err == nil {
		return "an IP address"
	}
	if _, err := netip.ParseAddrPort(v); err == nil {
		return "an address:port"
	}
	if _, err := netip.ParsePrefix(v); err == nil {
		return "a prefix"
	}
	if strings.Contains(v, ":") {
		// host:port with a name.
		if i := strings.LastIndexByte(v, ':'); i > 0 && i < len(v)-1 && strings.Trim(v[i+1:], "0123456789") == "" {
			return "a host:port"
		}
	}
	for _, layout := range []string{time.RFC3339Nano, time.RFC3339, time.DateTime, time.DateOnly} {
		if _, err := time.Parse(layout, v); err == nil {
			return "a timestamp"
		}
	}
	return ""
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return slices.Clip(keys)
}
