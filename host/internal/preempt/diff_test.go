package preempt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"testing"

	"github.com/tetratelabs/wazero"
)

// The differential test: a small generator turns fuzz input into a valid module with
// loops (some longer than Budget), branches, br_table, direct, indirect and host calls,
// ref.func, a funcref global, element segments of two encodings, a start function, an
// imported global and a name section. The original and the instrumented module run side
// by side and must compute the same results, memory and globals; the function names
// must survive the renumbering.

// src hands out the fuzz input byte by byte (zeros once it is used up).
type src struct {
	b   []byte
	off int
}

func (s *src) next() int {
	if s.off >= len(s.b) {
		return 0
	}
	c := s.b[s.off]
	s.off++
	return int(c)
}

// Layout of generated modules. Function 0 is the imported host function env.h (i32) ->
// i32, global 0 the imported envk.k; defined functions f0..f(n-1) have type (i32 a, i32 b)
// -> i32 and are followed by the start function.
const (
	genFuel     = 30000 // loop iterations per instance, over all calls
	genG1       = 1     // mutable i32 global
	genFuelG    = 2     // mutable i32: remaining loop iterations
	genFuncRefG = 3     // funcref global = ref.func of the last defined function
	genAcc      = 2     // local: accumulator
	genCounter  = 3     // locals 3..5: loop counters by depth
)

// gen builds one generated module.
type gen struct {
	s *src
	n int // defined functions with type 0
}

// generate returns the module described by input and the number of functions f0..
func generate(input []byte) ([]byte, int) {
	g := &gen{s: &src{b: input}}
	g.n = 1 + g.s.next()%4
	fn := func(i int) uint32 { return uint32(1 + i) } // function index of f_i
	startFn := fn(g.n)

	types := []byte{0x03,
		0x60, 0x02, 0x7F, 0x7F, 0x01, 0x7F, // 0: (i32, i32) -> i32
		0x60, 0x01, 0x7F, 0x01, 0x7F, // 1: (i32) -> i32
		0x60, 0x00, 0x00, // 2: () -> ()
	}
	imports := appendU32(nil, 2)
	imports = append(appendName(appendName(imports, "env"), "h"), 0x00, 0x01)
	imports = append(appendName(appendName(imports, "envk"), "k"), 0x03, 0x7F, 0x00)
	funcs := appendU32(nil, uint32(g.n+1))
	for range g.n {
		funcs = append(funcs, 0x00)
	}
	funcs = append(funcs, 0x02)
	table := append([]byte{0x01, 0x70, 0x00}, appendU32(nil, uint32(g.n))...)
	memory := []byte{0x01, 0x00, 0x01}
	globals := []byte{0x03,
		0x7F, 0x01, 0x41, 0x00, 0x0B, // g1 = 0
	}
	globals = append(globals, appendS32([]byte{0x7F, 0x01, 0x41}, genFuel, 0x0B)...)
	globals = append(appendU32(append(globals, 0x70, 0x00, opRefFunc), fn(g.n-1)), 0x0B)
	var exports []byte
	for i := range g.n {
		exports = appendU32(append(appendName(exports, fmt.Sprintf("f%d", i)), 0x00), fn(i))
	}
	exports = append(appendName(exports, "g1"), 0x03, genG1)
	exports = append(appendName(exports, "mem"), 0x02, 0x00)
	exports = append(appendU32(nil, uint32(g.n+2)), exports...)
	// Element segments: active (flags 0, function indices) fills the table with f0..;
	// declarative (flags 7, expressions) declares every function for ref.func.
	elems := []byte{0x02, 0x00, 0x41, 0x00, 0x0B}
	elems = appendU32(elems, uint32(g.n))
	for i := range g.n {
		elems = appendU32(elems, fn(i))
	}
	elems = appendU32(append(elems, 0x07, 0x70), uint32(g.n))
	for i := range g.n {
		elems = append(appendU32(append(elems, opRefFunc), fn(i)), 0x0B)
	}
	code := appendU32(nil, uint32(g.n+1))
	for i := range g.n {
		code = appendBody(code, g.function(i))
	}
	code = appendBody(code, []byte{0x00, 0x41, 0x07, opGlobalSet, genG1, 0x0B}) // start: g1 = 7
	var names []byte
	names = appendName(names, "name")
	sub := appendU32(nil, uint32(g.n+2))
	sub = appendName(appendU32(sub, 0), "h")
	for i := range g.n {
		sub = appendName(appendU32(sub, fn(i)), fmt.Sprintf("func%d", i))
	}
	sub = appendName(appendU32(sub, startFn), "start")
	names = append(appendU32(append(names, 0x01), uint32(len(sub))), sub...)
	locals := appendU32(appendU32(appendU32(nil, 1), fn(0)), 1) // f0: one local name
	locals = appendName(appendU32(locals, genAcc), "acc")
	names = append(appendU32(append(names, 0x02), uint32(len(locals))), locals...)

	return module(
		section{1, types}, section{2, imports}, section{3, funcs}, section{4, table},
		section{5, memory}, section{6, globals}, section{7, exports},
		section{8, appendU32(nil, startFn)}, section{9, elems}, section{10, code},
		section{0, names},
	), g.n
}

