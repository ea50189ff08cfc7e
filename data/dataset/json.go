package dataset

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"blip/data/tokenizer"
)

// Entry is one annotation of a BLIP-style JSON file, with all its captions.
type Entry struct {
	// Image is the annotation's "image" field, relative to the image root.
	Image string
	// Path is Image joined to the image root.
	Path string
	// Captions holds the caption(s); a string caption gives one element.
	Captions []string
	// ImageID is "image_id" as text (numbers kept verbatim), or Image when
	// the field is absent.
	ImageID string
	// Index is the entry's position in the file.
	Index int
}

// JSONOptions configures ReadAnnotations.
type JSONOptions struct {
	// MaxWords, when > 0, applies BLIP's pre_caption(caption, MaxWords)
	// to every caption.
	MaxWords int
	// AllowNoCaption accepts entries without "caption" (e.g. retrieval or
	// captioning test lists); they get no captions.
	AllowNoCaption bool
}

// ReadAnnotations parses a BLIP-style JSON annotation file: a list of
// objects {"image": path, "caption": string | [string...], "image_id"?}.
// Image paths are resolved relative to root. Missing or malformed fields
// are errors naming the file and the entry index.
func ReadAnnotations(file, root string, opt JSONOptions) ([]Entry, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("dataset: %s: not a JSON list of annotations: %v", file, err)
	}
	entries := make([]Entry, 0, len(raw))
	for i, r := range raw {
		e, err := parseEntry(r, root, opt)
		if err != nil {
			return nil, fmt.Errorf("dataset: %s: entry %d: %v", file, i, err)
		}
		e.Index = i
		entries = append(entries, e)
	}
	return entries, nil
}

func parseEntry(r json.RawMessage, root string, opt JSONOptions) (Entry, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(r, &obj); err != nil || obj == nil {
		return Entry{}, fmt.Errorf("not a JSON object")
	}
	var e Entry
	img, ok := obj["image"]
	if !ok {
		return e, fmt.Errorf(`missing "image"`)
	}
	if err := json.Unmarshal(img, &e.Image); err != nil || isNull(img) {
		return e, fmt.Errorf(`"image" is not a string`)
	}
	if strings.TrimSpace(e.Image) == "" {
		return e, fmt.Errorf(`empty "image"`)
	}
	if filepath.IsAbs(e.Image) || root == "" {
		e.Path = e.Image
	} else {
		e.Path = filepath.Join(root, e.Image)
	}
	if c, ok := obj["caption"]; ok && !isNull(c) {
		var s string
		var list []json.RawMessage
		switch {
		case json.Unmarshal(c, &s) == nil:
			e.Captions = []string{s}
		case json.Unmarshal(c, &list) == nil:
			if len(list) == 0 {
				return e, fmt.Errorf(`empty "caption" list`)
			}
			for j, item := range list {
				var cs string
				if err := json.Unmarshal(item, &cs); err != nil || isNull(item) {
					return e, fmt.Errorf(`"caption"[%d] is not a string`, j)
				}
				e.Captions = append(e.Captions, cs)
			}
		default:
			return e, fmt.Errorf(`"caption" is neither a string nor a list of strings`)
		}
	} else if !opt.AllowNoCaption {
		return e, fmt.Errorf(`missing "caption"`)
	}
	if opt.MaxWords > 0 {
		for j, c := range e.Captions {
			e.Captions[j] = tokenizer.PreCaption(c, opt.MaxWords)
		}
	}
	e.ImageID = e.Image
	if id, ok := obj["image_id"]; ok && !isNull(id) {
		var s string
		var n json.Number
		d := json.NewDecoder(bytes.NewReader(id))
		d.UseNumber()
		switch {
		case json.Unmarshal(id, &s) == nil:
			e.ImageID = s
		case d.Decode(&n) == nil:
			e.ImageID = n.String()
		default:
			return e, fmt.Errorf(`"image_id" is neither a string nor a number`)
		}
	}
	return e, nil
}

func isNull(r json.RawMessage) bool { return string(bytes.TrimSpace(r)) == "null" }

// Pairs is the training view of annotations: one sample per
// (image, caption) pair, entries with a caption list expanded in order.
type Pairs struct {
	Entries []Entry
	idx     [][2]int // (entry, caption)
}

// NewPairs expands entries into (image, caption) pairs.
func NewPairs(entries []Entry) *Pairs {
	p := &Pairs{Entries: entries}
	for i, e := range entries {
		for j := range e.Captions {
			p.idx = append(p.idx, [2]int{i, j})
		}
	}
	return p
}

// Len returns the number of pairs.
func (p *Pairs) Len() int { return len(p.idx) }

// At returns pair i.
func (p *Pairs) At(i int) (Sample, error) {
	if i < 0 || i >= len(p.idx) {
		return Sample{}, fmt.Errorf("dataset: pair index %d out of range [0,%d)", i, len(p.idx))
	}
	e := p.Entries[p.idx[i][0]]
	return Sample{
		Key:     e.Image,
		Path:    e.Path,
		Ext:     extOf(e.Path),
		Caption: e.Captions[p.idx[i][1]],
		ImageID: e.ImageID,
		Index:   i,
	}, nil
}

// Open iterates the pairs in order.
func (p *Pairs) Open() (Source, error) { return &sliceSource{d: p}, nil }

// Grouped is the evaluation view: one sample per entry with all captions
// in Captions (Caption holds the first one, if any).
type Grouped struct {
	Entries []Entry
}

// Len returns the number of entries.
func (g *Grouped) Len() int { return len(g.Entries) }

// At returns entry i as a sample.
func (g *Grouped) At(i int) (Sample, error) {
	if i < 0 || i >= len(g.Entries) {
		return Sample{}, fmt.Errorf("dataset: entry index %d out of range [0,%d)", i, len(g.Entries))
	}
	e := g.Entries[i]
	s := Sample{
		Key:      e.Image,
		Path:     e.Path,
		Ext:      extOf(e.Path),
		Captions: append([]string(nil), e.Captions...),
		ImageID:  e.ImageID,
		Index:    i,
	}
	if len(e.Captions) > 0 {
		s.Caption = e.Captions[0]
	}
	return s, nil
}

// Open iterates the entries in order.
func (g *Grouped) Open() (Source, error) { return &sliceSource{d: g}, nil }

// ReadPairs reads one or more annotation files (concatenated in order) and
// returns their training pairs.
func ReadPairs(root string, opt JSONOptions, files ...string) (*Pairs, error) {
	var all []Entry
	for _, f := range files {
		es, err := ReadAnnotations(f, root, opt)
		if err != nil {
			return nil, err
		}
		all = append(all, es...)
	}
	return NewPairs(all), nil
}

func extOf(p string) string {
	return strings.TrimPrefix(strings.ToLower(filepath.Ext(p)), ".")
}

// IDIndex maps each distinct ImageID to a contiguous index in order of
// first appearance, as BLIP's COCO/Flickr training sets do for the ITC/ITM
// image ids.
func IDIndex(entries []Entry) map[string]int {
	m := map[string]int{}
	for _, e := range entries {
		if _, ok := m[e.ImageID]; !ok {
			m[e.ImageID] = len(m)
		}
	}
	return m
}
