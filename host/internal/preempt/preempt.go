// Package preempt rewrites a WebAssembly module so that the host can stop a running call
// cheaply.
//
// wazero can stop a call at its deadline only when the runtime is built with
// WithCloseOnContextDone(true), which makes every loop header of the compiled code exit
// to Go to check whether the module was closed. Go guests have a loop at the top of
// nearly every function, so that check costs several times the call itself.
//
// Instrument instead adds two mutable i32 globals — $stop, exported as StopExport, and a
// loop budget — and inserts at the start of every loop body
//
//	$budget = $budget - 1
//	if $budget == 0 {
//	  $budget = Budget
//	  memory.grow 0   ;; a no-op that returns to Go: a preemption point
//	  if $stop { unreachable }
//	}
//
// which costs a load, a store and a branch per iteration. The host sets $stop from the
// call's deadline timer; the guest traps within Budget loop iterations and the host
// discards the instance. The periodic memory.grow 0 matters as much as the check: code
// compiled by wazero cannot be preempted by the Go scheduler, so a guest that never
// returned to Go would block every stop-the-world pause of the process (and with it the
// very timer that is to stop it). Straight-line code and recursion are bounded by the
// module size and the call stack limit.
//
// Modules using instructions this package does not decode (SIMD, threads, exception
// handling, GC, tail calls) or without a memory are refused with ErrUnsupported; the host
// then falls back to WithCloseOnContextDone.
package preempt

import (
	"errors"
	"fmt"
	"slices"

	"routerd.net/routerd/host/internal/wasmbin"
)

// StopExport is the export name of the added stop global.
const StopExport = "__routerd_stop"

// Budget is how many loop iterations run between two returns to Go.
const Budget = 4096

// ErrUnsupported means the module uses an instruction or layout Instrument does not
// rewrite.
var ErrUnsupported = errors.New("preempt: unsupported module")

// Section ids.
const (
	secCustom    = 0
	secImport    = 2
	secGlobal    = 6
	secExport    = 7
	secCode      = 10
	kindGlobal   = 3
	opLoop       = 0x03
	opGlobalGet  = 0x23
	opGlobalSet  = 0x24
	opIf         = 0x04
	opUnreachabl = 0x00
	opEnd        = 0x0B
)

// sectionRank is the position of each known section id in the required order.
var sectionRank = map[byte]int{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13}

var magic = wasmbin.Magic

type section struct {
	id      byte
	payload []byte
}

// Instrument returns a copy of module with the stop global and the loop checks added.
//
// # Errors
//
// Malformed input and unsupported instructions wrap ErrUnsupported and name the
// function and offset.
func Instrument(module []byte) ([]byte, error) {
	parsed, err := wasmbin.Sections(module)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	secs := make([]section, len(parsed))
	for i, p := range parsed {
		secs[i] = section{id: p.ID, payload: p.Payload}
	}

	importedGlobals, err := countImportedGlobals(secs)
	if err != nil {
		return nil, err
	}
	definedGlobals := 0
	for _, s := range secs {
		if s.id == secGlobal {
			gr := &reader{b: s.payload}
			definedGlobals = int(gr.u32())
			if gr.err != nil {
				return nil, fmt.Errorf("%w: global section: %v", ErrUnsupported, gr.err)
			}
		}
	}
	if !hasMemory(secs) {
		return nil, fmt.Errorf("%w: module has no memory (the yield to Go uses memory.grow)", ErrUnsupported)
	}
	stop := uint32(importedGlobals + definedGlobals)
	budget := stop + 1

	// New globals: $stop (mutable i32 = 0) and $budget (mutable i32 = Budget).
	secs, err = appendToVec(secs, secGlobal, []byte{0x7F, 0x01, 0x41, 0x00, opEnd})
	if err != nil {
		return nil, err
	}
	secs, err = appendToVec(secs, secGlobal, appendS32([]byte{0x7F, 0x01, 0x41}, Budget, opEnd))
	if err != nil {
		return nil, err
	}
	export := append(appendName(nil, StopExport), kindGlobal)
	export = appendU32(export, stop)
	secs, err = appendToVec(secs, secExport, export)
	if err != nil {
		return nil, err
	}
	for i, s := range secs {
		if s.id == secCode {
			code, err := rewriteCode(s.payload, stop, budget)
			if err != nil {
				return nil, err
			}
			secs[i].payload = code
		}
	}
	out := make([]byte, 0, len(module)+len(module)/8)
	out = append(out, magic...)
	for _, s := range secs {
		out = append(out, s.id)
		out = appendU32(out, uint32(len(s.payload)))
		out = append(out, s.payload...)
	}
	return out, nil
}

