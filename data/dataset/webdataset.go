package dataset

import (
	"archive/tar"
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// WebImageExts are the image extensions WebDataset recognises, in order
// of preference when a sample has several.
var WebImageExts = []string{"jpg", "jpeg", "png", "webp"}

// MaxMemberSize bounds the size of one tar member read into memory.
const MaxMemberSize = 64 << 20

// WebDataset is a list of img2dataset webdataset tar shards, read
// sequentially and streamed one sample at a time.
type WebDataset struct {
	Shards []string
}

// NewWebDataset expands each pattern with ExpandBraces (in order) into
// the shard list. Files are not opened until Open/Next.
func NewWebDataset(patterns ...string) (*WebDataset, error) {
	w := &WebDataset{}
	for _, p := range patterns {
		s, err := ExpandBraces(p)
		if err != nil {
			return nil, err
		}
		w.Shards = append(w.Shards, s...)
	}
	if len(w.Shards) == 0 {
		return nil, errors.New("dataset: no webdataset shards")
	}
	return w, nil
}

// Open starts reading the shards from the beginning.
func (w *WebDataset) Open() (Source, error) {
	return &TarReader{shards: w.Shards}, nil
}

// TarReader streams samples from tar shards. Consecutive members sharing
// a key (the member path up to the first dot of its base name) form a
// sample; the caption comes from key.txt, else from the "caption" field of
// key.json. Samples without an image or a caption are skipped and counted
// in Stats. A missing shard or corrupt tar stream is an error naming the
// shard.
type TarReader struct {
	shards []string
	cur    int
	f      *os.File
	tr     *tar.Reader
	name   string

	pending *group
	index   int
	stats   Stats
	done    bool
}

type group struct {
	key     string
	files   map[string][]byte // extension -> contents
	members int
}

// Stats returns the counts of samples produced and skipped so far.
func (r *TarReader) Stats() Stats { return r.stats.Clone() }

// Close releases the open shard.
func (r *TarReader) Close() error {
	r.done = true
	if r.f != nil {
		err := r.f.Close()
		r.f = nil
		return err
	}
	return nil
}

// Next returns the next complete sample or io.EOF.
func (r *TarReader) Next() (Sample, error) {
	for {
		if r.done {
			return Sample{}, io.EOF
		}
		g, err := r.nextGroup()
		if err != nil {
			if err == io.EOF {
				r.done = true
			}
			return Sample{}, err
		}
		if s, ok := r.build(g); ok {
			return s, nil
		}
	}
}

// nextGroup returns the next group of members with a common key.
func (r *TarReader) nextGroup() (*group, error) {
	for {
		if r.tr == nil {
			if r.pending != nil {
				g := r.pending
				r.pending = nil
				return g, nil
			}
			if r.cur >= len(r.shards) {
				return nil, io.EOF
			}
			if err := r.openShard(); err != nil {
				return nil, err
			}
		}
		h, err := r.tr.Next()
		if err == io.EOF {
			r.f.Close()
			r.f, r.tr = nil, nil
			continue // flushes pending next loop
		}
		if err != nil {
			return nil, fmt.Errorf("dataset: shard %s: %v", r.name, err)
		}
		if h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeRegA {
			continue
		}
		base := path.Base(h.Name)
		if strings.HasPrefix(base, ".") || strings.HasPrefix(base, "__") {
			continue
		}
		dot := strings.IndexByte(base, '.')
		if dot < 0 {
			continue
		}
		key := path.Join(path.Dir(h.Name), base[:dot])
		ext := strings.ToLower(base[dot+1:])
		if h.Size > MaxMemberSize {
			return nil, fmt.Errorf("dataset: shard %s: member %s is %d bytes (max %d)", r.name, h.Name, h.Size, MaxMemberSize)
		}
		data := make([]byte, h.Size)
		if _, err := io.ReadFull(r.tr, data); err != nil {
			return nil, fmt.Errorf("dataset: shard %s: member %s: %v", r.name, h.Name, err)
		}
		var out *group
		if r.pending != nil && r.pending.key != r.name+"/"+key {
			out = r.pending
			r.pending = nil
		}
		if r.pending == nil {
			r.pending = &group{key: r.name + "/" + key, files: map[string][]byte{}}
		}
		r.pending.files[ext] = data
		r.pending.members++
		if out != nil {
			return out, nil
		}
	}
}

func (r *TarReader) openShard() error {
	name := r.shards[r.cur]
	r.cur++
	f, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("dataset: shard: %w", err)
	}
	r.f = f
	r.name = filepath.Base(name)
	r.tr = tar.NewReader(bufio.NewReaderSize(f, 1<<20))
	return nil
}

func (r *TarReader) build(g *group) (Sample, bool) {
	r.stats.Seen++
	s := Sample{Key: g.key, ImageID: path.Base(g.key)}
	for _, e := range WebImageExts {
		if b, ok := g.files[e]; ok {
			s.ImageBytes, s.Ext = b, e
			break
		}
	}
	if s.ImageBytes == nil {
		r.stats.Skip(g.key, "missing image")
		return s, false
	}
	var meta struct {
		Caption *string `json:"caption"`
		Key     *string `json:"key"`
	}
	hasJSON := false
	if b, ok := g.files["json"]; ok {
		if err := json.Unmarshal(b, &meta); err == nil {
			hasJSON = true
			if meta.Key != nil && *meta.Key != "" {
				s.ImageID = *meta.Key
			}
		}
	}
	if b, ok := g.files["txt"]; ok {
		s.Caption = string(b)
	} else if hasJSON && meta.Caption != nil {
		s.Caption = *meta.Caption
	} else {
		if _, ok := g.files["json"]; ok && !hasJSON {
			r.stats.Skip(g.key, "bad json")
		} else {
			r.stats.Skip(g.key, "missing caption")
		}
		return s, false
	}
	s.Captions = []string{s.Caption}
	s.Index = r.index
	r.index++
	return s, true
}
