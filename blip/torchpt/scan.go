package torchpt

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// argKind says how a pickle opcode's inline argument is laid out.
type argKind uint8

const (
	argNone  argKind = iota // no inline argument
	argFixed                // n bytes
	argLine                 // one newline-terminated line
	argLines                // two newline-terminated lines (GLOBAL, INST)
	argLen1                 // 1-byte length, then that many bytes
	argLen4                 // 4-byte little-endian length, then that many bytes
	argLen8                 // 8-byte little-endian length, then that many bytes
)

// opArg describes the inline argument of one opcode.
type opArg struct {
	kind argKind
	n    int // byte count for argFixed
}

// opcodes lists every opcode of pickle protocols 0 to 5 with its argument
// layout (as documented in CPython's pickletools). An opcode missing here is
// rejected by scanPickle.
var opcodes = map[byte]opArg{
	'(': {}, '.': {}, '0': {}, '1': {}, '2': {}, 'N': {}, 'Q': {}, 'R': {},
	'a': {}, 'b': {}, 'd': {}, '}': {}, 'e': {}, 'l': {}, ']': {}, 'o': {},
	's': {}, 't': {}, ')': {}, 'u': {},
	'F': {kind: argLine}, 'I': {kind: argLine}, 'L': {kind: argLine},
	'P': {kind: argLine}, 'S': {kind: argLine}, 'V': {kind: argLine},
	'g': {kind: argLine}, 'p': {kind: argLine},
	'c': {kind: argLines}, 'i': {kind: argLines},
	'J': {kind: argFixed, n: 4}, 'K': {kind: argFixed, n: 1}, 'M': {kind: argFixed, n: 2},
	'h': {kind: argFixed, n: 1}, 'j': {kind: argFixed, n: 4},
	'q': {kind: argFixed, n: 1}, 'r': {kind: argFixed, n: 4},
	'G': {kind: argFixed, n: 8},
	'T': {kind: argLen4}, 'U': {kind: argLen1}, 'X': {kind: argLen4},
	// Protocol 2.
	0x80: {kind: argFixed, n: 1}, 0x81: {},
	0x82: {kind: argFixed, n: 1}, 0x83: {kind: argFixed, n: 2}, 0x84: {kind: argFixed, n: 4},
	0x85: {}, 0x86: {}, 0x87: {}, 0x88: {}, 0x89: {},
	0x8a: {kind: argLen1}, 0x8b: {kind: argLen4},
	// Protocol 3.
	'B': {kind: argLen4}, 'C': {kind: argLen1},
	// Protocol 4. FRAME's argument is the frame length; the frame's content
	// is ordinary opcodes, scanned like the rest.
	0x8c: {kind: argLen1}, 0x8d: {kind: argLen8}, 0x8e: {kind: argLen8},
	0x8f: {}, 0x90: {}, 0x91: {}, 0x92: {}, 0x93: {}, 0x94: {},
	0x95: {kind: argFixed, n: 8},
	// Protocol 5.
	0x96: {kind: argLen8}, 0x97: {}, 0x98: {},
}

const (
	opStop  = '.'
	opFrame = 0x95
	// maxLine bounds a newline-terminated argument (a module or class name,
	// a decimal number): real pickles never come close.
	maxLine = 1 << 16
)

// errNoStop is returned when the data ends before the STOP opcode.
var errNoStop = errors.New("pickle ends before its STOP opcode (truncated?)")

// scanPickle walks the opcodes of one pickle read from r, which holds at most
// limit bytes, and returns the number of bytes up to and including STOP. It
// checks that every opcode is known and that every length-prefixed argument
// fits in what is left, so that the unpickler, which allocates each argument
// before reading it, is never asked for more memory than the file holds.
func scanPickle(r *bufio.Reader, limit int64) (int64, error) {
	var pos int64
	var buf [8]byte
	readN := func(n int) ([]byte, error) {
		if int64(n) > limit-pos {
			return nil, errNoStop
		}
		if _, err := io.ReadFull(r, buf[:n]); err != nil {
			return nil, errNoStop
		}
		pos += int64(n)
		return buf[:n], nil
	}
	skip := func(n uint64, at int64, op byte) error {
		if n > uint64(limit-pos) {
			return fmt.Errorf("pickle opcode 0x%02x at byte %d declares %d bytes but only %d remain", op, at, n, limit-pos)
		}
		if _, err := r.Discard(int(n)); err != nil {
			return errNoStop
		}
		pos += int64(n)
		return nil
	}
	line := func(at int64, op byte) error {
		for n := 0; ; n++ {
			if pos >= limit || n > maxLine {
				return fmt.Errorf("pickle opcode 0x%02x at byte %d: unterminated line argument", op, at)
			}
			c, err := r.ReadByte()
			if err != nil {
				return errNoStop
			}
			pos++
			if c == '\n' {
				return nil
			}
		}
	}
	for {
		at := pos
		b, err := readN(1)
		if err != nil {
			return pos, err
		}
		op := b[0]
		arg, ok := opcodes[op]
		if !ok {
			return pos, fmt.Errorf("unknown pickle opcode 0x%02x at byte %d: corrupt file?", op, at)
		}
		switch arg.kind {
		case argFixed:
			v, err := readN(arg.n)
			if err != nil {
				return pos, err
			}
			if op == opFrame && binary.LittleEndian.Uint64(v) > uint64(limit-pos) {
				return pos, fmt.Errorf("pickle frame at byte %d is longer than the data left", at)
			}
		case argLine:
			err = line(at, op)
		case argLines:
			if err = line(at, op); err == nil {
				err = line(at, op)
			}
		case argLen1:
			var v []byte
			if v, err = readN(1); err == nil {
				err = skip(uint64(v[0]), at, op)
			}
		case argLen4:
			var v []byte
			if v, err = readN(4); err == nil {
				n := binary.LittleEndian.Uint32(v)
				if (op == 'T' || op == 0x8b) && int32(n) < 0 {
					return pos, fmt.Errorf("pickle opcode 0x%02x at byte %d has a negative length", op, at)
				}
				err = skip(uint64(n), at, op)
			}
		case argLen8:
			var v []byte
			if v, err = readN(8); err == nil {
				err = skip(binary.LittleEndian.Uint64(v), at, op)
			}
		}
		if err != nil {
			return pos, err
		}
		if op == opStop {
			return pos, nil
		}
	}
}
