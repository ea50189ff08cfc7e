package eval

import (
	"bytes"
	"fmt"
	"os"
	"strconv"

	"blip/data/dataset"
)

// Annotation formats the loaders accept.
const (
	FormatAuto        = "auto"         // from the file and the task
	FormatBLIP        = "blip"         // BLIP's JSON lists
	FormatCOCO        = "coco"         // coco_karpathy_*.json; captions keyed by COCO image id
	FormatFlickr      = "flickr"       // flickr30k_*.json (the BLIP layout)
	FormatVQAOfficial = "vqa-official" // VQA v2 questions (+ annotations) files
)

// LoadRetrieval reads a BLIP/COCO/Flickr evaluation file ({"image",
// "caption": [...]} entries) as BLIP's retrieval evaluation datasets do
// (captions cleaned with pre_caption(maxWords), BLIP: 30), keeping the
// first limit images when limit > 0.
func LoadRetrieval(file, root, format string, maxWords, limit int) (*dataset.Retrieval, error) {
	switch format {
	case "", FormatAuto, FormatBLIP, FormatCOCO, FormatFlickr:
	default:
		return nil, fmt.Errorf("eval: retrieval reads the blip, coco or flickr format, not %q", format)
	}
	r, err := dataset.ReadRetrievalEval(file, root, maxWords)
	if err != nil {
		return nil, err
	}
	if limit > 0 && limit < len(r.Entries) {
		if r, err = dataset.NewRetrieval(r.Entries[:limit]); err != nil {
			return nil, fmt.Errorf("eval: %s: %w", file, err)
		}
	}
	return r, nil
}

// LoadCaption reads a caption evaluation file ({"image", "caption":
// [...]} entries; references are used as written, COCOEvalCap tokenises
// them). With the coco format, or auto when no entry has an "image_id" and
// every image path holds a COCO id, entries are keyed by their COCO image
// id as BLIP's coco_karpathy_caption_eval; otherwise by "image_id" or the
// image path. limit > 0 keeps the first limit entries.
func LoadCaption(file, root, format string, limit int) ([]dataset.Entry, error) {
	var es []dataset.Entry
	var err error
	switch format {
	case FormatCOCO:
		es, err = dataset.ReadCocoCaptionEval(file, root, dataset.JSONOptions{})
	case "", FormatAuto, FormatBLIP, FormatFlickr:
		es, err = dataset.ReadCaptionEval(file, root, dataset.JSONOptions{})
		if err == nil && (format == "" || format == FormatAuto) && len(es) > 0 {
			ids := make([]string, len(es))
			for i, e := range es {
				id, err := dataset.CocoImageID(e.Image)
				if err != nil || e.ImageID != e.Image {
					ids = nil
					break
				}
				ids[i] = strconv.FormatInt(id, 10)
			}
			for i := range ids {
				es[i].ImageID = ids[i]
			}
		}
	default:
		return nil, fmt.Errorf("eval: caption reads the blip, coco or flickr format, not %q", format)
	}
	if err != nil {
		return nil, err
	}
	if limit > 0 && limit < len(es) {
		es = es[:limit]
	}
	return es, nil
}

// LoadVQA reads VQA questions: BLIP's VQA JSON (a list; images under root,
// Visual Genome ones under vgRoot) or the official VQA v2 questions file
// with, unless empty, its annotations file (auto tells them apart by the
// file's first character). Questions are cleaned with pre_question (50
// words, BLIP's default). limit > 0 keeps the first limit questions.
func LoadVQA(file, annotations, root, vgRoot, format string, limit int) (*dataset.VQASet, error) {
	if format == "" || format == FormatAuto {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("eval: %w", err)
		}
		format = FormatBLIP
		if b := bytes.TrimSpace(data); len(b) > 0 && b[0] == '{' {
			format = FormatVQAOfficial
		}
	}
	opt := dataset.VQAOptions{MaxQuestionWords: 50}
	var set *dataset.VQASet
	var err error
	switch format {
	case FormatBLIP:
		if annotations != "" {
			return nil, fmt.Errorf("eval: %s is in BLIP's VQA format, which holds its answers: no annotations file is read", file)
		}
		set, err = dataset.ReadVQAJSON(file, dataset.VQARoots{VQA: root, VG: vgRoot}, opt)
	case FormatVQAOfficial:
		set, err = dataset.ReadVQAOfficial(file, annotations, root, opt)
	default:
		return nil, fmt.Errorf("eval: vqa reads the blip or vqa-official format, not %q", format)
	}
	if err != nil {
		return nil, err
	}
	if limit > 0 && limit < len(set.Questions) {
		set.Questions = set.Questions[:limit]
	}
	return set, nil
}