// countImportedGlobals counts the global imports (they precede defined globals in the
// index space).
func countImportedGlobals(secs []section) (int, error) {
	kinds, err := importKinds(secs)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	n := 0
	for _, k := range kinds {
		if k == wasmbin.KindGlobal {
			n++
		}
	}
	return n, nil
}

// importKinds returns the kinds of the module's imports.
func importKinds(secs []section) ([]byte, error) {
	for _, s := range secs {
		if s.id == secImport {
			return wasmbin.ImportKinds(s.payload)
		}
	}
	return nil, nil
}

// appendToVec adds entry to the vector section id, creating the section in its place
// when the module has none.
func appendToVec(secs []section, id byte, entry []byte) ([]section, error) {
	for i, s := range secs {
		if s.id != id {
			continue
		}
		r := &reader{b: s.payload}
		count := r.u32()
		if r.err != nil {
			return nil, fmt.Errorf("%w: section %d: %v", ErrUnsupported, id, r.err)
		}
		p := appendU32(nil, count+1)
		p = append(p, s.payload[r.off:]...)
		secs[i].payload = append(p, entry...)
		return secs, nil
	}
	p := appendU32(nil, 1)
	p = append(p, entry...)
	at := len(secs)
	for i, s := range secs {
		if s.id != secCustom && sectionRank[s.id] > sectionRank[id] {
			at = i
			break
		}
	}
	secs = append(secs[:at], append([]section{{id: id, payload: p}}, secs[at:]...)...)
	return secs, nil
}

// loopCheck is the code inserted at the start of every loop body (see the package
// comment).
func loopCheck(stop, budget uint32) []byte {
	g := func(op byte, idx uint32) []byte { return appendU32([]byte{op}, idx) }
	var c []byte
	c = append(c, g(opGlobalGet, budget)...)
	c = append(c, 0x41, 0x01, 0x6B) // i32.const 1, i32.sub
	c = append(c, g(opGlobalSet, budget)...)
	c = append(c, g(opGlobalGet, budget)...)
	c = append(c, 0x45, opIf, 0x40) // i32.eqz, if
	c = appendS32(append(c, 0x41), Budget)
	c = append(c, g(opGlobalSet, budget)...)
	c = append(c, 0x41, 0x00, 0x40, 0x00, 0x1A) // i32.const 0, memory.grow 0, drop
	c = append(c, g(opGlobalGet, stop)...)
	c = append(c, opIf, 0x40, opUnreachabl, opEnd) // if $stop: unreachable
	return append(c, opEnd)
}

// hasMemory reports whether the module defines or imports a memory.
func hasMemory(secs []section) bool {
	for _, s := range secs {
		if s.id == 5 {
			r := &reader{b: s.payload}
			if r.u32() > 0 {
				return true
			}
		}
	}
	kinds, err := importKinds(secs)
	return err == nil && slices.Contains(kinds, wasmbin.KindMemory)
}

// rewriteCode rewrites every function body of the code section.
func rewriteCode(payload []byte, stop, budget uint32) ([]byte, error) {
	r := &reader{b: payload}
	count := r.u32()
	out := appendU32(make([]byte, 0, len(payload)+len(payload)/8), count)
	check := loopCheck(stop, budget)
	var body []byte
	for fn := uint32(0); fn < count; fn++ {
		size := r.u32()
		if r.err != nil || r.off+int(size) > len(payload) {
			return nil, fmt.Errorf("%w: code entry %d truncated", ErrUnsupported, fn)
		}
		var err error
		body, err = rewriteBody(body[:0], payload[r.off:r.off+int(size)], check)
		if err != nil {
			return nil, fmt.Errorf("%w: function body %d: %v", ErrUnsupported, fn, err)
		}
		r.off += int(size)
		out = appendU32(out, uint32(len(body)))
		out = append(out, body...)
	}
	if r.err != nil || r.off != len(payload) {
		return nil, fmt.Errorf("%w: code section: trailing or truncated data", ErrUnsupported)
	}
	return out, nil
}

