package shapes

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"runtime"
	"sync"
)

// WriteOptions controls Write.
type WriteOptions struct {
	// FlattenTrain writes train.json with one entry per caption, as BLIP's
	// coco_karpathy_train; otherwise one entry per image with every
	// paraphrase, as val and test always are.
	FlattenTrain bool
	// Workers draws images in parallel; 0 means GOMAXPROCS. The bytes
	// written do not depend on it.
	Workers int
}

// Write stores a dataset in dir:
//
//	images/{split}/NNNNNN.png   the images (NNNNNN is the image id)
//	{split}.json                captions, BLIP caption-annotation format
//	vqa_{split}.json            questions, BLIP VQA format
//	attributes_{split}.json     ground truth of every image
//	answer_list.json            every possible answer
//	vocab.txt                   the BERT-style vocabulary of this world
//	settings.json               the settings, for LoadConfig
//
// Each file is written to a temporary name and renamed into place, so a
// reader never sees a partial file; the images go first and settings.json
// last, so a folder holding settings.json is complete. Files of an earlier,
// larger dataset in dir are not removed.
func Write(dir string, d *Dataset, opt WriteOptions) error {
	if d == nil || len(d.Scenes) == 0 {
		return fmt.Errorf("shapes: write %s: empty dataset", dir)
	}
	if err := d.Config.Validate(); err != nil {
		return err
	}
	for _, split := range Splits() {
		if err := os.MkdirAll(filepath.Join(dir, "images", split), 0o755); err != nil {
			return fmt.Errorf("shapes: %w", err)
		}
	}
	if err := writeImages(dir, d, opt.Workers); err != nil {
		return err
	}
	for _, split := range Splits() {
		scenes := d.Split(split)
		if scenes == nil {
			scenes = []Scene{}
		}
		var caps any = CaptionEntries(scenes)
		if split == SplitTrain && opt.FlattenTrain {
			caps = FlatCaptionEntries(scenes)
		}
		files := []struct {
			name string
			v    any
		}{
			{CaptionFile(split), caps},
			{VQAFile(split), VQAEntries(scenes)},
			{AttributesFile(split), scenes},
		}
		for _, f := range files {
			if err := writeJSON(filepath.Join(dir, f.name), f.v); err != nil {
				return err
			}
		}
	}
	if err := writeJSON(filepath.Join(dir, AnswerListFile), AnswerList(d.Config)); err != nil {
		return err
	}
	if err := WriteVocab(filepath.Join(dir, VocabFile)); err != nil {
		return err
	}
	return writeJSON(filepath.Join(dir, SettingsFile), d.Config)
}

// writeImages renders and stores every image, several at a time.
func writeImages(dir string, d *Dataset, workers int) error {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	jobs := make(chan int)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := range jobs {
				if errs[w] != nil {
					continue // drain
				}
				errs[w] = writeImage(dir, &d.Scenes[i], d.Config.Supersample)
			}
		}(w)
	}
	for i := range d.Scenes {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func writeImage(dir string, s *Scene, supersample int) error {
	img, err := Render(s, supersample)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return fmt.Errorf("shapes: encode %s: %v", s.Image, err)
	}
	return writeAtomic(filepath.Join(dir, filepath.FromSlash(s.Image)), buf.Bytes())
}

func writeJSON(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("shapes: %s: %v", path, err)
	}
	return writeAtomic(path, append(data, '\n'))
}

// writeAtomic writes data to a temporary file beside path and renames it
// onto path. It does not fsync: the aim is that readers never see half a
// file, and a dataset can always be generated again.
func writeAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("shapes: %w", err)
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	cerr := f.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(tmp, 0o644)
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		os.Remove(tmp)
		return fmt.Errorf("shapes: write %s: %w", path, werr)
	}
	return nil
}
