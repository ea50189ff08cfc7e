package main

import (
	"fmt"
	"sort"
)

// SPV_NV_cooperative_matrix -> SPV_KHR_cooperative_matrix.
//
// The two extensions differ in three ways that matter here:
//   - a KHR matrix type carries a Use (A, B or accumulator) that the NV type
//     lacks, so one NV type may become several KHR types: every value, and
//     every variable, array and pointer that holds one, takes the Use of
//     the MulAdd operand it flows into;
//   - loads and stores name the memory layout by an integer constant
//     (RowMajorKHR 0, ColumnMajorKHR 1) before the stride instead of a
//     boolean after it;
//   - opcodes, the capability and the extension name are renumbered.
//
// Uses are inferred by union-find over the ids whose type holds an NV
// matrix: a load, store, access chain, copy, phi, select, composite or
// element-wise operation joins its operands' class with its result's, and
// MulAdd fixes the class of each operand. A class with no MulAdd use (a
// value only stored, say) becomes an accumulator. Anything the translation
// does not understand that touches a cooperative matrix is an error, never
// passed through.

const (
	opUndef                 = 1
	opSource                = 3
	opSourceExtension       = 4
	opName                  = 5
	opMemberName            = 6
	opString                = 7
	opLine                  = 8
	opExtension             = 10
	opExtInstImport         = 11
	opMemoryModel           = 14
	opEntryPoint            = 15
	opExecutionMode         = 16
	opCapability            = 17
	opTypeInt               = 21
	opTypeArray             = 28
	opTypeRuntimeArray      = 29
	opTypeStruct            = 30
	opTypeForwardPointer    = 39
	opTypePointer           = 32
	opTypeFunction          = 33
	opConstantTrue          = 41
	opConstantFalse         = 42
	opConstant              = 43
	opConstantComposite     = 44
	opConstantNull          = 46
	opSpecConstantTrue      = 48
	opSpecConstantFalse     = 49
	opSpecConstant          = 50
	opSpecConstantComposite = 51
	opFunction              = 54
	opVariable              = 59
	opLoad                  = 61
	opStore                 = 62
	opAccessChain           = 65
	opInBoundsAccessChain   = 66
	opDecorate              = 71
	opMemberDecorate        = 72
	opCompositeConstruct    = 80
	opCompositeExtract      = 81
	opCompositeInsert       = 82
	opCopyObject            = 83
	opMatrixTimesScalar     = 143
	opSelect                = 169
	opPhi                   = 245
	opModuleProcessed       = 330
	opExecutionModeID       = 331

	capCoopNV  = 5357
	capCoopKHR = 6022

	opTypeCoopNV   = 5358
	opCoopLoadNV   = 5359
	opCoopStoreNV  = 5360
	opCoopMulAddNV = 5361
	opCoopLengthNV = 5362

	opTypeCoopKHR   = 4456
	opCoopLoadKHR   = 4457
	opCoopStoreKHR  = 4458
	opCoopMulAddKHR = 4459

	extNV  = "SPV_NV_cooperative_matrix"
	extKHR = "SPV_KHR_cooperative_matrix"
)

// Element-wise operations (conversions and arithmetic) whose coopmat
// operands and result share a Use.
var elementwise = map[uint32]bool{
	109: true, 110: true, 111: true, 112: true, 113: true, 114: true, 115: true, // conversions
	126: true, 127: true, 128: true, 129: true, 130: true, 131: true, 132: true, // negate, add, sub, mul
	133: true, 134: true, 135: true, 136: true, opMatrixTimesScalar: true, // mul, div
}

// Instructions that hold only literals or debug/decoration references:
// their words are never matrix values.
var inert = map[uint32]bool{
	opSource: true, opSourceExtension: true, opName: true, opMemberName: true, opString: true,
	opLine: true, opExtension: true, opExtInstImport: true, opMemoryModel: true, opEntryPoint: true,
	opExecutionMode: true, opCapability: true, opDecorate: true, opMemberDecorate: true,
	opModuleProcessed: true, opExecutionModeID: true, opConstantTrue: true, opConstantFalse: true,
	opConstant: true, opSpecConstantTrue: true, opSpecConstantFalse: true, opSpecConstant: true,
	opTypeInt: true, 22 /* OpTypeFloat */ : true, 19 /* OpTypeVoid */ : true, 20 /* OpTypeBool */ : true,
	23 /* OpTypeVector */ : true,
}