func appendBody(code, body []byte) []byte {
	return append(appendU32(code, uint32(len(body))), body...)
}

// function returns the body of f_i: locals, acc = a, statements, acc.
func (g *gen) function(i int) []byte {
	b := []byte{0x01, 0x04, 0x7F} // 4 i32 locals: acc and three loop counters
	b = append(b, 0x20, 0x00, 0x21, genAcc)
	b = g.stmts(b, i, 0)
	return append(b, 0x20, genAcc, 0x0B)
}

// set appends "acc = <value on the stack>".
func set(b []byte) []byte { return append(b, 0x21, genAcc) }

// stmts appends 1 to 3 statements at loop depth depth of function self.
func (g *gen) stmts(b []byte, self, depth int) []byte {
	for range 1 + g.s.next()%3 {
		b = g.stmt(b, self, depth)
	}
	return b
}

// stmt appends one statement; calls go only to later functions, so nothing recurses.
func (g *gen) stmt(b []byte, self, depth int) []byte {
	later := g.n - 1 - self // functions after self
	switch op := g.s.next() % 10; {
	case op == 1 && depth < 3:
		counts := []int32{0, 1, 2, 7, Budget - 1, Budget + 1, 5000}
		c := byte(genCounter + depth)
		b = appendS32(append(b, 0x41), counts[g.s.next()%len(counts)], 0x21, c)
		b = append(b, 0x02, 0x40, opLoop, 0x40,
			0x20, c, 0x45, 0x0D, 0x01, // counter == 0: break
			opGlobalGet, genFuelG, 0x45, 0x0D, 0x01, // fuel == 0: break
			opGlobalGet, genFuelG, 0x41, 0x01, 0x6B, opGlobalSet, genFuelG)
		b = g.stmts(b, self, depth+1)
		return append(b, 0x20, c, 0x41, 0x01, 0x6B, 0x21, c, 0x0C, 0x00, opEnd, opEnd)
	case op == 2 && depth < 4:
		b = append(b, 0x20, genAcc, 0x41, 0x01, 0x71, opIf, 0x40)
		b = g.stmts(b, self, depth)
		b = append(b, 0x05)
		b = g.stmts(b, self, depth)
		return append(b, opEnd)
	case op == 3 && later > 0:
		j := self + 1 + g.s.next()%later
		b = append(b, 0x20, genAcc, 0x20, 0x01)
		b = appendU32(append(b, opCall), uint32(1+j))
		return set(append(b, 0x20, genAcc, 0x73)) // xor
	case op == 4 && later > 0:
		j := self + 1 + g.s.next()%later
		b = append(b, 0x20, genAcc, 0x20, 0x00)
		b = appendU32(append(b, 0x41), uint32(j)) // j < 64: one-byte i32.const
		return set(append(b, 0x11, 0x00, 0x00))   // call_indirect type 0 table 0
	case op == 5:
		return set(append(b, 0x20, genAcc, opCall, 0x00)) // host function
	case op == 6:
		at := byte(4 * (g.s.next() % 16))
		b = append(b, 0x41, at, 0x20, genAcc, 0x36, 0x02, 0x00) // i32.store
		b = append(b, 0x41, at^8, 0x28, 0x02, 0x00, 0x20, genAcc, 0x6A)
		return set(b)
	case op == 7:
		b = append(b, opGlobalGet, genG1, 0x20, genAcc, 0x6A, opGlobalSet, genG1)
		return set(append(b, opGlobalGet, 0x00, 0x20, genAcc, 0x6A))
	case op == 8:
		b = append(b, 0x02, 0x40, 0x02, 0x40, 0x02, 0x40,
			0x20, genAcc, 0x41, 0x03, 0x70, 0x0E, 0x02, 0x00, 0x01, 0x02, opEnd) // br_table on acc % 3
		b = set(append(b, 0x20, genAcc, 0x41, 0x0B, 0x6A))
		b = append(b, opEnd)
		b = set(append(b, 0x20, genAcc, 0x41, 0x0D, 0x6C))
		return append(b, opEnd)
	case op == 9:
		// Re-set table slots with ref.func and the funcref global: a wrong renumbering
		// would point them at other functions.
		j := g.s.next() % g.n
		b = appendU32(append(b, 0x41, byte(j), opRefFunc), uint32(1+j))
		b = append(b, 0x26, 0x00) // table.set 0
		return append(b, 0x41, byte(g.n-1), opGlobalGet, genFuncRefG, 0x26, 0x00)
	}
	k := byte(1 + g.s.next()%100)
	return set(append(b, 0x20, genAcc, 0x41, k, 0x6C, 0x20, 0x01, 0x6A)) // acc*k + b
}

// outcome is what running a module's functions produced.
type outcome struct {
	results []string
	memory  uint32
	g1      uint64
	yields  int64
}

