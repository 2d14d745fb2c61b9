package transport

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/propagation"

	"routerd.net/routerd/federation/tracectx"
)

// Client pushes signed requests to one peer.
type Client struct {
	// Endpoint is the peer's base URL (scheme://host:port[/prefix]).
	Endpoint string
	// Key signs every request; its ID, when set, goes into X-Routerd-Key-Id.
	Key Key
	// HTTP is the client used (default http.DefaultClient).
	HTTP *http.Client
	// Now is the clock for timestamps (default time.Now).
	Now func() time.Time
}

// PushError is a push that the peer answered with a non-200 status, or that never got an
// answer (Status 0).
type PushError struct {
	Status int
	Reason Reason
	Err    error
}

// Error implements error.
func (e *PushError) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("push: %v", e.Err)
	}
	if e.Reason != "" {
		return fmt.Sprintf("push: peer answered %d (%s)", e.Status, e.Reason)
	}
	return fmt.Sprintf("push: peer answered %d", e.Status)
}

// Unwrap returns the transport error, if any.
func (e *PushError) Unwrap() error { return e.Err }

// Permanent reports whether retrying the same body cannot succeed: the peer refused
// the content itself (malformed, invalid, too large).
func (e *PushError) Permanent() bool {
	return e.Status == http.StatusBadRequest || e.Status == http.StatusRequestEntityTooLarge
}

func (c *Client) url(path string) string {
	return strings.TrimRight(c.Endpoint, "/") + path
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

// Status fetches the peer's /v1/status. A peer that answered but not with a status
// document gives a *PushError with its HTTP status; no answer at all gives Status 0.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url(PathStatus), nil)
	if err != nil {
		return s, &PushError{Err: fmt.Errorf("status %s: %w", c.Endpoint, err)}
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return s, &PushError{Err: fmt.Errorf("status %s: %w", c.Endpoint, err)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return s, &PushError{Err: fmt.Errorf("status %s: read: %w", c.Endpoint, err)}
	}
	if resp.StatusCode != http.StatusOK {
		return s, &PushError{Status: resp.StatusCode}
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, &PushError{Status: resp.StatusCode, Err: fmt.Errorf("status %s: decode: %w", c.Endpoint, err)}
	}
	return s, nil
}

// PushEvent sends one event body with the v1 protocol.
func (c *Client) PushEvent(ctx context.Context, body []byte) (AcceptResponse, error) {
	var r AcceptResponse
	err := c.post(ctx, PathEvents, body, &r)
	return r, err
}

// PushBatch sends a batch body ({"events":[...]}) to path (the one the peer advertised).
func (c *Client) PushBatch(ctx context.Context, path string, body []byte) (BatchResponse, error) {
	var r BatchResponse
	err := c.post(ctx, path, body, &r)
	return r, err
}

func (c *Client) post(ctx context.Context, path string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url(path), bytes.NewReader(body))
	if err != nil {
		return &PushError{Err: err}
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	ts := now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, Sign(c.Key.Secret, ts, body))
	if c.Key.ID != "" {
		req.Header.Set(HeaderKeyID, c.Key.ID)
	}
	// Optional traceparent (W3C) of the push's span: a v1 peer ignores it, ours continues
	// the trace. Nothing is set when tracing is off.
	tracectx.Inject(ctx, propagation.HeaderCarrier(req.Header))
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return &PushError{Err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return &PushError{Err: fmt.Errorf("read response: %w", err)}
	}
	if resp.StatusCode != http.StatusOK {
		var e ErrorResponse
		_ = json.Unmarshal(b, &e)
		return &PushError{Status: resp.StatusCode, Reason: e.Reason}
	}
	if err := json.Unmarshal(b, out); err != nil {
		return &PushError{Status: resp.StatusCode, Err: fmt.Errorf("decode response: %w", err)}
	}
	return nil
}

// NewHTTPClient returns an HTTP client for talking to the group's peers: timeout bounds
// each request, and with files.CAFile set the peers' certificates are verified against
// that CA (as the sender does).
func NewHTTPClient(files *TLSFiles, timeout time.Duration) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if files != nil && files.CAFile != "" {
		pool, err := loadCAPool(files.CAFile)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Timeout: timeout, Transport: tr}, nil
}
