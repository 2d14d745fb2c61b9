//go:build tools

// Package tools pins the chosen dependencies in go.mod while the packages that use them are
// being written, so parallel work never edits go.mod. Removed once every one is imported.
package tools

import (
	_ "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	_ "github.com/cenkalti/backoff/v5"
	_ "github.com/extism/go-sdk"
	_ "github.com/fsnotify/fsnotify"
	_ "github.com/google/nftables"
	_ "github.com/invopop/jsonschema"
	_ "github.com/mattn/go-sqlite3"
	_ "github.com/oklog/ulid/v2"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/santhosh-tekuri/jsonschema/v6"
	_ "github.com/spf13/cobra"
	_ "github.com/spf13/viper"
	_ "github.com/tetratelabs/wazero"
	_ "github.com/valyala/fastjson"
	_ "github.com/vishvananda/netlink"
	_ "go.opentelemetry.io/otel"
	_ "go.opentelemetry.io/otel/exporters/prometheus"
	_ "go.opentelemetry.io/otel/sdk/metric"
	_ "gopkg.in/yaml.v3"
	_ "sigs.k8s.io/yaml"
)
