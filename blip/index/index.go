// Package index stores normalised ITC image embeddings of a photo folder in
// one file, builds it incrementally and searches it.
//
// # File format
//
// An index file is
//
//	"BLIPIDX1"                      8 bytes of magic
//	header length                   uint64, little endian
//	header                          JSON (Header), that many bytes
//	vectors                         len(entries) * dim float32, little endian,
//	                                row i belonging to entries[i]
//
// The header names the indexed folder (root, absolute), the model folder
// and a fingerprint of its weights (Fingerprint), the embedding width and,
// per image, its path relative to root (slash-separated) with the size and
// modification time it had when embedded. Files that could not be decoded
// are listed under "failed" with the same size and time, so a re-run does
// not retry them until they change. Files are always written to a
// temporary file in the same folder and renamed over the old one, so a
// reader sees either the old or the new index, never a partial one.
package index

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"
)

// Magic opens every index file.
const Magic = "BLIPIDX1"

// Format and Version are the header's format name and version.
const (
	Format  = "blip-index"
	Version = 1
)

// maxHeader bounds the JSON header a reader accepts (about 2 million
// entries of typical paths).
const maxHeader = 512 << 20

// Entry is one embedded image.
type Entry struct {
	// Path is relative to the index root, with forward slashes.
	Path string `json:"path"`
	Size int64  `json:"size"`
	// ModTimeNS is the modification time in Unix nanoseconds.
	ModTimeNS int64 `json:"mtime_ns"`
}

// Failed is a file that could not be decoded, with the reason.
type Failed struct {
	Entry
	Error string `json:"error"`
}

// Header is the JSON header of an index file.
type Header struct {
	Format      string   `json:"format"`
	Version     int      `json:"version"`
	Root        string   `json:"root"`
	Model       string   `json:"model"`
	Fingerprint string   `json:"model_fingerprint"`
	Dim         int      `json:"dim"`
	Updated     string   `json:"updated"`
	Entries     []Entry  `json:"entries"`
	Failed      []Failed `json:"failed,omitempty"`
}

// Index is a loaded index: the header and the vectors, row-major
// (len(Entries), Dim).
type Index struct {
	Header
	Vectors []float32
}

// Len is the number of embedded images.
func (ix *Index) Len() int { return len(ix.Entries) }

// Vector returns row i.
func (ix *Index) Vector(i int) []float32 { return ix.Vectors[i*ix.Dim : (i+1)*ix.Dim] }

// AbsPath is entry i's file on disk.
func (ix *Index) AbsPath(i int) string {
	return filepath.Join(ix.Root, filepath.FromSlash(ix.Entries[i].Path))
}

// check verifies the header against the vectors.
func (ix *Index) check() error {
	if ix.Format != Format {
		return fmt.Errorf("format %q, want %q", ix.Format, Format)
	}
	if ix.Version != Version {
		return fmt.Errorf("version %d, this blip reads version %d", ix.Version, Version)
	}
	if ix.Dim < 1 {
		return fmt.Errorf("embedding width %d", ix.Dim)
	}
	if len(ix.Vectors) != len(ix.Entries)*ix.Dim {
		return fmt.Errorf("%d floats for %d entries of width %d", len(ix.Vectors), len(ix.Entries), ix.Dim)
	}
	seen := make(map[string]bool, len(ix.Entries))
	for _, e := range ix.Entries {
		if !filepath.IsLocal(filepath.FromSlash(e.Path)) {
			return fmt.Errorf("entry path %q is not inside the root", e.Path)
		}
		if seen[e.Path] {
			return fmt.Errorf("entry %q is listed twice", e.Path)
		}
		seen[e.Path] = true
	}
	return nil
}

// Load reads an index file.
func Load(path string) (*Index, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	ix, err := read(bufio.NewReaderSize(f, 1<<20), st.Size())
	if err != nil {
		return nil, fmt.Errorf("index: %s: %w", path, err)
	}
	return ix, nil
}

func read(r io.Reader, size int64) (*Index, error) {
	var pre [16]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return nil, errors.New("not a blip index (too short)")
	}
	if string(pre[:8]) != Magic {
		return nil, errors.New("not a blip index (bad magic)")
	}
	n := binary.LittleEndian.Uint64(pre[8:])
	if n > maxHeader || int64(n) > size-16 {
		return nil, fmt.Errorf("header length %d does not fit the file", n)
	}
	raw := make([]byte, n)
	if _, err := io.ReadFull(r, raw); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	ix := &Index{}
	if err := json.Unmarshal(raw, &ix.Header); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	if ix.Dim < 1 {
		return nil, fmt.Errorf("embedding width %d", ix.Dim)
	}
	want := int64(len(ix.Entries)) * int64(ix.Dim) * 4
	if got := size - 16 - int64(n); got != want {
		return nil, fmt.Errorf("%d bytes of vectors, %d entries of width %d need %d (truncated?)", got, len(ix.Entries), ix.Dim, want)
	}
	ix.Vectors = make([]float32, len(ix.Entries)*ix.Dim)
	buf := make([]byte, 4*ix.Dim)
	for i := range ix.Entries {
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, fmt.Errorf("vectors: %w", err)
		}
		row := ix.Vectors[i*ix.Dim : (i+1)*ix.Dim]
		for j := range row {
			row[j] = math.Float32frombits(binary.LittleEndian.Uint32(buf[4*j:]))
		}
	}
	if err := ix.check(); err != nil {
		return nil, err
	}
	return ix, nil
}

// Write stores the index at path atomically: a temporary file in the same
// folder, synced, then renamed over path.
func (ix *Index) Write(path string) error {
	ix.Format, ix.Version = Format, Version
	ix.Updated = time.Now().UTC().Format(time.RFC3339)
	if err := ix.check(); err != nil {
		return fmt.Errorf("index: %w", err)
	}
	hdr, err := json.Marshal(&ix.Header)
	if err != nil {
		return fmt.Errorf("index: %w", err)
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("index: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	w := bufio.NewWriterSize(tmp, 1<<20)
	var pre [16]byte
	copy(pre[:8], Magic)
	binary.LittleEndian.PutUint64(pre[8:], uint64(len(hdr)))
	w.Write(pre[:])
	w.Write(hdr)
	var b [4]byte
	for _, v := range ix.Vectors {
		binary.LittleEndian.PutUint32(b[:], math.Float32bits(v))
		w.Write(b[:])
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("index: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("index: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("index: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("index: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("index: %w", err)
	}
	ok = true
	return nil
}