// Uses of a KHR cooperative matrix (the values of its Use operand).
type use int

const (
	useA use = iota
	useB
	useAcc
	nUses
)

var useNames = [nUses]string{"MatrixA", "MatrixB", "accumulator"}

// translator holds the analysis of one module.
type translator struct {
	m       *module
	defs    map[uint32]inst // type and constant definitions by result id
	holds   map[uint32]bool // memo: type id holds an NV matrix
	typeOf  map[uint32]uint32
	consts  map[uint32]bool // constants/undefs of a matrix-holding type
	parent  map[uint32]uint32
	fixed   map[uint32]use    // class root -> use demanded by a MulAdd
	why     map[uint32]string // class root -> where that use came from
	typeFor map[[2]uint32]uint32
	ints    map[uint32]uint32 // 32-bit integer constant value -> id
	newInts []inst
	intType uint32
}

// Translate rewrites an NV cooperative-matrix module to the KHR extension.
// A module without NV cooperative matrices is an error: the caller asked
// for a translation that would do nothing.
func Translate(b []byte) ([]byte, error) {
	m, err := parse(b)
	if err != nil {
		return nil, err
	}
	t := &translator{
		m: m, defs: map[uint32]inst{}, holds: map[uint32]bool{}, typeOf: map[uint32]uint32{},
		consts: map[uint32]bool{}, parent: map[uint32]uint32{}, fixed: map[uint32]use{},
		why: map[uint32]string{}, typeFor: map[[2]uint32]uint32{}, ints: map[uint32]uint32{},
	}
	if err := t.analyse(); err != nil {
		return nil, err
	}
	if err := t.rewrite(); err != nil {
		return nil, err
	}
	return m.bytes(), nil
}

func isType(op uint32) bool { return op >= 19 && op <= 39 || op == opTypeCoopNV }

// resultTyped lists the opcodes this translation reads a (type, result)
// pair from: every instruction that can produce a matrix value or a
// pointer to one.
var resultTyped = map[uint32]bool{
	opUndef: true, opConstantComposite: true, opConstantNull: true, opSpecConstantComposite: true,
	opVariable: true, opLoad: true, opAccessChain: true, opInBoundsAccessChain: true,
	opCompositeConstruct: true, opCompositeExtract: true, opCompositeInsert: true, opCopyObject: true,
	opSelect: true, opPhi: true, opCoopLoadNV: true, opCoopMulAddNV: true,
}

func (t *translator) holdsNV(id uint32) (bool, error) {
	if h, ok := t.holds[id]; ok {
		return h, nil
	}
	d, ok := t.defs[id]
	if !ok {
		return false, nil
	}
	h := false
	switch d.op {
	case opTypeCoopNV:
		h = true
	case opTypeArray, opTypeRuntimeArray:
		h, _ = t.holdsNV(d.words[2])
	case opTypePointer:
		h, _ = t.holdsNV(d.words[3])
	case opTypeStruct:
		for _, mem := range d.words[2:] {
			if x, _ := t.holdsNV(mem); x {
				h = true
			}
		}
	case opTypeFunction:
		for _, p := range d.words[2:] {
			if x, _ := t.holdsNV(p); x {
				return false, fmt.Errorf("function type %%%d takes or returns a cooperative matrix: inline the function (glslc -O does)", id)
			}
		}
	}
	t.holds[id] = h
	return h, nil
}

func (t *translator) find(x uint32) uint32 {
	for t.parent[x] != x {
		t.parent[x] = t.parent[t.parent[x]]
		x = t.parent[x]
	}
	return x
}

