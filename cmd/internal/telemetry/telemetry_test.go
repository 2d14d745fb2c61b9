package telemetry

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestServeExportsCounter(t *testing.T) {
	m, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Shutdown(context.Background())
	c, err := m.Provider().Meter("test").Int64Counter("routerd_test_things_total")
	if err != nil {
		t.Fatal(err)
	}
	c.Add(context.Background(), 3)
	addr, err := m.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), "routerd_test_things_total 3") {
		t.Fatalf("metric missing from /metrics:\n%s", body)
	}
}
