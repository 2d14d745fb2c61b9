package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/federation/event"
	"routerd.net/routerd/federation/store"
	"routerd.net/routerd/host"
	"routerd.net/routerd/schemas"
)

// hostAuditor writes the host's audit entries to the store's audit log.
func hostAuditor(st *store.Store) host.Auditor {
	return host.AuditorFunc(func(ctx context.Context, e host.AuditEntry) error {
		return st.AppendAudit(ctx, store.AuditEntry{Time: e.Time, Actor: e.Actor, Action: e.Action, Target: e.Target, Outcome: e.Outcome, Detail: e.Detail})
	})
}

// ConfigSource serves the plugins' config_get (configget.Source) from a configuration:
// the daemon's running one, or the --config resources of `routerctl plugin`.
type ConfigSource struct {
	// Config returns the configuration to serve (nil: none, every lookup is empty).
	Config func() *schemas.Config
}

// Resources returns the JSON documents of kind (the one named name, or all when name is
// empty).
func (c ConfigSource) Resources(_ context.Context, kind, name string) ([]json.RawMessage, error) {
	cfg := c.Config()
	if cfg == nil {
		return nil, nil
	}
	var out []json.RawMessage
	for _, o := range cfg.Objects() {
		if o.GetKind() != kind || name != "" && o.GetName() != name {
			continue
		}
		b, err := json.Marshal(o)
		if err != nil {
			return nil, fmt.Errorf("config_get %s/%s: %w", kind, o.GetName(), err)
		}
		out = append(out, b)
	}
	return out, nil
}

// eventEmitter stores events plugins emit (event_emit) as locally originated events of
// the first EventGroup.
type eventEmitter struct{ d *Daemon }

// Emit stores one event and returns its id.
func (e eventEmitter) Emit(ctx context.Context, plugin string, req abi.EmitRequest) (string, error) {
	cfg := e.d.Config()
	if cfg == nil || len(cfg.EventGroups()) == 0 {
		return "", errors.New("no EventGroup configured")
	}
	g := cfg.EventGroups()[0]
	ttl := g.Spec.Delivery.DefaultTTL.Duration
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil {
			return "", fmt.Errorf("ttl %q: %w", req.TTL, err)
		}
		ttl = d
	}
	ev := event.New(g.Metadata.Name, req.Type, g.Spec.NodeName, req.Subject, req.Payload, ttl, time.Now())
	if _, err := e.d.Emit(ctx, ev); err != nil {
		return "", fmt.Errorf("plugin %s: %w", plugin, err)
	}
	return ev.ID, nil
}