// join merges the classes of a and b where both are matrix-holding values
// (constants are cloned per use instead of joined).
func (t *translator) join(a, b uint32) error {
	if _, ok := t.parent[a]; !ok {
		return nil
	}
	if _, ok := t.parent[b]; !ok {
		return nil
	}
	ra, rb := t.find(a), t.find(b)
	if ra == rb {
		return nil
	}
	ua, oka := t.fixed[ra]
	ub, okb := t.fixed[rb]
	if oka && okb && ua != ub {
		return fmt.Errorf("%%%d (%s: %s) and %%%d (%s: %s) share storage or flow into each other; a KHR matrix has one use: give each use its own variable",
			a, useNames[ua], t.why[ra], b, useNames[ub], t.why[rb])
	}
	t.parent[rb] = ra
	if okb && !oka {
		t.fixed[ra], t.why[ra] = ub, t.why[rb]
	}
	return nil
}

func (t *translator) demand(id uint32, u use, where string) error {
	if t.consts[id] {
		return nil // cloned for this use at the rewrite
	}
	if _, ok := t.parent[id]; !ok {
		return fmt.Errorf("%s: operand %%%d is not a cooperative matrix", where, id)
	}
	r := t.find(id)
	if old, ok := t.fixed[r]; ok && old != u {
		return fmt.Errorf("%%%d is used as %s (%s) and as %s (%s); a KHR matrix has one use: load it twice",
			id, useNames[old], t.why[r], useNames[u], where)
	}
	t.fixed[r], t.why[r] = u, where
	return nil
}

// isMatrixID reports whether id is a matrix-holding value, constant or type.
func (t *translator) isMatrixID(id uint32) bool {
	if _, ok := t.parent[id]; ok || t.consts[id] {
		return true
	}
	return t.holds[id]
}

