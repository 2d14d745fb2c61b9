// Package configget provides host function "config_get": a plugin reads resource
// documents of the Kinds its grant lists (grants.configGet.kinds), with secrets already
// stripped by the Source.
package configget

import (
	"context"
	"encoding/json"
	"slices"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/host/capability"
)

// Source serves resource documents. Implementations strip secrets (credential
// references stay references; no secret value ever enters a sandbox).
type Source interface {
	// Resources returns the documents of kind (all of them when name is ""); an unknown
	// name returns an empty list.
	Resources(ctx context.Context, kind, name string) ([]json.RawMessage, error)
}

// Options configure the config_get function.
type Options struct {
	// Source serves the documents (nil answers every granted request with no resources).
	Source Source
}

// New returns the host functions of this package: config_get.
func New(opts Options) []capability.Function {
	return []capability.Function{{
		Name:    abi.FuncConfigGet,
		Granted: func(g *capability.Grants) bool { return len(g.ConfigGet.Kinds) > 0 },
		Handle: func(ctx context.Context, c *capability.Call, req []byte) (any, error) {
			var r abi.ConfigGetRequest
			if err := capability.Decode(abi.FuncConfigGet, req, &r); err != nil {
				return abi.ConfigGetResponse{}, err
			}
			if r.Kind == "" {
				return abi.ConfigGetResponse{}, capability.Invalid(abi.FuncConfigGet, "kind is empty")
			}
			if !slices.Contains(c.Grants.ConfigGet.Kinds, r.Kind) {
				return abi.ConfigGetResponse{}, capability.Denied(abi.FuncConfigGet,
					"kind %q is not granted (grants.configGet.kinds: %v)", r.Kind, c.Grants.ConfigGet.Kinds)
			}
			if opts.Source == nil {
				return abi.ConfigGetResponse{}, nil
			}
			res, err := opts.Source.Resources(ctx, r.Kind, r.Name)
			if err != nil {
				return abi.ConfigGetResponse{}, abi.NewError(abi.ErrCodeUnavailable, abi.FuncConfigGet+": config unavailable")
			}
			if r.Name != "" && len(res) == 0 {
				return abi.ConfigGetResponse{}, abi.NewError(abi.ErrCodeNotFound, abi.FuncConfigGet+": "+r.Kind+"/"+r.Name+" not found")
			}
			return abi.ConfigGetResponse{Resources: res}, nil
		},
		Describe: func(req []byte) string {
			var r abi.ConfigGetRequest
			if json.Unmarshal(req, &r) != nil {
				return ""
			}
			if r.Name == "" {
				return "kind=" + r.Kind
			}
			return "kind=" + r.Kind + " name=" + r.Name
		},
	}}
}
