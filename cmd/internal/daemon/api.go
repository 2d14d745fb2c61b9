package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"routerd.net/routerd/federation/dynamic"
	"routerd.net/routerd/federation/subscribe"
	"routerd.net/routerd/schemas"
)

// controlServer serves the control API on a Unix socket.
type controlServer struct {
	srv  *http.Server
	path string
	done chan struct{}
}

// maxRequestBytes bounds control API request bodies.
const maxRequestBytes = 1 << 20

// serveControl listens on the Unix socket path (replacing a stale socket file) and
// serves the control API until Shutdown.
func serveControl(d *Daemon, path string) (*controlServer, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("routerd: control socket dir: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("routerd: control socket %s exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("routerd: control socket %s: another routerd is listening", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("routerd: remove stale control socket %s: %w", path, err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("routerd: control socket: %w", err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("routerd: control socket %s: %w", path, err)
	}
	cs := &controlServer{path: path, done: make(chan struct{}),
		srv: &http.Server{Handler: controlHandler(d), ReadHeaderTimeout: 5 * time.Second, ConnContext: withPeer}}
	go func() {
		defer close(cs.done)
		if err := cs.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("control API stopped", "err", err)
		}
	}()
	return cs, nil
}

// Shutdown stops serving and removes the socket file.
func (c *controlServer) Shutdown(ctx context.Context) error {
	err := c.srv.Shutdown(ctx)
	<-c.done
	if rerr := os.Remove(c.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
		err = rerr
	}
	return err
}

// apiError is the JSON body of a failed request.
type apiError struct {
	Error    string   `json:"error"`
	Problems []string `json:"problems,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// WithdrawRequest is the body of POST /v1/dynamic/withdraw.
type WithdrawRequest struct {
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Source string `json:"source,omitempty"`
	Actor  string `json:"actor,omitempty"`
}

// controlHandler routes the control API:
//
//	GET  /v1/status          daemon, config, eventd children, subscriptions, last reconcile
//	GET  /v1/plugins         host.Status()
//	GET  /v1/subscriptions   per-subscription state, cursor, pending, lag, last error
//	GET  /v1/dynamic         live and expired dynamic parts
//	GET  /v1/dynamic/{kind}/{name}
//	POST /v1/dynamic/withdraw {kind, name, source?}
//	GET  /v1/dataplane       recent reconciliations (diffs)
//	POST /v1/reload          reload the config dir (422 with the problems when invalid)
//	     /v1/actionplans...  provider action plans (registerActionPlanRoutes)
//	GET  /metrics            Prometheus
func controlHandler(d *Daemon) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, d.Status(r.Context()))
	})
	mux.HandleFunc("GET /v1/plugins", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, d.host.Status())
	})
	mux.HandleFunc("GET /v1/subscriptions", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, d.engine.Status())
	})
	mux.HandleFunc("GET /v1/subscriptions/{name}/runs", func(w http.ResponseWriter, r *http.Request) {
		runs, err := subscribe.StoreAdapter{Store: d.store}.Runs(r.Context(), r.PathValue("name"), 50)
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, apiError{Error: err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, runs)
	})
	mux.HandleFunc("GET /v1/dynamic", func(w http.ResponseWriter, r *http.Request) {
		parts, err := d.dyn.List(r.Context())
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, apiError{Error: err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, parts)
	})
	mux.HandleFunc("GET /v1/dynamic/{kind}/{name}", func(w http.ResponseWriter, r *http.Request) {
		parts, err := d.dyn.List(r.Context())
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, apiError{Error: err.Error()})
			return
		}
		out := []dynamic.Part{}
		for _, p := range parts {
			if p.Kind == r.PathValue("kind") && p.Name == r.PathValue("name") {
				out = append(out, p)
			}
		}
		if len(out) == 0 {
			writeJSON(w, http.StatusNotFound, apiError{Error: fmt.Sprintf("no dynamic part for %s/%s", r.PathValue("kind"), r.PathValue("name"))})
			return
		}
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("POST /v1/dynamic/withdraw", func(w http.ResponseWriter, r *http.Request) {
		var req WithdrawRequest
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBytes))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil || req.Kind == "" || req.Name == "" {
			writeJSON(w, http.StatusBadRequest, apiError{Error: "want a JSON body {kind, name, source?, actor?}"})
			return
		}
		if req.Actor == "" {
			req.Actor = "control-api"
		}
		removed, err := d.dyn.Withdraw(r.Context(), req.Source, req.Kind, req.Name, req.Actor)
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, apiError{Error: err.Error()})
			return
		}
		if removed == nil {
			removed = []dynamic.Part{}
		}
		writeJSON(w, http.StatusOK, removed)
	})
	mux.HandleFunc("GET /v1/dataplane", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, d.Reconciles())
	})
	mux.HandleFunc("POST /v1/reload", func(w http.ResponseWriter, r *http.Request) {
		if err := d.Reload(r.Context()); err != nil {
			body := apiError{Error: err.Error()}
			var el *schemas.ErrorList
			if errors.As(err, &el) {
				for _, p := range el.Problems {
					body.Problems = append(body.Problems, p.String())
				}
			}
			writeJSON(w, http.StatusUnprocessableEntity, body)
			return
		}
		writeJSON(w, http.StatusOK, d.Status(r.Context()))
	})
	registerActionPlanRoutes(mux, d)
	if d.metrics != nil {
		mux.Handle("GET /metrics", d.metrics.Handler())
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, apiError{Error: "no such endpoint: " + r.Method + " " + r.URL.Path +
			"; see " + strings.Join([]string{"/v1/status", "/v1/plugins", "/v1/subscriptions", "/v1/dynamic", "/v1/dataplane", "/v1/reload", "/v1/actionplans", "/v1/audit/verify", "/metrics"}, ", ")})
	})
	return mux
}
