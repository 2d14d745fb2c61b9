// Command hostcall is a benchmark plugin for package host: its on_events hook calls one
// host function n times in a row, so the cost of a host-call round trip can be measured
// from inside a warm Go guest.
//
// Input:  {"fn":"now"|"now_raw"|"kv_get"|"log","n":1000,"key":"k"} ("now_raw" calls the
// import without the SDK's encoding and decoding)
// Output: {"calls":1000,"last":"<the last value read>"}
package main

import (
	"encoding/json"
	"errors"
	"strconv"
	"time"
	"unsafe"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/abi/guest"
)

func init() {
	guest.Register(abi.Manifest{
		Name:         "hostcall",
		Version:      "0.1.0",
		Capabilities: []abi.Capability{abi.CapLog, abi.CapKV, abi.CapNow},
	})
	guest.HandleRaw(abi.HookOnEvents, run)
}

func run(input []byte) ([]byte, error) {
	var in struct {
		Fn  string `json:"fn"`
		N   int    `json:"n"`
		Key string `json:"key"`
	}
	if err := json.Unmarshal(input, &in); err != nil {
		return nil, err
	}
	// Only the host calls repeat; the last value is formatted once, after the loop.
	var (
		lastTime  time.Time
		lastValue []byte
	)
	for range in.N {
		switch in.Fn {
		case "now":
			t, err := guest.Now()
			if err != nil {
				return nil, err
			}
			lastTime = t
		case "kv_get":
			v, found, err := guest.KVGet(in.Key)
			if err != nil {
				return nil, err
			}
			if !found {
				return nil, errors.New("kv_get " + strconv.Quote(in.Key) + ": not found")
			}
			lastValue = v
		case "now_raw":
			if err := nowRaw(); err != nil {
				return nil, err
			}
		case "log":
			if err := guest.Log(abi.LogDebug, "hostcall", nil); err != nil {
				return nil, err
			}
		default:
			return nil, errors.New("unknown fn " + strconv.Quote(in.Fn))
		}
	}
	last := string(lastValue)
	if !lastTime.IsZero() {
		last = lastTime.Format(time.RFC3339Nano)
	}
	return []byte(`{"calls":` + strconv.Itoa(in.N) + `,"last":` + strconv.Quote(last) + `}`), nil
}

// nowImport is the routerd:direct import of now, called without the SDK ("now_raw"
// measures the boundary crossing and the host's share alone).
//
//go:wasmimport routerd:direct now
func nowImport(req unsafe.Pointer, reqLen uint32, resp unsafe.Pointer, respCap uint32) uint32

var (
	rawReq  = []byte("{}")
	rawResp = make([]byte, 256)
)

func nowRaw() error {
	n := nowImport(unsafe.Pointer(&rawReq[0]), uint32(len(rawReq)), unsafe.Pointer(&rawResp[0]), uint32(len(rawResp)))
	if n == 0 || n > uint32(len(rawResp)) || rawResp[0] != '{' {
		return errors.New("now: no response from routerd:direct")
	}
	return nil
}

func main() {}
