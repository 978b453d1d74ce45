package uprobe

import (
	"debug/elf"
	"debug/gosym"
	"errors"
	"fmt"
)

// Target is one function to probe and the cookie its hits carry.
type Target struct {
	Symbol string // linker name, e.g. "github.com/migtrace/migtrace/probes.PhaseBegin"
	Cookie uint64
}

// SymbolTable maps function names of one ELF binary to file offsets, the
// form uprobes take. It reads .symtab and falls back to .gopclntab, which
// survives -ldflags=-s.
type SymbolTable struct {
	binary string
	funcs  map[string]uint64 // name -> virtual address
	loads  []elf.ProgHeader  // executable PT_LOAD segments
	source string            // ".symtab" or ".gopclntab"
}

// OpenSymbolTable reads the function symbols of the ELF file at path.
func OpenSymbolTable(path string) (*SymbolTable, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading symbols of %s: %w", path, err)
	}
	defer f.Close()
	st := &SymbolTable{binary: path, funcs: map[string]uint64{}}
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && p.Flags&elf.PF_X != 0 {
			st.loads = append(st.loads, p.ProgHeader)
		}
	}
	if len(st.loads) == 0 {
		return nil, fmt.Errorf("reading symbols of %s: no executable PT_LOAD segment", path)
	}
	syms, err := f.Symbols()
	switch {
	case err == nil:
		st.source = ".symtab"
		for _, s := range syms {
			if elf.ST_TYPE(s.Info) == elf.STT_FUNC && s.Value != 0 {
				st.funcs[s.Name] = s.Value
			}
		}
		return st, nil
	case errors.Is(err, elf.ErrNoSymbols):
		if err := st.readPclntab(f); err != nil {
			return nil, fmt.Errorf("reading symbols of %s (stripped, so from .gopclntab): %w", path, err)
		}
		st.source = ".gopclntab"
		return st, nil
	default:
		return nil, fmt.Errorf("reading symbols of %s: %w", path, err)
	}
}

func (st *SymbolTable) readPclntab(f *elf.File) error {
	pcln := f.Section(".gopclntab")
	text := f.Section(".text")
	if pcln == nil || text == nil {
		return errors.New("no .gopclntab or .text section: not a Go binary")
	}
	data, err := pcln.Data()
	if err != nil {
		return err
	}
	tab, err := gosym.NewTable(nil, gosym.NewLineTable(data, text.Addr))
	if err != nil {
		return err
	}
	for _, fn := range tab.Funcs {
		st.funcs[fn.Name] = fn.Entry
	}
	return nil
}

// Source names the table the symbols came from: ".symtab" or ".gopclntab".
func (st *SymbolTable) Source() string { return st.source }

// Offset returns the file offset of function name's entry.
func (st *SymbolTable) Offset(name string) (uint64, error) {
	addr, ok := st.funcs[name]
	if !ok {
		return 0, &SymbolError{Symbols: []string{name}, Binary: st.binary}
	}
	for _, p := range st.loads {
		if addr >= p.Vaddr && addr < p.Vaddr+p.Memsz {
			return addr - p.Vaddr + p.Off, nil
		}
	}
	return 0, &SymbolError{Symbols: []string{name}, Binary: st.binary,
		Err: fmt.Errorf("address %#x is in no executable segment", addr)}
}