// run instantiates m with the env and routerd_preempt host modules and calls f0..f(n-1)
// with arguments from args.
func run(t testing.TB, m []byte, n int, args []byte) outcome {
	t.Helper()
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	env := rt.NewHostModuleBuilder("env").
		NewFunctionBuilder().WithFunc(func(x uint32) uint32 { return x*2654435761 + 1 }).Export("h")
	if _, err := env.Instantiate(ctx); err != nil {
		t.Fatal(err)
	}
	// envk.k is an imported global, exported by a second module.
	_, err := rt.InstantiateWithConfig(ctx, module(
		section{6, []byte{0x01, 0x7F, 0x00, 0x41, 0x2A, 0x0B}},
		section{7, append(appendName([]byte{0x01}, "k"), 0x03, 0x00)},
	), wazero.NewModuleConfig().WithName("envk"))
	if err != nil {
		t.Fatal(err)
	}
	y := &yieldHost{}
	y.register(t, rt)
	mod, err := rt.InstantiateWithConfig(ctx, m, wazero.NewModuleConfig())
	if err != nil {
		t.Fatalf("instantiate: %v", err)
	}
	var o outcome
	s := &src{b: args}
	for i := range n {
		a, b := uint64(s.next()*977), uint64(s.next())
		res, err := mod.ExportedFunction(fmt.Sprintf("f%d", i)).Call(ctx, a, b)
		switch {
		case err != nil:
			o.results = append(o.results, "error: "+firstLine(err))
		default:
			o.results = append(o.results, fmt.Sprint(res))
		}
	}
	buf, _ := mod.Memory().Read(0, 1024)
	o.memory = crc32.ChecksumIEEE(buf)
	o.g1 = mod.ExportedGlobal("g1").Get()
	o.yields = y.calls.Load()
	return o
}

func firstLine(err error) string {
	s := err.Error()
	if i := bytes.IndexByte([]byte(s), '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// differential generates a module from input, instruments it and compares the runs.
func differential(t testing.TB, input []byte) outcome {
	t.Helper()
	m, n := generate(input)
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	if _, err := rt.CompileModule(ctx, m); err != nil {
		t.Fatalf("generated module does not compile (generator bug): %v", err)
	}
	out, err := Instrument(m)
	if err != nil {
		t.Fatalf("instrument a supported module: %v", err)
	}
	before, err := rt.CompileModule(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	after, err := rt.CompileModule(ctx, out)
	if err != nil {
		t.Fatalf("instrumented module does not validate: %v", err)
	}
	for name, f := range before.ExportedFunctions() {
		if got := after.ExportedFunctions()[name]; got == nil || got.Name() != f.Name() {
			t.Fatalf("export %s: name %q before, %v after", name, f.Name(), got)
		}
	}
	want, got := run(t, m, n, input), run(t, out, n, input)
	if fmt.Sprint(want.results) != fmt.Sprint(got.results) || want.memory != got.memory || want.g1 != got.g1 {
		t.Fatalf("instrumented module computes differently:\noriginal     %+v\ninstrumented %+v", want, got)
	}
	return got
}

// rawCheck runs on input that is itself a module: if wazero accepts it, Instrument must
// refuse it with ErrUnsupported or return a module wazero accepts.
func rawCheck(t testing.TB, input []byte) {
	t.Helper()
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	if _, err := rt.CompileModule(ctx, input); err != nil {
		return
	}
	out, err := Instrument(input)
	if err != nil {
		if !errors.Is(err, ErrUnsupported) {
			t.Fatalf("refused without ErrUnsupported: %v", err)
		}
		return
	}
	if _, err := rt.CompileModule(ctx, out); err != nil {
		t.Fatalf("wazero accepts the module but not its instrumented copy: %v", err)
	}
}

// diffSeeds are generator inputs covering each statement kind.
var diffSeeds = [][]byte{
	{},
	{3, 2, 1, 6, 2, 0, 3, 1, 4, 0, 5, 1, 3, 7},
	{1, 2, 1, 5, 1, 1, 1, 4, 0, 0, 9, 7, 8},
	{3, 3, 3, 1, 3, 2, 2, 2, 9, 1, 9, 0, 7, 6, 5, 4, 8},
	{2, 1, 2, 1, 2, 1, 2, 1, 4, 8, 5, 9, 0},
	{3, 1, 1, 1, 6, 1, 1, 0, 6, 4, 2, 8, 3, 3, 9, 9},
}

func TestInstrumentDifferential(t *testing.T) {
	yielded := false
	for i, seed := range diffSeeds {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			o := differential(t, seed)
			yielded = yielded || o.yields > 0
			m, _ := generate(seed)
			rawCheck(t, m)
		})
	}
	if !yielded {
		t.Error("no seed ran a loop long enough to call yield: the seeds do not cover the check")
	}
}

// FuzzInstrument is the differential test on generated modules, and the refuse-or-valid
// check on modules given as raw bytes (input starting with the Wasm magic).
func FuzzInstrument(f *testing.F) {
	for _, seed := range diffSeeds {
		f.Add(seed)
		m, _ := generate(seed)
		f.Add(m)
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		if bytes.HasPrefix(input, magic) {
			rawCheck(t, input)
			return
		}
		if len(input) > 256 {
			return // bound the generated module's size and run time
		}
		differential(t, input)
	})
}
