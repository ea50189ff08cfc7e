package dataset

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// FolderExts are the extensions (lower case) Folder accepts.
var FolderExts = map[string]bool{"jpg": true, "jpeg": true, "png": true, "gif": true}

// Folder is a plain directory of images (captioning / CapFilt input),
// sorted by name. Samples carry no caption; Key is the file name and
// ImageID the name without extension.
type Folder struct {
	Dir   string
	Files []string // names relative to Dir, sorted
}

// ReadFolder lists the images directly inside dir (case-insensitive
// jpg/jpeg/png/gif; sub-directories and other files are ignored).
func ReadFolder(dir string) (*Folder, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	f := &Folder{Dir: dir}
	for _, de := range des {
		if de.IsDir() || !FolderExts[extOf(de.Name())] {
			continue
		}
		f.Files = append(f.Files, de.Name())
	}
	sort.Strings(f.Files)
	return f, nil
}

// Len returns the number of images.
func (f *Folder) Len() int { return len(f.Files) }

// At returns image i.
func (f *Folder) At(i int) (Sample, error) {
	if i < 0 || i >= len(f.Files) {
		return Sample{}, fmt.Errorf("dataset: folder index %d out of range [0,%d)", i, len(f.Files))
	}
	name := f.Files[i]
	ext := filepath.Ext(name)
	return Sample{
		Key:     name,
		Path:    filepath.Join(f.Dir, name),
		Ext:     extOf(name),
		ImageID: name[:len(name)-len(ext)],
		Index:   i,
	}, nil
}

// Open iterates the images in order.
func (f *Folder) Open() (Source, error) { return &sliceSource{d: f}, nil }
