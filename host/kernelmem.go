package host

import (
	"context"
	"errors"
	"fmt"

	extism "github.com/extism/go-sdk"
	"github.com/tetratelabs/wazero/api"
)

// Host calls of module "routerd" exchange their request and response as Extism memory
// blocks. extism.CurrentPlugin's ReadBytes and WriteBytes look the kernel's "length" and
// "alloc" exports up on every use, and each lookup builds a new wazero call engine with
// its own stack (~10 KiB): tens of microseconds per host call. kernelMemory resolves
// those two exports once per instance and reuses them. An instance runs one call at a
// time and the kernel never calls back into the host, so a cached function is never
// running when it is called again.

// kernelMemory reads and writes Extism memory blocks of one instance's kernel module.
type kernelMemory struct {
	mod           api.Module
	length, alloc api.Function // resolved on first use
	stack         [1]uint64
}

// resolve looks the kernel exports up once; false when the kernel lacks them.
func (k *kernelMemory) resolve() bool {
	if k.length == nil {
		k.length = k.mod.ExportedFunction("length")
		k.alloc = k.mod.ExportedFunction("alloc")
	}
	return k.length != nil && k.alloc != nil && k.mod.Memory() != nil
}

// read returns a copy of the block at off. Without a known kernel (k nil) it falls back
// to the Extism SDK's lookup-per-call path.
func (k *kernelMemory) read(ctx context.Context, p *extism.CurrentPlugin, off uint64) ([]byte, error) {
	if k == nil || !k.resolve() {
		return p.ReadBytes(off)
	}
	k.stack[0] = off
	if err := k.length.CallWithStack(ctx, k.stack[:]); err != nil {
		return nil, err
	}
	n := k.stack[0]
	if off > 1<<32-1 || n > 1<<32-1 {
		return nil, fmt.Errorf("block %d of %d bytes is outside the kernel's memory", off, n)
	}
	b, ok := k.mod.Memory().Read(uint32(off), uint32(n))
	if !ok {
		return nil, fmt.Errorf("block %d of %d bytes is outside the kernel's memory", off, n)
	}
	return append([]byte(nil), b...), nil
}

// write stores b in a new block and returns its offset.
func (k *kernelMemory) write(ctx context.Context, p *extism.CurrentPlugin, b []byte) (uint64, error) {
	if k == nil || !k.resolve() {
		return p.WriteBytes(b)
	}
	k.stack[0] = uint64(len(b))
	if err := k.alloc.CallWithStack(ctx, k.stack[:]); err != nil {
		return 0, err
	}
	off := k.stack[0]
	if off == 0 || off > 1<<32-1 {
		return 0, errors.New("kernel memory exhausted")
	}
	if !k.mod.Memory().Write(uint32(off), b) {
		return 0, errors.New("kernel returned a block outside its memory")
	}
	return off, nil
}
