// Package eval evaluates BLIP models on the downstream benchmarks as
// salesforce/BLIP's evaluation scripts do: image-text retrieval (ITC for
// every pair, top-k re-ranked with ITM, TR/IR recall@1/5/10 as itm_eval),
// captioning (beam search with a prompt, BLEU-1..4 and CIDEr through
// data/metrics) and VQA (generation or ranking of an answer list, VQA
// accuracy), plus zero-shot classification through ITC. Outputs are
// written atomically with WriteOutputs.
package eval

import (
	"encoding/json"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"

	"blip/blip"
	"blip/data/preprocess"
	"blip/data/tokenizer"
	"blip/gpu"
)

// Env is an opened model with its tokenizer and image processor.
type Env struct {
	Backend gpu.Backend
	Model   *blip.Model
	Tok     *tokenizer.Tokenizer
	Proc    preprocess.Processor
	// Dir is the model folder.
	Dir string
}

// Open opens the HF folder dir on be for what (used in messages, e.g.
// "retrieval"). A folder of another class than want is refused before
// loading its weights, with a message naming the folder and both classes.
func Open(be gpu.Backend, dir, what string, want blip.ModelKind) (*Env, error) {
	f, err := blip.OpenFolder(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if f.Kind != want {
		return nil, fmt.Errorf("eval: %s: %s holds a %v model; %s needs a %v", what, dir, f.Kind, what, want)
	}
	tok, err := tokenizer.LoadDir(dir)
	if err != nil {
		return nil, err
	}
	proc, err := preprocess.FromConfigDir(dir)
	if err != nil {
		return nil, err
	}
	m, err := blip.Load(f, be)
	if err != nil {
		return nil, err
	}
	return &Env{Backend: be, Model: m, Tok: tok, Proc: proc, Dir: dir}, nil
}

// Close frees the model.
func (e *Env) Close() {
	if e.Model != nil {
		e.Model.Close()
		e.Model = nil
	}
}

// Encode tokenises [CLS] text [SEP], truncated to maxLen ids when maxLen
// > 0 (the final [SEP] kept, as HF's truncation).
func (e *Env) Encode(text string, maxLen int) []int32 {
	enc := e.Tok.EncodeWith(text, tokenizer.Options{MaxLength: maxLen})
	ids := make([]int32, len(enc.IDs))
	for i, id := range enc.IDs {
		ids[i] = int32(id)
	}
	return ids
}

// Decode turns generated ids into text, special tokens left out.
func (e *Env) Decode(ids []int32) string {
	ints := make([]int, len(ids))
	for i, id := range ids {
		ints[i] = int(id)
	}
	return e.Tok.Decode(ints, true)
}

// LoadPixels decodes and preprocesses image files (in parallel) into one
// batch; an unreadable image is an error naming the file.
func (e *Env) LoadPixels(paths []string) ([]float32, error) {
	imgs := make([]image.Image, len(paths))
	errs := make([]error, len(paths))
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))
	for i, p := range paths {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			img, err := preprocess.Load(p)
			if err != nil {
				errs[i] = fmt.Errorf("eval: image %s: %w", p, err)
				return
			}
			imgs[i] = img
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return e.Proc.Batch(imgs)
}

// Progress reports progress of a stage ("images", "texts", "itm",
// "captioning", ...): done of total units.
type Progress func(stage string, done, total int)

func (p Progress) report(stage string, done, total int) {
	if p != nil {
		p(stage, done, total)
	}
}

// jsonID writes an id as a JSON number when it is a decimal integer
// (COCO image ids, VQA question ids), else as a string.
func jsonID(id string) any {
	if n, err := strconv.ParseInt(id, 10, 64); err == nil && strconv.FormatInt(n, 10) == id {
		return n
	}
	return id
}

// MetricsFile is the metrics file of every evaluation's output folder.
const MetricsFile = "metrics.json"

// Output is one file of an evaluation's output folder.
type Output struct {
	Name string
	Data []byte
}

// JSONFile marshals v (indented) as the file name.
func JSONFile(name string, v any) (Output, error) {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return Output{}, fmt.Errorf("eval: %s: %w", name, err)
	}
	return Output{Name: name, Data: append(data, '\n')}, nil
}

// JSONLinesFile marshals each record on its own line.
func JSONLinesFile[T any](name string, records []T) (Output, error) {
	var data []byte
	for _, r := range records {
		line, err := json.Marshal(r)
		if err != nil {
			return Output{}, fmt.Errorf("eval: %s: %w", name, err)
		}
		data = append(append(data, line...), '\n')
	}
	return Output{Name: name, Data: data}, nil
}

// WriteOutputs writes files into dir atomically: the folder is built aside
// and renamed into place, so dir never holds a partial evaluation. An
// existing dir is replaced only when it is empty or holds an earlier
// evaluation (a metrics.json), never an unrelated folder.
func WriteOutputs(dir string, files []Output) error {
	if err := CheckOutputDir(dir); err != nil {
		return err
	}
	return blip.WriteFolderAtomic(dir, true, func(tmp string) error {
		for _, f := range files {
			if err := blip.WriteFileSync(filepath.Join(tmp, f.Name), f.Data); err != nil {
				return fmt.Errorf("eval: %w", err)
			}
		}
		return nil
	})
}

// CheckOutputDir fails when dir may not be replaced by WriteOutputs: it
// exists and is not a folder, or is a non-empty folder without a
// metrics.json. Callers check before a long evaluation.
func CheckOutputDir(dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return nil
	}
	if !st.IsDir() {
		return fmt.Errorf("eval: %s exists and is not a folder", dir)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	if len(ents) == 0 {
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, MetricsFile)); err != nil {
		return fmt.Errorf("eval: %s exists and holds no %s: not replacing a folder that is not an evaluation output", dir, MetricsFile)
	}
	return nil
}
