package torchpt

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// Archive is an opened torch.save file. Its pickle has been run; storages
// are read lazily, so an Archive keeps its file open until Close.
type Archive struct {
	path      string
	format    string // "zip" or "legacy"
	f         *os.File
	root      any
	storages  map[string]*Storage
	bigEndian bool
}

// Open reads the pickle of a torch.save file (zip or legacy format) and
// returns the archive. Tensor data is read only when asked for.
func Open(path string) (*Archive, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("torchpt: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("torchpt: %s: %w", path, err)
	}
	a := &Archive{path: path, f: f, storages: map[string]*Storage{}}
	var head [4]byte
	n, _ := f.ReadAt(head[:], 0)
	switch {
	case n >= 4 && bytes.Equal(head[:4], []byte("PK\x03\x04")):
		a.format = "zip"
		err = a.openZip(st.Size())
	case n >= 2 && head[0] == 0x80 && head[1] <= 5:
		a.format = "legacy"
		err = a.openLegacy(st.Size())
	case n == 0:
		err = errors.New("file is empty")
	default:
		err = errors.New("not a PyTorch checkpoint (neither a torch.save zip archive nor a legacy pickle)")
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("torchpt: %s: %w", path, err)
	}
	return a, nil
}

// Path returns the path the archive was opened with.
func (a *Archive) Path() string { return a.path }

// Format returns "zip" or "legacy".
func (a *Archive) Format() string { return a.format }

// Close closes the file; tensors can no longer be read.
func (a *Archive) Close() error {
	if a.f == nil {
		return nil
	}
	err := a.f.Close()
	a.f = nil
	return err
}

// errf prefixes an error with the archive's path.
func (a *Archive) errf(format string, args ...any) error {
	return fmt.Errorf("torchpt: %s: %s", a.path, fmt.Sprintf(format, args...))
}

// fileSection reads a byte range of the archive's file (legacy storages,
// uncompressed zip entries).
type fileSection struct {
	a     *Archive
	base  int64
	size  int64
	label string
}

func (s *fileSection) readAt(p []byte, off int64) error {
	if s.a.f == nil {
		return errors.New("archive is closed")
	}
	if off < 0 || off+int64(len(p)) > s.size {
		return fmt.Errorf("%s: read [%d, %d) past its %d bytes", s.label, off, off+int64(len(p)), s.size)
	}
	if _, err := s.a.f.ReadAt(p, s.base+off); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%s: file ends inside the data (truncated?)", s.label)
		}
		return fmt.Errorf("%s: %v", s.label, err)
	}
	return nil
}
