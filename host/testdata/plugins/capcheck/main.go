// Command capcheck is a test plugin for package host: its on_events hook performs the
// host-function calls listed in its input and reports each outcome, so tests can check
// grants, argument constraints and denials from inside a real Wasm guest.
//
// Input:  {"do":[{"fn":"kv_set","key":"k","value":"v"}, {"fn":"emit","type":"t"}, ...]}
// Output: {"results":[{"fn":"kv_set","ok":true,"code":"","value":""}, ...]}
//
// "sleep" sleeps for the duration in sleep and reports how long the guest's clock says it
// slept. Misbehaviours for limit tests: "loop" spins forever, "exit" exits the process,
// "overflow" overflows the stack (a fatal runtime error), "alloc" keeps mib MiB more
// reachable, "panic" panics, "raw" returns value as the whole output, "bigout" returns
// mib MiB of output.
package main

import (
	"encoding/json"
	"errors"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"routerd.net/routerd/abi"
	"routerd.net/routerd/abi/guest"
)

type op struct {
	Fn    string `json:"fn"`
	Key   string `json:"key,omitempty"`
	Value string `json:"value,omitempty"`
	Type  string `json:"type,omitempty"`
	Kind  string `json:"kind,omitempty"`
	Name  string `json:"name,omitempty"`
	Sleep string `json:"sleep,omitempty"`
	MiB   int    `json:"mib,omitempty"`
}

// sink keeps allocations reachable so the "alloc" op really grows memory.
var sink [][]byte

type result struct {
	Fn    string `json:"fn"`
	OK    bool   `json:"ok"`
	Code  string `json:"code,omitempty"`
	Value string `json:"value,omitempty"`
}

func init() {
	guest.Register(abi.Manifest{
		Name:         "capcheck",
		Version:      "0.1.0",
		Capabilities: []abi.Capability{abi.CapLog, abi.CapKV, abi.CapEventEmit, abi.CapConfigGet, abi.CapNow},
	})
	guest.HandleRaw(abi.HookOnEvents, run)
}

func run(input []byte) ([]byte, error) {
	var in struct {
		Do []op `json:"do"`
	}
	if err := json.Unmarshal(input, &in); err != nil {
		return nil, err
	}
	out := struct {
		Results []result `json:"results"`
	}{Results: []result{}}
	for _, o := range in.Do {
		r := result{Fn: o.Fn}
		var err error
		switch o.Fn {
		case "log":
			err = guest.Log(abi.LogInfo, o.Value, map[string]string{"k": o.Key})
		case "now":
			var t time.Time
			if t, err = guest.Now(); err == nil {
				r.Value = t.Format(time.RFC3339)
			}
		case "kv_set":
			err = guest.KVSet(o.Key, []byte(o.Value))
		case "kv_get":
			var v []byte
			var found bool
			v, found, err = guest.KVGet(o.Key)
			if found {
				r.Value = string(v)
			} else if err == nil {
				r.Value = "<missing>"
			}
		case "emit":
			r.Value, err = guest.EmitEvent(abi.EmitRequest{Type: o.Type, Subject: o.Key, Payload: map[string]string{"v": o.Value}})
		case "config":
			var res []json.RawMessage
			res, err = guest.ConfigGet(o.Kind, o.Name)
			parts := make([]string, len(res))
			for i, x := range res {
				parts[i] = string(x)
			}
			r.Value = strings.Join(parts, ",")
		case "sleep": // WASI clocks are virtual: time.Sleep returns at once
			d, perr := time.ParseDuration(o.Sleep)
			if perr != nil {
				err = perr
				break
			}
			start := time.Now()
			time.Sleep(d)
			r.Value = time.Since(start).String()
		case "loop":
			n := 0
			for {
				n++
			}
		case "alloc":
			for i := 0; i < o.MiB; i++ {
				b := make([]byte, 1<<20)
				b[0], b[len(b)-1] = 1, 1
				sink = append(sink, b)
			}
		case "exit":
			os.Exit(3)
		case "overflow":
			debug.SetMaxStack(1 << 20)
			r.Value = strconv.Itoa(recurse(1 << 30))
		case "panic":
			panic("capcheck: asked to panic")
		case "raw":
			return []byte(o.Value), nil
		case "bigout":
			return []byte(strings.Repeat("x", o.MiB<<20)), nil
		default:
			err = errors.New("unknown fn " + o.Fn)
		}
		if err != nil {
			var ae *abi.Error
			if errors.As(err, &ae) {
				r.Code = string(ae.Code)
			} else {
				r.Code = "guest:" + err.Error()
			}
		} else {
			r.OK = true
		}
		out.Results = append(out.Results, r)
	}
	return json.Marshal(out)
}

// recurse overflows the stack for large n.
func recurse(n int) int {
	var pad [64]byte
	pad[n%64] = byte(n)
	if n == 0 {
		return int(pad[0])
	}
	return recurse(n-1) + int(pad[n%64])
}

func main() {}
