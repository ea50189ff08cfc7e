package main

import (
	"bytes"
	"encoding/binary"
	"os"
	"strings"
	"testing"
)

// The translation is checked three ways: here, structurally, on the
// project's cooperative-matrix shaders and on broken variants of them;
// `make shaders-check` runs Debian 13's spirv-val on the committed output;
// `make test-coopmat` runs that output on Mesa 26 lavapipe against the CPU.

var coopShaders = []string{"gemm_coop", "gemm_coop8"}

func readSPV(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../spv/" + name + ".spv")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// cutInside returns b up to the middle of its first instruction of three
// or more words past the first 1000 bytes: a module that ends inside an
// instruction, wherever the build put the instruction boundaries.
func cutInside(t *testing.T, b []byte) []byte {
	t.Helper()
	for off := 20; off+4 <= len(b); {
		n := int(binary.LittleEndian.Uint32(b[off:]) >> 16)
		if n == 0 {
			break
		}
		if off >= 1000 && n >= 3 {
			return b[:off+8]
		}
		off += 4 * n
	}
	t.Fatal("no instruction of three words or more past byte 1000")
	return nil
}

func mustParse(t *testing.T, b []byte) *module {
	t.Helper()
	m, err := parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// defsOf maps result ids to the instructions of the types and scalar
// constants section.
func defsOf(m *module) map[uint32]inst {
	d := map[uint32]inst{}
	for _, in := range m.insts {
		switch {
		case isType(in.op) || in.op == opTypeCoopKHR:
			d[in.words[1]] = in
		case in.op == opConstant || in.op == opConstantTrue || in.op == opConstantFalse:
			d[in.words[2]] = in
		}
	}
	return d
}

func TestTranslateCoopShaders(t *testing.T) {
	for _, name := range coopShaders {
		t.Run(name, func(t *testing.T) {
			src := readSPV(t, name)
			out, err := Translate(src)
			if err != nil {
				t.Fatal(err)
			}
			again, _ := Translate(src)
			if !bytes.Equal(out, again) {
				t.Error("two translations of the same module differ")
			}
			if committed := readSPV(t, name+"_khr"); !bytes.Equal(out, committed) {
				t.Errorf("shaders/spv/%s_khr.spv is not the translation of %s.spv (run make shaders)", name, name)
			}
			nv, k := mustParse(t, src), mustParse(t, out)
			nvDefs, kDefs := defsOf(nv), defsOf(k)
			ids := map[uint32]bool{}
			count := map[uint32]int{}
			var caps, exts []string
			for _, in := range k.insts {
				count[in.op]++
				if in.op >= opTypeCoopNV && in.op <= opCoopLengthNV {
					t.Errorf("NV opcode %d left in the output", in.op)
				}
				if in.op == opCapability && in.words[1] == capCoopNV {
					t.Error("capability CooperativeMatrixNV left in the output")
				}
				if in.op == opCapability && in.words[1] == capCoopKHR {
					caps = append(caps, "KHR")
				}
				if in.op == opExtension {
					exts = append(exts, decodeString(in.words[1:]))
				}
				if (isType(in.op) || in.op == opTypeCoopKHR || in.op == opConstant) && len(in.words) > 2 {
					id := in.words[1]
					if in.op == opConstant {
						id = in.words[2]
					}
					if ids[id] {
						t.Errorf("id %%%d defined twice", id)
					}
					ids[id] = true
				}
			}
			if len(caps) != 1 || !strings.Contains(strings.Join(exts, " "), extKHR) || strings.Contains(strings.Join(exts, " "), extNV) {
				t.Errorf("capabilities %v, extensions %v", caps, exts)
			}
			nvCount := map[uint32]int{}
			for _, in := range nv.insts {
				nvCount[in.op]++
			}
			for nvOp, kOp := range map[uint32]uint32{opCoopLoadNV: opCoopLoadKHR, opCoopStoreNV: opCoopStoreKHR, opCoopMulAddNV: opCoopMulAddKHR} {
				if nvCount[nvOp] == 0 || count[kOp] != nvCount[nvOp] {
					t.Errorf("opcode %d: %d NV instructions became %d KHR ones", nvOp, nvCount[nvOp], count[kOp])
				}
			}
			if k.header[3] <= nv.header[3] || k.header[1] != nv.header[1] {
				t.Errorf("header %v from %v: the id bound must grow (new types), the version stay", k.header, nv.header)
			}

			// Every KHR value has the use of the MulAdd operand it is.
			typeOf := map[uint32]uint32{}
			for _, in := range k.insts {
				if resultTyped[in.op] || in.op == opCoopLoadKHR || in.op == opCoopMulAddKHR {
					typeOf[in.words[2]] = in.words[1]
				}
			}
			useOfType := func(ty uint32) int {
				d, ok := kDefs[ty]
				if !ok || d.op != opTypeCoopKHR {
					t.Fatalf("%%%d is not a KHR matrix type", ty)
				}
				c := kDefs[d.words[6]]
				if c.op != opConstant {
					t.Fatalf("use operand %%%d of %%%d is not a constant", d.words[6], ty)
				}
				return int(c.words[3])
			}
			for _, in := range k.insts {
				if in.op != opCoopMulAddKHR {
					continue
				}
				for k, want := range []int{2, 0, 1, 2} {
					id := in.words[2+k]
					if got := useOfType(typeOf[id]); got != want {
						t.Errorf("MulAdd %%%d operand %d: %%%d has use %d, want %d", in.words[2], k, id, got, want)
					}
				}
			}
			// Each load reads with the layout of its NV original, and
			// produces the use its value has where it is multiplied.
			nvLayout := map[uint32]bool{}
			for _, in := range nv.insts {
				if in.op == opCoopLoadNV {
					nvLayout[in.words[2]] = nvDefs[in.words[5]].op == opConstantTrue
				}
			}
			uses := map[int]int{}
			for _, in := range k.insts {
				if in.op != opCoopLoadKHR {
					continue
				}
				col := kDefs[in.words[4]].words[3] == 1
				if col != nvLayout[in.words[2]] {
					t.Errorf("load %%%d: column-major %v, NV had %v", in.words[2], col, nvLayout[in.words[2]])
				}
				// In gemm_coop, A is row-major and B column-major.
				u := useOfType(in.words[1])
				uses[u]++
				if (u == 1) != col {
					t.Errorf("load %%%d: use %d with column-major %v", in.words[2], u, col)
				}
			}
			if uses[0] == 0 || uses[0] != uses[1] {
				t.Errorf("loads by use: %v, want as many A as B", uses)
			}
		})
	}
}

// mutate returns gemm_coop's words with f applied to its instructions.
func mutate(t *testing.T, f func(m *module)) []byte {
	t.Helper()
	m := mustParse(t, readSPV(t, "gemm_coop"))
	f(m)
	return m.bytes()
}

func TestTranslateErrors(t *testing.T) {
	firstOf := func(m *module, op uint32) int {
		for i, in := range m.insts {
			if in.op == op {
				return i
			}
		}
		t.Fatalf("no opcode %d", op)
		return -1
	}
	cases := []struct {
		name string
		in   []byte
		want string
	}{
		{"not SPIR-V", []byte("hello, world, not SPIR-V"), "magic"},
		{"truncated", readSPV(t, "gemm_coop")[:1002], "not a SPIR-V module"},
		{"cut inside an instruction", cutInside(t, readSPV(t, "gemm_coop")), "overruns"},
		{"no NV matrices", readSPV(t, "gemm"), "nothing to translate"},
		{"A also used as B", mutate(t, func(m *module) {
			i := firstOf(m, opCoopMulAddNV)
			m.insts[i].words[4] = m.insts[i].words[3]
		}), "used as"},
		{"length", mutate(t, func(m *module) {
			i := firstOf(m, opCoopMulAddNV)
			w := m.insts[i].words
			uintT := mustUint(t, m)
			m.insts = append(m.insts[:i], append([]inst{mk(opCoopLengthNV, uintT, m.newID(), w[1])}, m.insts[i:]...)...)
		}), "OpCooperativeMatrixLengthNV"},
		{"unknown opcode on a matrix", mutate(t, func(m *module) {
			i := firstOf(m, opCoopMulAddNV)
			w := m.insts[i].words
			// OpFunctionCall (57) passing a matrix: not something the
			// translation can follow.
			m.insts = append(m.insts[:i], append([]inst{mk(57, w[1], m.newID(), w[1], w[3])}, m.insts[i:]...)...)
		}), "does not know this opcode"},
		{"layout not constant", mutate(t, func(m *module) {
			i := firstOf(m, opCoopLoadNV)
			var boolVal uint32
			for _, in := range m.insts {
				if in.op == opPhi && len(in.words) > 2 {
					if d := defsOf(m)[in.words[1]]; d.op == 20 { // OpTypeBool
						boolVal = in.words[2]
						break
					}
				}
			}
			if boolVal == 0 {
				t.Fatal("no boolean phi in gemm_coop")
			}
			m.insts[i].words[5] = boolVal
		}), "not a boolean constant"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Translate(c.in)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}

func mustUint(t *testing.T, m *module) uint32 {
	for _, in := range m.insts {
		if in.op == opTypeInt && in.words[2] == 32 {
			return in.words[1]
		}
	}
	t.Fatal("no 32-bit integer type")
	return 0
}

func TestRunWritesAtomically(t *testing.T) {
	dir := t.TempDir()
	in, out := dir+"/in.spv", dir+"/out.spv"
	if err := os.WriteFile(in, readSPV(t, "gemm"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := run(in, out)
	if err == nil || !strings.Contains(err.Error(), in) {
		t.Fatalf("error %v, want one naming %s", err, in)
	}
	if b, _ := os.ReadFile(out); string(b) != "old" {
		t.Errorf("a failed translation changed the output file to %q", b)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Errorf("temporary files left: %v", ents)
	}
	if err := os.WriteFile(in, readSPV(t, "gemm_coop"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run(in, out); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(out); !bytes.Equal(b, readSPV(t, "gemm_coop_khr")) {
		t.Error("run's output is not the committed translation")
	}
}