// rewriteBody copies one function body (locals and expression), inserting check after
// the block type of every loop instruction.
func rewriteBody(out, body, check []byte) ([]byte, error) {
	r := &reader{b: body}
	groups := r.u32()
	for i := uint32(0); i < groups; i++ {
		r.u32()  // count
		r.byte() // valtype
	}
	if r.err != nil {
		return nil, fmt.Errorf("locals: %v", r.err)
	}
	copied := 0 // body[:copied] is in out
	for r.off < len(body) {
		start := r.off
		op := r.byte()
		switch {
		case op == 0x02 || op == opLoop || op == opIf: // block, loop, if: blocktype
			r.blockType()
		case op == 0x00 || op == 0x01 || op == 0x05 || op == opEnd || op == 0x0F || op == 0x1A || op == 0x1B || op == 0xD1:
			// unreachable, nop, else, end, return, drop, select, ref.is_null
		case op == 0x0C || op == 0x0D || op == 0x10 || op == 0xD2: // br, br_if, call, ref.func
			r.u32()
		case op == 0x0E: // br_table
			n := r.u32()
			for j := uint32(0); j <= n && r.err == nil; j++ {
				r.u32()
			}
		case op == 0x11: // call_indirect
			r.u32()
			r.u32()
		case op == 0x1C: // select t*
			n := r.u32()
			for j := uint32(0); j < n && r.err == nil; j++ {
				r.byte()
			}
		case op >= 0x20 && op <= 0x26: // local.*, global.*, table.get/set
			r.u32()
		case op >= 0x28 && op <= 0x3E: // loads and stores: memarg
			r.memarg()
		case op == 0x3F || op == 0x40: // memory.size, memory.grow
			r.u32()
		case op == 0x41:
			r.s64()
		case op == 0x42:
			r.s64()
		case op == 0x43:
			r.skip(4)
		case op == 0x44:
			r.skip(8)
		case op >= 0x45 && op <= 0xC4: // numeric, conversions, sign extension
		case op == 0xD0: // ref.null t
			r.byte()
		case op == 0xFC:
			if err := r.prefixFC(); err != nil {
				return nil, fmt.Errorf("offset %d: %v", start, err)
			}
		default:
			return nil, fmt.Errorf("offset %d: opcode %#x not supported", start, op)
		}
		if r.err != nil {
			return nil, fmt.Errorf("offset %d: opcode %#x: %v", start, op, r.err)
		}
		if op == opLoop {
			out = append(out, body[copied:r.off]...)
			out = append(out, check...)
			copied = r.off
		}
	}
	return append(out, body[copied:]...), nil
}

// reader decodes the binary format; the first error sticks.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) fail(msg string) {
	if r.err == nil {
		r.err = errors.New(msg)
	}
}

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if r.off >= len(r.b) {
		r.fail("unexpected end")
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *reader) skip(n int) {
	if r.err == nil && r.off+n > len(r.b) {
		r.fail("unexpected end")
		return
	}
	r.off += n
}

// u32 decodes an unsigned LEB128 of at most 5 bytes.
func (r *reader) u32() uint32 {
	var v uint32
	for shift := 0; shift < 35; shift += 7 {
		c := r.byte()
		if r.err != nil {
			return 0
		}
		v |= uint32(c&0x7f) << shift
		if c&0x80 == 0 {
			return v
		}
	}
	r.fail("u32 too long")
	return 0
}

// s64 skips a signed LEB128 of at most 10 bytes (also used for s32 and s33).
func (r *reader) s64() {
	for i := 0; i < 10; i++ {
		c := r.byte()
		if r.err != nil || c&0x80 == 0 {
			return
		}
	}
	r.fail("signed LEB128 too long")
}

// blockType skips an empty (0x40), value-type or type-index block type.
func (r *reader) blockType() {
	if r.err != nil || r.off >= len(r.b) {
		r.fail("unexpected end")
		return
	}
	switch r.b[r.off] {
	case 0x40, 0x7F, 0x7E, 0x7D, 0x7C, 0x7B, 0x70, 0x6F:
		r.off++
	default:
		r.s64()
	}
}

// memarg skips align (with the multi-memory flag) and offset.
func (r *reader) memarg() {
	align := r.u32()
	if align&0x40 != 0 {
		r.u32()
	}
	r.u32()
}

// prefixFC skips the immediates of a 0xFC-prefixed instruction.
func (r *reader) prefixFC() error {
	switch sub := r.u32(); {
	case sub <= 7: // saturating truncations
	case sub == 9 || sub == 11 || sub == 13 || sub == 15 || sub == 16 || sub == 17: // data.drop, memory.fill, elem.drop, table.grow/size/fill
		r.u32()
	case sub == 8 || sub == 10 || sub == 12 || sub == 14: // memory.init, memory.copy, table.init, table.copy
		r.u32()
		r.u32()
	default:
		return fmt.Errorf("0xfc %d not supported", sub)
	}
	return nil
}

func appendU32(b []byte, v uint32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			b = append(b, c|0x80)
			continue
		}
		return append(b, c)
	}
}

// appendS32 appends v as a signed LEB128, then the extra bytes.
func appendS32(b []byte, v int32, extra ...byte) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			b = append(b, c)
			return append(b, extra...)
		}
		b = append(b, c|0x80)
	}
}

func appendName(b []byte, s string) []byte {
	b = appendU32(b, uint32(len(s)))
	return append(b, s...)
}