func (t *translator) analyse() error {
	m := t.m
	seenNV := false
	for _, in := range m.insts {
		switch {
		case isType(in.op):
			if in.op == opTypeCoopNV {
				seenNV = true
			}
			if len(in.words) > 1 {
				t.defs[in.words[1]] = in
			}
			if in.op == opTypeForwardPointer {
				return fmt.Errorf("OpTypeForwardPointer is not supported")
			}
		case in.op == opConstant && len(in.words) == 4:
			t.defs[in.words[2]] = in
		case in.op == opConstantTrue || in.op == opConstantFalse:
			t.defs[in.words[2]] = in
		}
	}
	if !seenNV {
		return fmt.Errorf("no OpTypeCooperativeMatrixNV in the module: nothing to translate")
	}
	for id := range t.defs {
		if _, err := t.holdsNV(id); err != nil {
			return err
		}
	}
	// Matrix-holding values and constants.
	for _, in := range m.insts {
		if !resultTyped[in.op] || len(in.words) < 3 || !t.holds[in.words[1]] {
			continue
		}
		r := in.words[2]
		t.typeOf[r] = in.words[1]
		switch in.op {
		case opUndef, opConstantComposite, opConstantNull, opSpecConstantComposite:
			t.consts[r] = true
		default:
			t.parent[r] = r
		}
	}
	// Classes and demanded uses.
	for i, in := range m.insts {
		w := in.words
		where := func() string { return fmt.Sprintf("instruction %d (opcode %d)", i, in.op) }
		var err error
		switch {
		case in.op == opLoad:
			err = t.join(w[2], w[3])
		case in.op == opStore:
			err = t.join(w[1], w[2])
		case in.op == opAccessChain || in.op == opInBoundsAccessChain:
			_, resM := t.parent[w[2]]
			_, baseM := t.parent[w[3]]
			if baseM && !resM {
				return fmt.Errorf("%s: %%%d indexes into a cooperative matrix; element access is not supported", where(), w[2])
			}
			err = t.join(w[2], w[3])
		case in.op == opCopyObject:
			err = t.join(w[2], w[3])
		case in.op == opPhi:
			for k := 3; k+1 < len(w) && err == nil; k += 2 {
				err = t.join(w[2], w[k])
			}
		case in.op == opSelect:
			if err = t.join(w[2], w[4]); err == nil {
				err = t.join(w[2], w[5])
			}
		case in.op == opCompositeConstruct || elementwise[in.op]:
			for _, x := range w[3:] {
				if err = t.join(w[2], x); err != nil {
					break
				}
			}
		case in.op == opCompositeExtract:
			err = t.join(w[2], w[3])
		case in.op == opCompositeInsert:
			if err = t.join(w[2], w[4]); err == nil {
				err = t.join(w[2], w[3])
			}
		case in.op == opCoopMulAddNV:
			for k, u := range []use{useAcc, useA, useB, useAcc} {
				if err = t.demand(w[2+k], u, fmt.Sprintf("MulAdd %%%d operand %d", w[2], k)); err != nil {
					break
				}
			}
		case in.op == opCoopLengthNV:
			return fmt.Errorf("%s: OpCooperativeMatrixLengthNV: the KHR length depends on the use, which this translation does not infer for it", where())
		case in.op == opVariable, in.op == opCoopLoadNV, in.op == opCoopStoreNV, in.op == opUndef,
			in.op == opConstantComposite, in.op == opConstantNull, in.op == opSpecConstantComposite,
			isType(in.op), inert[in.op]:
		default:
			for _, x := range w[1:] {
				if t.isMatrixID(x) {
					return fmt.Errorf("%s reads %%%d, which holds a cooperative matrix; the translation does not know this opcode", where(), x)
				}
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// useOf is the KHR use of a matrix-holding value.
func (t *translator) useOf(id uint32) use {
	if u, ok := t.fixed[t.find(id)]; ok {
		return u
	}
	return useAcc
}

// intConst returns the id of a 32-bit integer constant with value v,
// creating it (in t.newInts, emitted before the first matrix type) if the
// module has none.
func (t *translator) intConst(v uint32) uint32 {
	if id, ok := t.ints[v]; ok {
		return id
	}
	id := t.m.newID()
	t.newInts = append(t.newInts, mk(opConstant, t.intType, id, v))
	t.ints[v] = id
	return id
}

// ktype returns the id of the KHR form of type id for use u, allocating
// (the original id goes to the first use asked for).
func (t *translator) ktype(id uint32, u use) uint32 {
	if !t.holds[id] {
		return id
	}
	k := [2]uint32{id, uint32(u)}
	if x, ok := t.typeFor[k]; ok {
		return x
	}
	taken := false
	for v := use(0); v < nUses; v++ {
		if _, ok := t.typeFor[[2]uint32{id, uint32(v)}]; ok {
			taken = true
		}
	}
	x := id
	if taken {
		x = t.m.newID()
	}
	t.typeFor[k] = x
	// The parts of the type in the same use.
	d := t.defs[id]
	switch d.op {
	case opTypeArray, opTypeRuntimeArray:
		t.ktype(d.words[2], u)
	case opTypePointer:
		t.ktype(d.words[3], u)
	case opTypeStruct:
		for _, mem := range d.words[2:] {
			t.ktype(mem, u)
		}
	}
	return x
}

func (t *translator) rewrite() error {
	m := t.m
	// Integer constants that can serve as Use and MemoryLayout operands:
	// those defined before the first matrix type, which is where any new
	// ones go.
	first := -1
	for i, in := range m.insts {
		if in.op == opTypeCoopNV {
			first = i
			break
		}
		if in.op == opTypeInt && in.words[2] == 32 && t.intType == 0 {
			t.intType = in.words[1]
		}
		if in.op == opConstant && len(in.words) == 4 {
			if d, ok := t.defs[in.words[1]]; ok && d.op == opTypeInt && d.words[2] == 32 {
				if _, dup := t.ints[in.words[3]]; !dup {
					t.ints[in.words[3]] = in.words[2]
				}
			}
		}
	}
	if t.intType == 0 {
		return fmt.Errorf("no 32-bit integer type before the first OpTypeCooperativeMatrixNV")
	}
	// Every use of every matrix type that a value needs; types and
	// constants nothing uses keep the accumulator form.
	vals := make([]uint32, 0, len(t.parent))
	for id := range t.parent {
		vals = append(vals, id)
	}
	sort.Slice(vals, func(i, j int) bool { return vals[i] < vals[j] })
	for _, id := range vals {
		t.ktype(t.typeOf[id], t.useOf(id))
	}
	constUses := map[uint32]map[use]bool{}
	needConst := func(id uint32, u use) uint32 {
		if !t.consts[id] {
			return id
		}
		if constUses[id] == nil {
			constUses[id] = map[use]bool{}
		}
		constUses[id][u] = true
		return id
	}
	// First pass over the body: record the uses of each constant, so the
	// constants can be emitted (in the types section) before the body.
	t.body(func(_ int, _ inst, id uint32, u use) uint32 { return needConst(id, u) })
	constFor := map[[2]uint32]uint32{}
	for _, id := range sorted(t.consts) {
		us := constUses[id]
		if len(us) == 0 {
			us = map[use]bool{useAcc: true}
		}
		reuse := true // the original id goes to the first use
		for u := use(0); u < nUses; u++ {
			if !us[u] {
				continue
			}
			x := id
			if !reuse {
				x = m.newID()
			}
			reuse = false
			constFor[[2]uint32{id, uint32(u)}] = x
			t.ktype(t.typeOf[id], u)
		}
	}
	// A type nothing uses (an array glslc declared and then optimised
	// away) takes the use its matrix already has, so that no matrix type
	// appears in a combination the shader never asked for.
	for _, id := range sorted(t.holds) {
		if _, any := t.anyUse(id); t.holds[id] && !any {
			u, ok := t.anyUse(t.leaf(id))
			if !ok {
				u = useAcc
			}
			t.ktype(id, u)
		}
	}
	useConst := [nUses]uint32{t.intConst(0), t.intConst(1), t.intConst(2)}
	layout := map[bool]uint32{false: t.intConst(0), true: t.intConst(1)}

	// Second pass: emit.
	var out []inst
	replace := func(_ int, _ inst, id uint32, u use) uint32 {
		if t.consts[id] {
			return constFor[[2]uint32{id, uint32(u)}]
		}
		return id
	}
	rewritten := map[int]inst{}
	var bodyErr error
	t.body(func(i int, in inst, id uint32, u use) uint32 { return replace(i, in, id, u) }, func(i int, in inst) {
		rewritten[i] = in
	})
	for i, in := range m.insts {
		if i == first {
			out = append(out, t.newInts...)
		}
		switch {
		case in.op == opCapability && in.words[1] == capCoopNV:
			out = append(out, mk(opCapability, capCoopKHR))
		case in.op == opExtension && decodeString(in.words[1:]) == extNV:
			out = append(out, mk(opExtension, stringWords(extKHR)...))
		case isType(in.op) && t.holds[in.words[1]]:
			for u := use(0); u < nUses; u++ {
				x, ok := t.typeFor[[2]uint32{in.words[1], uint32(u)}]
				if !ok {
					continue
				}
				w := append([]uint32(nil), in.words...)
				w[1] = x
				switch in.op {
				case opTypeCoopNV:
					w = append(w[:6:6], useConst[u])
					w[0] = uint32(len(w))<<16 | opTypeCoopKHR
				case opTypeArray, opTypeRuntimeArray:
					w[2] = t.ktype(w[2], u)
				case opTypePointer:
					w[3] = t.ktype(w[3], u)
				case opTypeStruct:
					for k := 2; k < len(w); k++ {
						w[k] = t.ktype(w[k], u)
					}
				}
				out = append(out, inst{op: w[0] & 0xffff, words: w})
			}
		case t.consts[resultOf(in)] && resultTyped[in.op]:
			id := in.words[2]
			for u := use(0); u < nUses; u++ {
				x, ok := constFor[[2]uint32{id, uint32(u)}]
				if !ok {
					continue
				}
				w := append([]uint32(nil), in.words...)
				w[1], w[2] = t.ktype(w[1], u), x
				for k := 3; k < len(w) && in.op != opConstantNull && in.op != opUndef; k++ {
					if t.consts[w[k]] {
						w[k] = constFor[[2]uint32{w[k], uint32(u)}]
					}
				}
				out = append(out, inst{op: in.op, words: w})
			}
		default:
			if r, ok := rewritten[i]; ok {
				in = r
			}
			switch in.op {
			case opCoopLoadNV: // type, result, pointer, stride, column-major [, memory access...]
				w := in.words
				cm, err := t.boolConst(w[5])
				if err != nil {
					bodyErr = fmt.Errorf("load %%%d: %w", w[2], err)
				}
				in = mk(opCoopLoadKHR, append([]uint32{w[1], w[2], w[3], layout[cm], w[4]}, w[6:]...)...)
			case opCoopStoreNV: // pointer, object, stride, column-major [, memory access...]
				w := in.words
				cm, err := t.boolConst(w[4])
				if err != nil {
					bodyErr = fmt.Errorf("store of %%%d: %w", w[2], err)
				}
				in = mk(opCoopStoreKHR, append([]uint32{w[1], w[2], layout[cm], w[3]}, w[5:]...)...)
			case opCoopMulAddNV:
				in = mk(opCoopMulAddKHR, in.words[1:]...)
			}
			out = append(out, in)
		}
	}
	if bodyErr != nil {
		return bodyErr
	}
	m.insts = out
	return nil
}

// sorted lists the keys of a set in order, so that new ids are allocated
// the same way on every run.
func sorted(set map[uint32]bool) []uint32 {
	ks := make([]uint32, 0, len(set))
	for k := range set {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return ks[i] < ks[j] })
	return ks
}

func resultOf(in inst) uint32 {
	if len(in.words) > 2 {
		return in.words[2]
	}
	return 0
}

// anyUse reports whether some use of type id has been assigned.
func (t *translator) anyUse(id uint32) (use, bool) {
	for u := use(0); u < nUses; u++ {
		if _, ok := t.typeFor[[2]uint32{id, uint32(u)}]; ok {
			return u, true
		}
	}
	return 0, false
}

// leaf is the NV matrix type inside type id (through arrays and
// pointers), or id itself.
func (t *translator) leaf(id uint32) uint32 {
	for {
		d := t.defs[id]
		switch d.op {
		case opTypeArray, opTypeRuntimeArray:
			id = d.words[2]
		case opTypePointer:
			id = d.words[3]
		default:
			return id
		}
	}
}

func (t *translator) boolConst(id uint32) (bool, error) {
	switch t.defs[id].op {
	case opConstantTrue:
		return true, nil
	case opConstantFalse:
		return false, nil
	}
	return false, fmt.Errorf("the column-major operand %%%d is not a boolean constant (the KHR layout must be one)", id)
}

// body visits the matrix operands of every instruction outside the types
// section: operand(i, in, id, use) is called for each matrix-valued
// operand id with the use it has at that instruction and returns the id
// to write there. Result types of matrix values are rewritten to their
// KHR types. done, if given, receives each changed instruction.
func (t *translator) body(operand func(int, inst, uint32, use) uint32, done ...func(int, inst)) {
	for i, in := range t.m.insts {
		if isType(in.op) || t.consts[resultOf(in)] && resultTyped[in.op] {
			continue
		}
		w := append([]uint32(nil), in.words...)
		changed := false
		set := func(k int, u use) {
			if k < len(w) && (t.consts[w[k]]) {
				x := operand(i, in, w[k], u)
				if x != w[k] {
					w[k], changed = x, true
				}
			}
		}
		var classUse use
		hasClass := false
		if resultTyped[in.op] && len(w) > 2 {
			if _, ok := t.parent[w[2]]; ok {
				classUse, hasClass = t.useOf(w[2]), true
				if x := t.ktype(w[1], classUse); x != w[1] {
					w[1], changed = x, true
				}
			}
		}
		switch {
		case in.op == opCoopMulAddNV:
			set(3, useA)
			set(4, useB)
			set(5, useAcc)
		case in.op == opCoopStoreNV:
			u := useAcc
			if _, ok := t.parent[w[2]]; ok {
				u = t.useOf(w[2])
			}
			set(2, u)
		case in.op == opStore:
			if _, ok := t.parent[w[1]]; ok {
				set(2, t.useOf(w[1]))
			}
		case !hasClass:
		case in.op == opVariable:
			set(4, classUse)
		case in.op == opPhi:
			for k := 3; k < len(w); k += 2 {
				set(k, classUse)
			}
		case in.op == opSelect:
			set(4, classUse)
			set(5, classUse)
		case in.op == opCompositeExtract, in.op == opCopyObject:
			set(3, classUse)
		case in.op == opCompositeInsert:
			set(3, classUse)
			set(4, classUse)
		case in.op == opCompositeConstruct || elementwise[in.op]:
			for k := 3; k < len(w); k++ {
				set(k, classUse)
			}
		}
		if changed && len(done) > 0 {
			done[0](i, inst{op: in.op, words: w})
		}
	}
}
