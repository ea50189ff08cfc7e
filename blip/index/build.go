package index

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"blip/data/preprocess"
)

// Embedder turns decoded images into their normalised embeddings,
// row-major (len(imgs), dim).
type Embedder func(imgs []image.Image) ([]float32, error)

// BuildOptions configure Build.
type BuildOptions struct {
	// Root is the photo folder, walked recursively (symbolic links are not
	// followed); Out is the index file, read first when it exists.
	Root, Out string
	// Model and Fingerprint name the embedding model (Fingerprint); an
	// existing index made with another fingerprint or width is rebuilt.
	Model, Fingerprint string
	Dim                int
	// Batch is the number of images per Embedder call (0: 8).
	Batch int
	// MaxPixels is the decoder's pixel limit (0: preprocess's default).
	MaxPixels int64
	// CheckpointEvery is how often the partial index is written while
	// embedding (0: 30 s), so an interrupted run resumes from there.
	CheckpointEvery time.Duration
	// Progress receives a progress bar (nil: none); Log one-line notices
	// (nil: none).
	Progress, Log io.Writer
}

// Stats count what Build did.
type Stats struct {
	Files    int // image files found
	Reused   int // unchanged since the last run, embeddings kept
	Embedded int // new or changed, embedded now
	Failed   int // could not be decoded (now or unchanged since)
	Removed  int // in the old index, gone from the folder
}

func (s Stats) String() string {
	return fmt.Sprintf("%d images: %d embedded, %d unchanged, %d unreadable, %d removed", s.Files, s.Embedded, s.Reused, s.Failed, s.Removed)
}

// ImageExts are the file extensions Build indexes (lower case).
var ImageExts = map[string]bool{".jpg": true, ".jpeg": true, ".png": true, ".gif": true}

