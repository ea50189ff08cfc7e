package torchpt

import (
	"archive/zip"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"path"
	"strings"
)

// openZip reads a torch.save zip archive: <dir>/data.pkl is the pickle,
// <dir>/data/<key> the storages, <dir>/byteorder ("little" or "big", absent
// before torch 2.1) their byte order. <dir> is whatever name the archive was
// saved under, so it is found rather than assumed.
func (a *Archive) openZip(size int64) error {
	zr, err := zip.NewReader(a.f, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return fmt.Errorf("reading zip directory: %v (truncated or corrupt file?)", err)
	}
	var pkl *zip.File
	for _, e := range zr.File {
		dir, base := path.Split(e.Name)
		if base != "data.pkl" || strings.Count(dir, "/") > 1 {
			continue
		}
		if pkl != nil {
			return fmt.Errorf("archive holds two pickles, %s and %s", pkl.Name, e.Name)
		}
		pkl = e
	}
	if pkl == nil {
		return errors.New("zip archive has no data.pkl: not a torch.save checkpoint")
	}
	prefix := strings.TrimSuffix(pkl.Name, "data.pkl")
	entries := map[string]*zip.File{}
	for _, e := range zr.File {
		if strings.HasPrefix(e.Name, prefix) {
			entries[strings.TrimPrefix(e.Name, prefix)] = e
		}
	}
	if entries["constants.pkl"] != nil || entries["code/"] != nil {
		return errors.New("archive is a TorchScript module, not a state dict saved with torch.save")
	}
	if bo := entries["byteorder"]; bo != nil {
		b, err := readEntry(bo, 16)
		if err != nil {
			return err
		}
		switch strings.TrimSpace(string(b)) {
		case "little":
		case "big":
			a.bigEndian = true
		default:
			return fmt.Errorf("%s: unknown byte order %q", bo.Name, b)
		}
	}
	data, err := readEntry(pkl, maxPickle)
	if err != nil {
		return err
	}
	persistentLoad := func(pid any) (any, error) {
		p, err := parseStoragePID(pid, 5)
		if err != nil {
			return nil, err
		}
		if st, ok := a.storages[p.key]; ok {
			if st.DType != p.class.dtype {
				return nil, fmt.Errorf("storage %q is used as both %s and %s", p.key, st.DType, p.class.dtype)
			}
			return st, nil
		}
		e := entries["data/"+p.key]
		if e == nil {
			return nil, fmt.Errorf("storage %q: entry %sdata/%s is missing", p.key, prefix, p.key)
		}
		es := int64(p.class.dtype.Size())
		if p.numel > int64(e.UncompressedSize64)/es {
			return nil, fmt.Errorf("storage %q: %d elements of %s need %d bytes but %s holds %d",
				p.key, p.numel, p.class.dtype, p.numel*es, e.Name, e.UncompressedSize64)
		}
		st := &Storage{Key: p.key, DType: p.class.dtype, Numel: p.numel, src: &zipEntry{a: a, e: e}}
		a.storages[p.key] = st
		return st, nil
	}
	root, _, err := unpickle(data, persistentLoad)
	if err != nil {
		return fmt.Errorf("%s: %v", pkl.Name, err)
	}
	a.root = root
	return nil
}

// readEntry reads a whole zip entry of at most limit bytes; the zip reader
// checks its CRC-32 at the end, so corruption is reported.
func readEntry(e *zip.File, limit int64) ([]byte, error) {
	if e.UncompressedSize64 > uint64(limit) {
		return nil, fmt.Errorf("%s: %d bytes is more than the %d allowed", e.Name, e.UncompressedSize64, limit)
	}
	r, err := e.Open()
	if err != nil {
		return nil, fmt.Errorf("%s: %v", e.Name, err)
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %v (corrupt or truncated file?)", e.Name, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: more than the %d bytes allowed", e.Name, limit)
	}
	return b, nil
}

// zipEntry is a storage held in one zip entry.
type zipEntry struct {
	a *Archive
	e *zip.File
}

// readAt reads bytes [off, off+len(p)) of the entry. Uncompressed entries
// (what torch writes) are read in place; the CRC-32 is checked whenever the
// whole entry is read, which is the common case of one tensor per storage.
func (z *zipEntry) readAt(p []byte, off int64) error {
	size := int64(z.e.UncompressedSize64)
	if off < 0 || off+int64(len(p)) > size {
		return fmt.Errorf("%s: read [%d, %d) past its %d bytes", z.e.Name, off, off+int64(len(p)), size)
	}
	if z.a.f == nil {
		return errors.New("archive is closed")
	}
	if z.e.Method == zip.Store {
		start, err := z.e.DataOffset()
		if err != nil {
			return fmt.Errorf("%s: %v", z.e.Name, err)
		}
		sec := fileSection{a: z.a, base: start, size: size, label: z.e.Name}
		if err := sec.readAt(p, off); err != nil {
			return err
		}
		if off == 0 && int64(len(p)) == size && crc32.ChecksumIEEE(p) != z.e.CRC32 {
			return fmt.Errorf("%s: checksum mismatch (corrupt file)", z.e.Name)
		}
		return nil
	}
	// Compressed entry: stream up to the range.
	r, err := z.e.Open()
	if err != nil {
		return fmt.Errorf("%s: %v", z.e.Name, err)
	}
	defer r.Close()
	if _, err := io.CopyN(io.Discard, r, off); err != nil {
		return fmt.Errorf("%s: %v", z.e.Name, err)
	}
	if _, err := io.ReadFull(r, p); err != nil {
		return fmt.Errorf("%s: %v (corrupt or truncated file?)", z.e.Name, err)
	}
	return nil
}
