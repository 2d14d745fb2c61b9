// Package hostlog provides host function "log": a plugin writes structured log lines
// into the daemon's log, tagged with the plugin and hook. Granted by grants.log.
package hostlog

import (
	"context"
	"log/slog"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/host/capability"
)

// DefaultMaxMessageBytes bounds one message; longer messages are truncated.
const DefaultMaxMessageBytes = 4096

// Options configure the log function.
type Options struct {
	// Logger receives the plugin's lines (required).
	Logger *slog.Logger
	// MaxMessageBytes truncates longer messages (default DefaultMaxMessageBytes).
	MaxMessageBytes int
}

// New returns the host functions of this package: log.
func New(opts Options) []capability.Function {
	if opts.MaxMessageBytes <= 0 {
		opts.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return []capability.Function{{
		Name:    abi.FuncLog,
		Granted: func(g *capability.Grants) bool { return g.Log },
		Handle: func(ctx context.Context, c *capability.Call, req []byte) (any, error) {
			var r abi.LogRequest
			if err := capability.Decode(abi.FuncLog, req, &r); err != nil {
				return abi.Response{}, err
			}
			var level slog.Level
			switch r.Level {
			case abi.LogDebug:
				level = slog.LevelDebug
			case abi.LogInfo, "":
				level = slog.LevelInfo
			case abi.LogWarn:
				level = slog.LevelWarn
			case abi.LogError:
				level = slog.LevelError
			default:
				return abi.Response{}, capability.Invalid(abi.FuncLog, "level %q: want debug, info, warn or error", r.Level)
			}
			msg := r.Message
			if len(msg) > opts.MaxMessageBytes {
				msg = msg[:opts.MaxMessageBytes] + "…"
			}
			attrs := make([]slog.Attr, 0, len(r.Attrs)+2)
			attrs = append(attrs, slog.String("plugin", c.Plugin), slog.String("hook", c.Hook))
			for k, v := range r.Attrs {
				attrs = append(attrs, slog.String("attr."+k, v))
			}
			opts.Logger.LogAttrs(ctx, level, msg, attrs...)
			return abi.Response{}, nil
		},
	}}
}
