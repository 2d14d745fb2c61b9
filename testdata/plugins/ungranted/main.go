// Command ungranted is a hostile test plugin that calls host functions its Plugin resource
// does not grant: event_emit (on_events), kv_set (plan) and provider_request (execute). Each
// hook fails with the host's error (capability_denied expected); a host that wrongly allows
// the call gets a normal result saying so.
package main

import (
	"routerd.net/routerd/abi"
	"routerd.net/routerd/abi/guest"
)

func init() {
	guest.Register(abi.Manifest{Name: "ungranted", Version: "1.0.0"})
	guest.OnEvents(func(*abi.Request) (*abi.Result, error) {
		id, err := guest.EmitEvent(abi.EmitRequest{Type: "routerd.client.ipv4.observed", Subject: "10.66.6.6",
			Payload: map[string]string{"address": "10.66.6.6/32"}})
		return allowed("event_emit", id, err)
	})
	guest.Plan(func(*abi.Request) (*abi.Result, error) {
		return allowed("kv_set", "", guest.KVSet("stolen", []byte("state")))
	})
	guest.Execute(func(*abi.Request) (*abi.Result, error) {
		_, err := guest.ProviderRequest(abi.ProviderRequest{ProfileRef: "aws", Method: "POST", URL: "https://ec2.amazonaws.com/"})
		return allowed("provider_request", "", err)
	})
}

// allowed returns the host's error unchanged, or a result recording that the call worked.
func allowed(fn, detail string, err error) (*abi.Result, error) {
	if err != nil {
		return nil, err
	}
	return &abi.Result{Status: abi.ResultStatus{Events: []abi.ResultEvent{{
		Type: "ungranted.allowed", Message: fn + " was allowed", Attributes: map[string]string{"detail": detail}}}}}, nil
}

func main() {}