// Scan lists the image files under root (absolute), sorted by path,
// without following symbolic links or entering hidden folders.
func Scan(root string) ([]Entry, error) {
	var out []Entry
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if p != root && strings.HasPrefix(name, ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || strings.HasPrefix(name, ".") || !ImageExts[strings.ToLower(filepath.Ext(name))] {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		out = append(out, Entry{Path: filepath.ToSlash(rel), Size: info.Size(), ModTimeNS: info.ModTime().UnixNano()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// Build brings the index at o.Out up to date with the folder o.Root:
// images whose path, size and modification time match the existing index
// keep their embeddings, new and changed ones are embedded, removed ones
// dropped. The partial index is written every o.CheckpointEvery and when
// ctx is cancelled, so an interrupted run resumes where it stopped; every
// write is atomic. It returns the final index.
func Build(ctx context.Context, o BuildOptions, embed Embedder) (*Index, Stats, error) {
	var st Stats
	if o.Dim < 1 {
		return nil, st, fmt.Errorf("index: embedding width %d", o.Dim)
	}
	batch := o.Batch
	if batch <= 0 {
		batch = 8
	}
	every := o.CheckpointEvery
	if every <= 0 {
		every = 30 * time.Second
	}
	logf := func(format string, args ...any) {
		if o.Log != nil {
			fmt.Fprintf(o.Log, format+"\n", args...)
		}
	}
	root, err := filepath.Abs(o.Root)
	if err != nil {
		return nil, st, fmt.Errorf("index: %w", err)
	}
	if info, err := os.Stat(root); err != nil {
		return nil, st, fmt.Errorf("index: %w", err)
	} else if !info.IsDir() {
		return nil, st, fmt.Errorf("index: %s is not a folder", root)
	}
	files, err := Scan(root)
	if err != nil {
		return nil, st, err
	}
	st.Files = len(files)

	// What the previous run left.
	type kept struct {
		e   Entry
		vec []float32
	}
	done := map[string]kept{}
	failed := map[string]Failed{}
	old, err := Load(o.Out)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, st, fmt.Errorf("%w (delete it to build a new index)", err)
	case old.Root != root:
		logf("index: %s was built for %s; rebuilding it for %s", o.Out, old.Root, root)
	case old.Fingerprint != o.Fingerprint || old.Dim != o.Dim:
		logf("index: %s was built with another model (%s); embedding every image again", o.Out, old.Model)
	default:
		for i, e := range old.Entries {
			done[e.Path] = kept{e, old.Vector(i)}
		}
		for _, f := range old.Failed {
			failed[f.Path] = f
		}
	}

	var todo []Entry
	current := make(map[string]bool, len(files))
	for _, f := range files {
		current[f.Path] = true
		if k, ok := done[f.Path]; ok && k.e == f {
			st.Reused++
			continue
		}
		delete(done, f.Path)
		if fl, ok := failed[f.Path]; ok && fl.Entry == f {
			st.Failed++
			continue
		}
		delete(failed, f.Path)
		todo = append(todo, f)
	}
	for p := range done {
		if !current[p] {
			delete(done, p)
			st.Removed++
		}
	}
	for p := range failed {
		if !current[p] {
			delete(failed, p)
		}
	}

	snapshot := func() *Index {
		ix := &Index{Header: Header{Root: root, Model: o.Model, Fingerprint: o.Fingerprint, Dim: o.Dim}}
		ix.Entries = []Entry{}
		for _, f := range files {
			if k, ok := done[f.Path]; ok {
				ix.Entries = append(ix.Entries, k.e)
				ix.Vectors = append(ix.Vectors, k.vec...)
			} else if fl, ok := failed[f.Path]; ok {
				ix.Failed = append(ix.Failed, fl)
			}
		}
		return ix
	}

	var bar *progressbar.ProgressBar
	if o.Progress != nil && len(todo) > 0 {
		bar = progressbar.NewOptions(len(todo), progressbar.OptionSetWriter(o.Progress),
			progressbar.OptionSetDescription("indexing"), progressbar.OptionShowCount(),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(o.Progress) }))
	}
	dec := preprocess.Decoder{MaxPixels: o.MaxPixels}
	last := time.Now()
	// Notices about unreadable files wait for the progress bar to end.
	var skipped []string
	defer func() {
		for _, s := range skipped {
			logf("%s", s)
		}
	}()
	for start := 0; start < len(todo); start += batch {
		if err := ctx.Err(); err != nil {
			if werr := snapshot().Write(o.Out); werr != nil {
				return nil, st, werr
			}
			return nil, st, fmt.Errorf("index: interrupted after %d of %d new images; run again to resume: %w", start, len(todo), err)
		}
		part := todo[start:min(start+batch, len(todo))]
		imgs, errs := decodeAll(dec, root, part)
		var ok []Entry
		var okImgs []image.Image
		for i, e := range part {
			if errs[i] != nil {
				failed[e.Path] = Failed{Entry: e, Error: errs[i].Error()}
				st.Failed++
				skipped = append(skipped, fmt.Sprintf("index: skipping %s: %v", e.Path, errs[i]))
				continue
			}
			ok, okImgs = append(ok, e), append(okImgs, imgs[i])
		}
		if len(ok) > 0 {
			vecs, err := embed(okImgs)
			if err == nil && len(vecs) != len(ok)*o.Dim {
				err = fmt.Errorf("index: the embedder gave %d values for %d images of width %d", len(vecs), len(ok), o.Dim)
			}
			if err != nil {
				if werr := snapshot().Write(o.Out); werr != nil {
					logf("index: %v", werr)
				}
				return nil, st, err
			}
			for i, e := range ok {
				done[e.Path] = kept{e, vecs[i*o.Dim : (i+1)*o.Dim : (i+1)*o.Dim]}
				st.Embedded++
			}
		}
		if bar != nil {
			bar.Add(len(part))
		}
		if time.Since(last) >= every && start+batch < len(todo) {
			if err := snapshot().Write(o.Out); err != nil {
				return nil, st, err
			}
			last = time.Now()
		}
	}
	ix := snapshot()
	if err := ix.Write(o.Out); err != nil {
		return nil, st, err
	}
	return ix, st, nil
}

// decodeAll decodes files in parallel.
func decodeAll(dec preprocess.Decoder, root string, part []Entry) ([]image.Image, []error) {
	imgs, errs := make([]image.Image, len(part)), make([]error, len(part))
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))
	for i, e := range part {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			img, err := dec.Load(filepath.Join(root, filepath.FromSlash(e.Path)))
			if err != nil {
				errs[i] = err
				return
			}
			imgs[i] = img
		}()
	}
	wg.Wait()
	return imgs, errs
}

// Fingerprint identifies a model folder's weights: a SHA-256 of its
// config.json and weight files (safetensors, pytorch_model.bin, their
// shard indexes), names and contents.
func Fingerprint(dir string) (string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("index: %w", err)
	}
	var names []string
	for _, e := range ents {
		n := e.Name()
		if n == "config.json" || strings.HasSuffix(n, ".safetensors") || strings.HasSuffix(n, ".bin") ||
			strings.HasSuffix(n, ".pth") || strings.HasSuffix(n, ".index.json") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		f, err := os.Open(filepath.Join(dir, n))
		if err != nil {
			return "", fmt.Errorf("index: %w", err)
		}
		fmt.Fprintf(h, "%s\x00", n)
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", fmt.Errorf("index: %w", err)
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}
