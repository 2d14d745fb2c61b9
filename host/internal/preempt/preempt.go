// Package preempt rewrites a WebAssembly module so that the host can stop a running call
// cheaply.
//
// wazero can stop a call at its deadline only when the runtime is built with
// WithCloseOnContextDone(true), which makes every loop header of the compiled code exit
// to Go to check whether the module was closed. Go guests have a loop at the top of
// nearly every function, so that check costs several times the call itself.
//
// Instrument instead imports one host function, ImportModule.ImportName of type
// () -> i32, adds a mutable i32 loop budget global and inserts at the start of every
// loop body
//
//	$budget = $budget - 1
//	if $budget == 0 {
//	  $budget = Budget
//	  if call $yield { unreachable }
//	}
//
// which costs a load, a store and a branch per iteration. The host's yield function
// returns non-zero once the call's deadline has passed (it reads an atomic flag the
// deadline timer sets); the guest then traps within Budget loop iterations and the host
// discards the instance. The periodic call matters as much as the check: code compiled
// by wazero cannot be preempted by the Go scheduler, so a guest that never returned to
// Go would block every stop-the-world pause of the process (and with it the very timer
// that is to stop it). A call to an imported Go function always returns to Go — that is
// how wazero runs host functions — so the check relies on no implementation detail.
// Straight-line code and recursion are bounded by the module size and the call stack
// limit.
//
// The import is appended after the module's own imports, so every function defined by
// the module moves up one index; Instrument renumbers calls, ref.func, exports, the start
// function, element segments, global initialisers and the function names of the "name"
// section.
//
// Modules using instructions or encodings this package does not decode (SIMD, threads,
// exception handling, GC, tail calls, typed function references) are refused with
// ErrUnsupported; the host then falls back to WithCloseOnContextDone.
package preempt

import (
	"errors"
	"fmt"

	"routerd.net/routerd/host/internal/wasmbin"
)

// ImportModule and ImportName name the host function the loop checks call. The host
// must provide it, with type () -> i32, to every instrumented module: it returns 1 when
// the running call is to stop and 0 otherwise.
const (
	ImportModule = "routerd_preempt"
	ImportName   = "yield"
)

// Budget is how many loop iterations run between two returns to Go.
const Budget = 4096

// ErrUnsupported means the module uses an instruction or layout Instrument does not
// rewrite.
var ErrUnsupported = errors.New("preempt: unsupported module")

// Section ids, import kinds and opcodes.
const (
	secCustom    = 0
	secType      = 1
	secImport    = 2
	secTable     = 4
	secGlobal    = 6
	secExport    = 7
	secStart     = 8
	secElem      = 9
	secCode      = 10
	kindFunc     = 0
	opLoop       = 0x03
	opCall       = 0x10
	opGlobalGet  = 0x23
	opGlobalSet  = 0x24
	opIf         = 0x04
	opUnreachabl = 0x00
	opEnd        = 0x0B
	opRefFunc    = 0xD2
)

// sectionRank is the position of each known section id in the required order.
var sectionRank = map[byte]int{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13}

var magic = wasmbin.Magic

type section struct {
	id      byte
	payload []byte
}

