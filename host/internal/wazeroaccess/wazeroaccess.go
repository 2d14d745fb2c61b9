// Package wazeroaccess reaches the two things the host needs from a compiled Extism
// plugin that neither the Extism go-sdk nor wazero export: the machine code of its
// compiled modules and the function bodies wazero keeps after compiling them.
//
// A compiled Go wasip1 module holds about 10 MB of machine code in an anonymous
// mapping, all of it resident although a plugin runs a small part of it, and wazero
// keeps every function body of the decoded module (about 2 MB per Go module) for as long
// as the module is compiled, although the pinned version reads them only while
// compiling. The host backs the machine code by a file (see package codefile) and,
// unless Options.KeepFunctionBodies is set, drops the bodies.
//
// Everything here depends on unexported fields of the pinned versions of
// github.com/extism/go-sdk (CompiledPlugin.main) and github.com/tetratelabs/wazero
// (compiledModule.module and .compiledEngine; the wazevo engine's sortedCompiledModules
// and executables.executable; wasm.Code.Body and .LocalTypes). The fields are found by
// name with package reflect; when a field is missing or has another type, the functions
// return an error wrapping ErrLayout and change nothing, and TestLayout fails, which is
// the signal to revisit this package after upgrading either module.
package wazeroaccess

import (
	"errors"
	"fmt"
	"reflect"
	"unsafe"

	extism "github.com/extism/go-sdk"
)

// The module versions this package was written and checked against (go.mod pins them
// exactly; TestLayout fails when the build uses others).
const (
	PinnedWazero = "v1.12.0"
	PinnedExtism = "v1.7.1"
)

// ErrLayout is wrapped by every error about a field this package expected and did not
// find.
var ErrLayout = errors.New("wazeroaccess: unexpected Extism/wazero internals")

// Executables returns the machine code of every module compiled in the plugin's wazero
// runtime (the plugin's module, the Extism kernel and host modules), as slices over the
// engine's executable mappings. The slices stay valid while the plugin is open.
func Executables(p *extism.CompiledPlugin) ([][]byte, error) {
	engine, err := mainEngine(p)
	if err != nil {
		return nil, err
	}
	modules, err := field(engine, "sortedCompiledModules", reflect.Slice)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for i := range modules.Len() {
		cm := modules.Index(i)
		if cm.Kind() != reflect.Pointer || cm.IsNil() {
			return nil, fmt.Errorf("%w: sortedCompiledModules[%d] is %s", ErrLayout, i, cm.Kind())
		}
		execs, err := field(cm.Elem(), "executables", reflect.Pointer)
		if err != nil {
			return nil, err
		}
		if execs.IsNil() {
			continue
		}
		code, err := field(execs.Elem(), "executable", reflect.Slice)
		if err != nil {
			return nil, err
		}
		if code.Type().Elem().Kind() != reflect.Uint8 {
			return nil, fmt.Errorf("%w: executable is %s, want []byte", ErrLayout, code.Type())
		}
		if code.Len() == 0 {
			continue
		}
		out = append(out, unsafe.Slice((*byte)(code.UnsafePointer()), code.Len()))
	}
	return out, nil
}

// DropFunctionBodies releases the function bodies (and local declarations) of the
// plugin's decoded main module. It returns the number of bytes released. Call it once
// the plugin is compiled.
//
// This is safe only while wazero never reads the bodies after compiling. wazero does not
// promise that; PinnedWazero reads them only in module validation and the compilers, both
// run by CompileModule on a freshly decoded module (TestBodiesUnusedAfterCompile runs
// the paths the host uses afterwards: instantiating, calling, traps with stack traces,
// function listeners, compiling the same module again). The host calls it only when
// Options.KeepFunctionBodies is not set.
func DropFunctionBodies(p *extism.CompiledPlugin) (int, error) {
	return replaceBodies(p, func(f reflect.Value) { f.SetZero() })
}

// replaceBodies calls set with a settable view of the Body and LocalTypes fields of
// every function of the plugin's decoded main module and returns their size before.
func replaceBodies(p *extism.CompiledPlugin, set func(reflect.Value)) (int, error) {
	cm, err := mainModule(p)
	if err != nil {
		return 0, err
	}
	mod, err := field(cm, "module", reflect.Pointer)
	if err != nil {
		return 0, err
	}
	if mod.IsNil() {
		return 0, fmt.Errorf("%w: compiledModule.module is nil", ErrLayout)
	}
	codes, err := field(mod.Elem(), "CodeSection", reflect.Slice)
	if err != nil {
		return 0, err
	}
	// Check the whole layout before changing anything.
	for _, name := range []string{"Body", "LocalTypes"} {
		f, ok := codes.Type().Elem().FieldByName(name)
		if !ok || f.Type.Kind() != reflect.Slice {
			return 0, fmt.Errorf("%w: wasm.Code has no slice field %s", ErrLayout, name)
		}
	}
	released := 0
	for i := range codes.Len() {
		code := codes.Index(i)
		for _, name := range []string{"Body", "LocalTypes"} {
			f := code.FieldByName(name)
			released += f.Cap() * int(f.Type().Elem().Size())
			set(writable(f))
		}
	}
	return released, nil
}

// mainModule returns the wazero compiledModule struct behind the plugin's main module.
func mainModule(p *extism.CompiledPlugin) (reflect.Value, error) {
	if p == nil {
		return reflect.Value{}, fmt.Errorf("%w: nil plugin", ErrLayout)
	}
	main, err := field(reflect.ValueOf(p).Elem(), "main", reflect.Interface)
	if err != nil {
		return reflect.Value{}, err
	}
	cm := main.Elem()
	if cm.Kind() != reflect.Pointer || cm.IsNil() || cm.Elem().Kind() != reflect.Struct {
		return reflect.Value{}, fmt.Errorf("%w: CompiledPlugin.main holds %s", ErrLayout, cm.Kind())
	}
	return cm.Elem(), nil
}

// mainEngine returns the wazevo engine struct the plugin's modules are compiled on.
func mainEngine(p *extism.CompiledPlugin) (reflect.Value, error) {
	cm, err := mainModule(p)
	if err != nil {
		return reflect.Value{}, err
	}
	engine, err := field(cm, "compiledEngine", reflect.Interface)
	if err != nil {
		return reflect.Value{}, err
	}
	e := engine.Elem()
	if e.Kind() != reflect.Pointer || e.IsNil() || e.Elem().Kind() != reflect.Struct {
		return reflect.Value{}, fmt.Errorf("%w: compiledEngine holds %s", ErrLayout, e.Kind())
	}
	return e.Elem(), nil
}

// field returns the field name of struct v, checking its kind.
func field(v reflect.Value, name string, kind reflect.Kind) (reflect.Value, error) {
	if v.Kind() != reflect.Struct {
		return reflect.Value{}, fmt.Errorf("%w: %s is not a struct, looking for field %s", ErrLayout, v.Type(), name)
	}
	f := v.FieldByName(name)
	if !f.IsValid() {
		return reflect.Value{}, fmt.Errorf("%w: %s has no field %s", ErrLayout, v.Type(), name)
	}
	if f.Kind() != kind {
		return reflect.Value{}, fmt.Errorf("%w: %s.%s is %s, want %s", ErrLayout, v.Type(), name, f.Kind(), kind)
	}
	return f, nil
}

// writable returns a settable view of f, an addressable field reached through
// unexported fields (reflect refuses to set those).
func writable(f reflect.Value) reflect.Value {
	return reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem()
}
