// Package dataset reads the image-text data used by BLIP pretraining,
// fine-tuning and CapFilt: BLIP-style JSON annotation files, img2dataset
// webdataset tar shards and plain image folders. Sources only detect
// structural problems; images are decoded later by a Loader, which runs a
// user decode/transform function on several workers while keeping the
// source order deterministic.
package dataset

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
)

// Sample is one item produced by a source.
type Sample struct {
	// Key names the sample in messages: a path relative to the image root,
	// or "shard.tar/key" for webdataset samples.
	Key string
	// Path is the image file on disk; empty when ImageBytes holds the image.
	Path string
	// ImageBytes holds the encoded image (webdataset samples).
	ImageBytes []byte
	// Ext is the lower-case image extension without the dot ("jpg", "png").
	Ext string
	// Caption is the single caption of a training pair (empty for folders).
	Caption string
	// Captions holds every caption of an evaluation entry.
	Captions []string
	// ImageID identifies the image (annotation "image_id", or a fallback).
	ImageID string
	// Index is the position of the sample in its source order.
	Index int
}

// Image returns the encoded image bytes, reading Path when needed.
func (s Sample) Image() ([]byte, error) {
	if s.ImageBytes != nil {
		return s.ImageBytes, nil
	}
	if s.Path == "" {
		return nil, fmt.Errorf("dataset: sample %q has no image", s.Key)
	}
	return os.ReadFile(s.Path)
}

// Source yields samples sequentially; Next returns io.EOF at the end.
type Source interface {
	Next() (Sample, error)
}

// Dataset can be read from the start any number of times (once per epoch).
type Dataset interface {
	Open() (Source, error)
}

// Indexed is a Dataset whose samples are addressable by position, which
// allows shuffling and O(1) resume.
type Indexed interface {
	Dataset
	Len() int
	At(i int) (Sample, error)
}

// StatsReporter is implemented by sources that count skipped entries.
type StatsReporter interface {
	Stats() Stats
}

// Stats counts skipped or failed samples by reason.
type Stats struct {
	// Seen counts samples produced (or attempted).
	Seen int
	// Skipped counts samples dropped.
	Skipped int
	// Reasons maps a short reason to its count.
	Reasons map[string]int
	// Examples keeps the first few "key: reason" messages.
	Examples []string
}

const maxExamples = 8

// Skip records one skipped sample.
func (s *Stats) Skip(key, reason string) { s.SkipDetail(key, reason, reason) }

// SkipDetail records one skipped sample counted under reason, with a more
// detailed message kept among the examples.
func (s *Stats) SkipDetail(key, reason, detail string) {
	s.Skipped++
	if s.Reasons == nil {
		s.Reasons = map[string]int{}
	}
	s.Reasons[reason]++
	if len(s.Examples) < maxExamples {
		s.Examples = append(s.Examples, key+": "+detail)
	}
}

// Merge adds o into s.
func (s *Stats) Merge(o Stats) {
	s.Seen += o.Seen
	s.Skipped += o.Skipped
	for r, n := range o.Reasons {
		if s.Reasons == nil {
			s.Reasons = map[string]int{}
		}
		s.Reasons[r] += n
	}
	for _, e := range o.Examples {
		if len(s.Examples) < maxExamples {
			s.Examples = append(s.Examples, e)
		}
	}
}

// Clone returns a deep copy.
func (s Stats) Clone() Stats {
	var c Stats
	c.Merge(s)
	return c
}

// String summarises the stats, reasons sorted.
func (s Stats) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d seen, %d skipped", s.Seen, s.Skipped)
	rs := make([]string, 0, len(s.Reasons))
	for r := range s.Reasons {
		rs = append(rs, r)
	}
	sort.Strings(rs)
	for _, r := range rs {
		fmt.Fprintf(&b, "; %s: %d", r, s.Reasons[r])
	}
	return b.String()
}

// sliceSource iterates an Indexed dataset sequentially.
type sliceSource struct {
	d Indexed
	i int
}

func (s *sliceSource) Next() (Sample, error) {
	if s.i >= s.d.Len() {
		return Sample{}, io.EOF
	}
	smp, err := s.d.At(s.i)
	s.i++
	return smp, err
}

// syncStats is a Stats guarded by a mutex.
type syncStats struct {
	mu sync.Mutex
	s  Stats
}

func (x *syncStats) get() Stats {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.s.Clone()
}
