package torchpt

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"

	"github.com/nlpodyssey/gopickle/types"
)

// legacyMagic and legacyProtocol open every legacy (pre-zip) torch.save file.
var legacyMagic, _ = new(big.Int).SetString("1950a86a20f9469cfc6c", 16)

const legacyProtocol = 1001

// openLegacy reads the legacy format: pickles of the magic number, the
// protocol version and a sys_info dict; the pickle of the object, whose
// persistent ids name storages; a pickle of the sorted storage keys; then for
// each key an int64 element count and the raw elements.
func (a *Archive) openLegacy(size int64) error {
	var pos int64
	next := func(what string, persistentLoad func(any) (any, error)) (any, error) {
		br := bufio.NewReader(io.NewSectionReader(a.f, pos, size-pos))
		n, err := scanPickle(br, size-pos)
		if err != nil {
			return nil, fmt.Errorf("%s pickle at byte %d: %v", what, pos, err)
		}
		if n > maxPickle {
			return nil, fmt.Errorf("%s pickle at byte %d: %d bytes is too large", what, pos, n)
		}
		buf := make([]byte, n)
		if _, err := a.f.ReadAt(buf, pos); err != nil {
			return nil, fmt.Errorf("%s pickle at byte %d: %v", what, pos, err)
		}
		v, _, err := unpickle(buf, persistentLoad)
		if err != nil {
			return nil, fmt.Errorf("%s pickle at byte %d: %v", what, pos, err)
		}
		pos += n
		return v, nil
	}
	magic, err := next("magic number", nil)
	if err != nil {
		return err
	}
	if m, ok := magic.(*big.Int); !ok || m.Cmp(legacyMagic) != 0 {
		return errors.New("not a PyTorch checkpoint (a pickle without torch's magic number)")
	}
	ver, err := next("protocol version", nil)
	if err != nil {
		return err
	}
	if v, _ := toInt64(ver); v != legacyProtocol {
		return fmt.Errorf("legacy protocol version %v, want %d", ver, legacyProtocol)
	}
	info, err := next("sys_info", nil)
	if err != nil {
		return err
	}
	if d, ok := info.(*types.Dict); ok {
		if le, ok := d.Get("little_endian"); ok && le == false {
			a.bigEndian = true
		}
	}
	pending := map[string]*Storage{}
	persistentLoad := func(pid any) (any, error) {
		if t, ok := pid.(*types.Tuple); ok && t.Len() > 0 && t.Get(0) == "module" {
			return &pyObject{Class: &pyClass{Name: "module"}}, nil
		}
		p, err := parseStoragePID(pid, 6)
		if err != nil {
			return nil, err
		}
		if p.view != nil {
			return nil, fmt.Errorf("storage %q: storage views (torch < 0.4) are not supported", p.key)
		}
		if st, ok := pending[p.key]; ok {
			return st, nil
		}
		st := &Storage{Key: p.key, DType: p.class.dtype, Numel: p.numel}
		pending[p.key] = st
		return st, nil
	}
	root, err := next("object", persistentLoad)
	if err != nil {
		return err
	}
	keysV, err := next("storage keys", nil)
	if err != nil {
		return err
	}
	keys, ok := keysV.(*types.List)
	if !ok {
		return fmt.Errorf("storage key list is a %T, not a list", keysV)
	}
	order := binary.ByteOrder(binary.LittleEndian)
	if a.bigEndian {
		order = binary.BigEndian
	}
	for _, kv := range *keys {
		key, ok := kv.(string)
		if !ok {
			return fmt.Errorf("storage key %v is not a string", kv)
		}
		st := pending[key]
		if st == nil {
			return fmt.Errorf("storage %q is listed but no tensor uses it", key)
		}
		var hdr [8]byte
		if _, err := a.f.ReadAt(hdr[:], pos); err != nil {
			return fmt.Errorf("storage %q at byte %d: file ends early (truncated?)", key, pos)
		}
		numel := int64(order.Uint64(hdr[:]))
		if numel != st.Numel {
			return fmt.Errorf("storage %q at byte %d: %d elements stored, %d expected", key, pos, numel, st.Numel)
		}
		pos += 8
		nbytes := numel * int64(st.DType.Size())
		if numel < 0 || numel > (size-pos)/int64(st.DType.Size()) {
			return fmt.Errorf("storage %q at byte %d: %d bytes run past the end of the file (truncated?)", key, pos, nbytes)
		}
		st.src = &fileSection{a: a, base: pos, size: nbytes, label: fmt.Sprintf("storage %q", key)}
		pos += nbytes
		a.storages[key] = st
		delete(pending, key)
	}
	for key := range pending {
		return fmt.Errorf("storage %q is used by a tensor but absent from the file", key)
	}
	a.root = root
	return nil
}
