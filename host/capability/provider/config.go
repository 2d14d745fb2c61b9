package provider

import (
	"fmt"

	"routerd.net/routerd/host/capability/provider/credential"
	"routerd.net/routerd/host/capability/provider/sign"
	"routerd.net/routerd/schemas"
)

// ProfileOptions are what FromConfig needs besides the CloudProviderProfile.
type ProfileOptions struct {
	// Credential is passed to credential.New (environment, file owner, HTTP client).
	Credential credential.Options
	// Sign is passed to sign.New; its Region is taken from the profile.
	Sign sign.Options
}

// FromConfig builds the host's Profile for a validated CloudProviderProfile: its
// spec.auth becomes a cached credential source, spec.provider and spec.region its
// signer. Nothing is fetched yet: the first request reads the credential.
//
// # Errors
//
// An auth mode or provider the credential or sign package refuses, named with the
// profile.
func FromConfig(p *schemas.CloudProviderProfile, o ProfileOptions) (Profile, error) {
	auth := p.Spec.Auth
	cfg := credential.Config{Provider: p.Spec.Provider, Mode: auth.Mode, File: auth.File, EnvPrefix: auth.Env}
	if c := auth.Command; c != nil {
		if c.IsList() {
			cfg.Command = credential.Command{Argv: append([]string(nil), c.Argv...)}
		} else {
			cfg.Command = credential.Command{Shell: c.Line}
		}
	}
	src, err := credential.New(cfg, o.Credential)
	if err != nil {
		return Profile{}, fmt.Errorf("CloudProviderProfile %s: spec.auth: %w", p.Metadata.Name, err)
	}
	cached := &credential.Cached{Source: src}
	so := o.Sign
	so.Region = p.Spec.Region
	signer, err := sign.New(p.Spec.Provider, cached, so)
	if err != nil {
		return Profile{}, fmt.Errorf("CloudProviderProfile %s: %w", p.Metadata.Name, err)
	}
	return Profile{Name: p.Metadata.Name, Provider: p.Spec.Provider, Region: p.Spec.Region, Endpoint: p.Spec.Endpoint,
		Signer: signer, Invalidate: cached.Invalidate}, nil
}
