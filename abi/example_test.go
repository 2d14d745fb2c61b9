package abi_test

import (
	"errors"
	"fmt"

	"routerd.net/routerd/abi"
)

func ExampleCheckCompatible() {
	for _, v := range []string{"routerd.plugin/v1", "routerd.plugin/v1.3", "routerd.plugin/v2"} {
		_, err := abi.CheckCompatible(v)
		fmt.Printf("%s: compatible=%v\n", v, err == nil)
		if errors.Is(err, abi.ErrIncompatibleVersion) {
			fmt.Println(err)
		}
	}
	// Output:
	// routerd.plugin/v1: compatible=true
	// routerd.plugin/v1.3: compatible=true
	// routerd.plugin/v2: compatible=false
	// abi: plugin speaks routerd.plugin/v2 but this host speaks routerd.plugin/v1 (major versions must match): incompatible ABI major version
}

func ExampleDecodeCallResult() {
	r := abi.EncodeCallResult(0x11000, 3072, false)
	ptr, n, failed := abi.DecodeCallResult(r)
	fmt.Printf("ok:     ptr=%#x len=%d failed=%v\n", ptr, n, failed)
	ptr, n, failed = abi.DecodeCallResult(abi.EncodeCallResult(0x2200, 41, true))
	fmt.Printf("failed: ptr=%#x len=%d failed=%v\n", ptr, n, failed)
	// Output:
	// ok:     ptr=0x11000 len=3072 failed=false
	// failed: ptr=0x2200 len=41 failed=true
}

func ExampleDecodeManifest() {
	m, err := abi.DecodeManifest([]byte(`{"name":"echo","version":"1.0.0","abi":"routerd.plugin/v1","hooks":["on_events","plan"]}`))
	if err != nil {
		panic(err)
	}
	fmt.Println(m.Name, m.HasHook(abi.HookPlan), m.HasHook(abi.HookExecute))
	// Output: echo true false
}
