package main

import (
	"encoding/binary"
	"fmt"
)

// SPIR-V module words, split into instructions. Only what the translation
// needs of the format: the five-word header and (word count << 16 | opcode)
// instruction heads.

const spirvMagic = 0x07230203

type inst struct {
	op    uint32
	words []uint32 // the whole instruction, head included
}

type module struct {
	header [5]uint32 // magic, version, generator, id bound, schema
	insts  []inst
}

func parse(b []byte) (*module, error) {
	if len(b) < 20 || len(b)%4 != 0 {
		return nil, fmt.Errorf("%d bytes is not a SPIR-V module", len(b))
	}
	w := make([]uint32, len(b)/4)
	for i := range w {
		w[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	if w[0] != spirvMagic {
		return nil, fmt.Errorf("bad SPIR-V magic %#x (big-endian modules are not supported)", w[0])
	}
	m := &module{}
	copy(m.header[:], w[:5])
	for i := 5; i < len(w); {
		n := int(w[i] >> 16)
		if n == 0 || i+n > len(w) {
			return nil, fmt.Errorf("word %d: instruction of %d words overruns the module", i, n)
		}
		m.insts = append(m.insts, inst{op: w[i] & 0xffff, words: append([]uint32(nil), w[i:i+n]...)})
		i += n
	}
	return m, nil
}

func (m *module) bytes() []byte {
	n := 5
	for _, in := range m.insts {
		n += len(in.words)
	}
	b := make([]byte, 0, 4*n)
	for _, x := range m.header {
		b = binary.LittleEndian.AppendUint32(b, x)
	}
	for _, in := range m.insts {
		for _, x := range in.words {
			b = binary.LittleEndian.AppendUint32(b, x)
		}
	}
	return b
}

// newID allocates a fresh result id.
func (m *module) newID() uint32 {
	id := m.header[3]
	m.header[3]++
	return id
}

func mk(op uint32, operands ...uint32) inst {
	w := append([]uint32{uint32(len(operands)+1)<<16 | op}, operands...)
	return inst{op: op, words: w}
}

// stringWords encodes a SPIR-V literal string (NUL-terminated, padded to
// whole words, little-endian).
func stringWords(s string) []uint32 {
	b := append([]byte(s), 0)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	w := make([]uint32, len(b)/4)
	for i := range w {
		w[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return w
}

// decodeString reads a literal string from words.
func decodeString(w []uint32) string {
	var b []byte
	for _, x := range w {
		for k := 0; k < 4; k++ {
			c := byte(x >> (8 * k))
			if c == 0 {
				return string(b)
			}
			b = append(b, c)
		}
	}
	return string(b)
}