// Instrument returns a copy of module with the yield import, the budget global and the
// loop checks added.
//
// # Errors
//
// Malformed input and unsupported instructions wrap ErrUnsupported and name the
// section or function and offset.
func Instrument(module []byte) ([]byte, error) {
	parsed, err := wasmbin.Sections(module)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	secs := make([]section, len(parsed))
	for i, p := range parsed {
		secs[i] = section{id: p.ID, payload: p.Payload}
	}
	kinds, err := importKinds(secs)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	var importedFuncs, importedGlobals uint32
	for _, k := range kinds {
		switch k {
		case wasmbin.KindFunc:
			importedFuncs++
		case wasmbin.KindGlobal:
			importedGlobals++
		}
	}
	types, err := countTypes(secs)
	if err != nil {
		return nil, err
	}
	if err := checkTables(secs); err != nil {
		return nil, err
	}
	definedGlobals := uint32(0)
	for _, s := range secs {
		if s.id == secGlobal {
			gr := &reader{b: s.payload}
			definedGlobals = gr.u32()
			if gr.err != nil {
				return nil, fmt.Errorf("%w: global section: %v", ErrUnsupported, gr.err)
			}
		}
	}
	// The yield import takes function index importedFuncs; defined functions move up one.
	rw := renumber{from: importedFuncs}
	yield := importedFuncs
	budget := importedGlobals + definedGlobals

	for i, s := range secs {
		var p []byte
		var err error
		switch s.id {
		case secGlobal:
			p, err = rw.globals(s.payload)
		case secExport:
			p, err = rw.exports(s.payload)
		case secStart:
			p, err = rw.start(s.payload)
		case secElem:
			p, err = rw.elems(s.payload)
		case secCode:
			p, err = rw.code(s.payload, loopCheck(yield, budget))
		case secCustom:
			p, err = rw.custom(s.payload)
		default:
			continue
		}
		if err != nil {
			return nil, err
		}
		secs[i].payload = p
	}
	// New type () -> i32, the import of the yield function and the budget global
	// (mutable i32 = Budget).
	if secs, err = appendToVec(secs, secType, []byte{0x60, 0x00, 0x01, 0x7F}); err != nil {
		return nil, err
	}
	imp := appendName(appendName(nil, ImportModule), ImportName)
	imp = appendU32(append(imp, kindFunc), types)
	if secs, err = appendToVec(secs, secImport, imp); err != nil {
		return nil, err
	}
	if secs, err = appendToVec(secs, secGlobal, appendS32([]byte{0x7F, 0x01, 0x41}, Budget, opEnd)); err != nil {
		return nil, err
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

// importKinds returns the kinds of the module's imports.
func importKinds(secs []section) ([]byte, error) {
	for _, s := range secs {
		if s.id == secImport {
			return wasmbin.ImportKinds(s.payload)
		}
	}
	return nil, nil
}

// countTypes returns the number of types, refusing type sections with anything but
// plain function types (recursion groups and sub-types of the GC proposal).
func countTypes(secs []section) (uint32, error) {
	for _, s := range secs {
		if s.id != secType {
			continue
		}
		r := &reader{b: s.payload}
		n := r.u32()
		for i := uint32(0); i < n && r.err == nil; i++ {
			if form := r.byte(); r.err == nil && form != 0x60 {
				return 0, fmt.Errorf("%w: type %d: form %#x is not a function type", ErrUnsupported, i, form)
			}
			for range 2 { // params, results
				for k := r.u32(); k > 0 && r.err == nil; k-- {
					if !valType(r.byte()) && r.err == nil {
						return 0, fmt.Errorf("%w: type %d: value type not supported", ErrUnsupported, i)
					}
				}
			}
		}
		if r.err != nil || r.off != len(r.b) {
			return 0, fmt.Errorf("%w: type section: malformed or trailing data", ErrUnsupported)
		}
		return n, nil
	}
	return 0, nil
}

// checkTables refuses tables with an initialiser expression (typed function references),
// whose ref.func this package does not renumber.
func checkTables(secs []section) error {
	for _, s := range secs {
		if s.id != secTable {
			continue
		}
		r := &reader{b: s.payload}
		for n := r.u32(); n > 0 && r.err == nil; n-- {
			if t := r.byte(); r.err == nil && t != 0x70 && t != 0x6F {
				return fmt.Errorf("%w: table of type %#x", ErrUnsupported, t)
			}
			flags := r.byte()
			r.uleb()
			if flags&1 != 0 {
				r.uleb()
			}
		}
		if r.err != nil || r.off != len(r.b) {
			return fmt.Errorf("%w: table section: malformed or trailing data", ErrUnsupported)
		}
	}
	return nil
}

// valType reports whether b is a number, vector or plain reference value type.
func valType(b byte) bool { return b >= 0x7B && b <= 0x7F || b == 0x70 || b == 0x6F }

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
func loopCheck(yield, budget uint32) []byte {
	g := func(op byte, idx uint32) []byte { return appendU32([]byte{op}, idx) }
	var c []byte
	c = append(c, g(opGlobalGet, budget)...)
	c = append(c, 0x41, 0x01, 0x6B) // i32.const 1, i32.sub
	c = append(c, g(opGlobalSet, budget)...)
	c = append(c, g(opGlobalGet, budget)...)
	c = append(c, 0x45, opIf, 0x40) // i32.eqz, if
	c = appendS32(append(c, 0x41), Budget)
	c = append(c, g(opGlobalSet, budget)...)
	c = append(c, g(opCall, yield)...)
	c = append(c, opIf, 0x40, opUnreachabl, opEnd) // if yield(): unreachable
	return append(c, opEnd)
}

// renumber rewrites function indices: those at or above from (the defined functions)
// move up one to make room for the yield import.
type renumber struct{ from uint32 }

func (rw renumber) fn(idx uint32) uint32 {
	if idx >= rw.from {
		return idx + 1
	}
	return idx
}

// funcIdx copies a function index from r to out, renumbered.
func (rw renumber) funcIdx(out []byte, r *reader) []byte {
	return appendU32(out, rw.fn(r.u32()))
}

// constExpr copies a constant expression (up to and including its end) from r to out,
// renumbering ref.func.
func (rw renumber) constExpr(out []byte, r *reader) ([]byte, error) {
	for r.err == nil {
		start := r.off
		switch op := r.byte(); op {
		case opEnd:
			return append(out, opEnd), r.err
		case opRefFunc:
			out = rw.funcIdx(append(out, op), r)
			continue
		case 0x41, 0x42: // i32.const, i64.const
			r.s64()
		case 0x43:
			r.skip(4)
		case 0x44:
			r.skip(8)
		case opGlobalGet:
			r.u32()
		case 0xD0: // ref.null t
			r.byte()
		case 0x6A, 0x6B, 0x6C, 0x7C, 0x7D, 0x7E: // extended constant expressions
		default:
			if r.err == nil {
				return nil, fmt.Errorf("opcode %#x in a constant expression not supported", op)
			}
		}
		out = append(out, r.b[start:r.off]...)
	}
	return nil, r.err
}

// vecSection rewrites a vector section entry by entry with each.
func vecSection(name string, payload []byte, each func(out []byte, r *reader, i uint32) ([]byte, error)) ([]byte, error) {
	r := &reader{b: payload}
	n := r.u32()
	out := appendU32(make([]byte, 0, len(payload)+8), n)
	var err error
	for i := uint32(0); i < n && r.err == nil; i++ {
		if out, err = each(out, r, i); err != nil {
			return nil, fmt.Errorf("%w: %s %d: %v", ErrUnsupported, name, i, err)
		}
	}
	if r.err != nil || r.off != len(payload) {
		return nil, fmt.Errorf("%w: %s section: truncated or trailing data", ErrUnsupported, name)
	}
	return out, nil
}

// globals renumbers ref.func in global initialisers.
func (rw renumber) globals(payload []byte) ([]byte, error) {
	return vecSection("global", payload, func(out []byte, r *reader, _ uint32) ([]byte, error) {
		t, mut := r.byte(), r.byte()
		if !valType(t) && r.err == nil {
			return nil, fmt.Errorf("value type %#x not supported", t)
		}
		return rw.constExpr(append(out, t, mut), r)
	})
}

// exports renumbers exported functions.
func (rw renumber) exports(payload []byte) ([]byte, error) {
	return vecSection("export", payload, func(out []byte, r *reader, _ uint32) ([]byte, error) {
		start := r.off
		r.skip(int(r.u32())) // name
		kind := r.byte()
		out = append(out, r.b[start:r.off]...)
		if kind == kindFunc {
			return rw.funcIdx(out, r), r.err
		}
		return appendU32(out, r.u32()), r.err
	})
}

// start renumbers the start function.
func (rw renumber) start(payload []byte) ([]byte, error) {
	r := &reader{b: payload}
	out := rw.funcIdx(nil, r)
	if r.err != nil || r.off != len(payload) {
		return nil, fmt.Errorf("%w: start section malformed", ErrUnsupported)
	}
	return out, nil
}

// elems renumbers the functions of element segments (all eight encodings).
func (rw renumber) elems(payload []byte) ([]byte, error) {
	return vecSection("element segment", payload, func(out []byte, r *reader, _ uint32) ([]byte, error) {
		flags := r.u32()
		if flags > 7 {
			return nil, fmt.Errorf("flags %d not supported", flags)
		}
		out = appendU32(out, flags)
		var err error
		if flags&1 == 0 { // active
			if flags&2 != 0 {
				out = appendU32(out, r.u32()) // table index
			}
			if out, err = rw.constExpr(out, r); err != nil {
				return nil, err
			}
		}
		if flags&3 != 0 { // elemkind or reftype
			out = append(out, r.byte())
		}
		n := r.u32()
		out = appendU32(out, n)
		for j := uint32(0); j < n && r.err == nil; j++ {
			if flags&4 == 0 {
				out = rw.funcIdx(out, r)
			} else if out, err = rw.constExpr(out, r); err != nil {
				return nil, err
			}
		}
		return out, r.err
	})
}

// custom renumbers the function indices of the "name" section's function, local and
// label names; other custom sections are kept as they are.
func (rw renumber) custom(payload []byte) ([]byte, error) {
	r := &reader{b: payload}
	n := r.u32()
	r.skip(int(n))
	if r.err != nil {
		return nil, fmt.Errorf("%w: custom section name: %v", ErrUnsupported, r.err)
	}
	if string(payload[r.off-int(n):r.off]) != "name" {
		return payload, nil
	}
	out := append([]byte(nil), payload[:r.off]...)
	for r.off < len(payload) && r.err == nil {
		id := r.byte()
		size := int(r.u32())
		if r.err != nil || r.off+size > len(payload) {
			return nil, fmt.Errorf("%w: name section: subsection %d truncated", ErrUnsupported, id)
		}
		sub := payload[r.off : r.off+size]
		r.off += size
		var err error
		switch id {
		case 1: // function names: name map
			sub, err = vecSection("function name", sub, func(o []byte, sr *reader, _ uint32) ([]byte, error) {
				o = rw.funcIdx(o, sr)
				start := sr.off
				sr.skip(int(sr.u32()))
				return append(o, sr.b[start:sr.off]...), sr.err
			})
		case 2, 3: // local and label names: indirect name map keyed by function
			sub, err = vecSection("local name", sub, func(o []byte, sr *reader, _ uint32) ([]byte, error) {
				o = rw.funcIdx(o, sr)
				start := sr.off
				for k := sr.u32(); k > 0 && sr.err == nil; k-- {
					sr.u32()
					sr.skip(int(sr.u32()))
				}
				return append(o, sr.b[start:sr.off]...), sr.err
			})
		}
		if err != nil {
			return nil, err
		}
		out = append(out, id)
		out = appendU32(out, uint32(len(sub)))
		out = append(out, sub...)
	}
	if r.err != nil {
		return nil, fmt.Errorf("%w: name section: %v", ErrUnsupported, r.err)
	}
	return out, nil
}

// code rewrites every function body of the code section.
func (rw renumber) code(payload []byte, check []byte) ([]byte, error) {
	r := &reader{b: payload}
	count := r.u32()
	out := appendU32(make([]byte, 0, len(payload)+len(payload)/8), count)
	var body []byte
	for fn := uint32(0); fn < count; fn++ {
		size := r.u32()
		if r.err != nil || r.off+int(size) > len(payload) {
			return nil, fmt.Errorf("%w: code entry %d truncated", ErrUnsupported, fn)
		}
		var err error
		body, err = rw.body(body[:0], payload[r.off:r.off+int(size)], check)
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

// body copies one function body (locals and expression), inserting check after the
// block type of every loop instruction and renumbering call and ref.func.
func (rw renumber) body(out, body, check []byte) ([]byte, error) {
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
		case op == opCall || op == opRefFunc:
			idx := r.u32()
			if r.err == nil && idx >= rw.from {
				out = append(out, body[copied:start+1]...)
				out = appendU32(out, idx+1)
				copied = r.off
			}
		case op == 0x0C || op == 0x0D: // br, br_if
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

// uleb skips an unsigned LEB128 of at most 10 bytes (64-bit table limits).
func (r *reader) uleb() { r.s64() }
