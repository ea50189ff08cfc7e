package dataset

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// This file reads the COCO (Karpathy split) and Flickr30k annotation files
// BLIP distributes (coco_karpathy_{train,val,test}.json,
// flickr30k_{train,val,test}.json):
//
//	train:    [{"image": path, "caption": string, "image_id": id}, ...]
//	val/test: [{"image": path, "caption": [string, ...]}, ...]
//
// and builds the views of BLIP's datasets: training pairs, the retrieval
// evaluation index maps (txt2img, img2txt) and the COCO image ids the
// caption evaluation reports.

// RetrievalMaxWords is BLIP's max_words for retrieval evaluation texts
// (coco_karpathy_retrieval_eval, flickr30k_retrieval_eval).
const RetrievalMaxWords = 30

// readRawList reads file as a JSON list, one raw message per entry.
func readRawList(file string) ([]json.RawMessage, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("dataset: %s: not a JSON list: %v", file, err)
	}
	return raw, nil
}

// readEntries parses every entry of a BLIP-style list with parseEntry after
// check has validated the raw object; errors name the file and the entry.
func readEntries(file, root string, opt JSONOptions, check func(obj map[string]json.RawMessage) error) ([]Entry, error) {
	raw, err := readRawList(file)
	if err != nil {
		return nil, err
	}
	entries := make([]Entry, 0, len(raw))
	for i, r := range raw {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(r, &obj); err != nil || obj == nil {
			return nil, fmt.Errorf("dataset: %s: entry %d: not a JSON object", file, i)
		}
		if check != nil {
			if err := check(obj); err != nil {
				return nil, fmt.Errorf("dataset: %s: entry %d: %v", file, i, err)
			}
		}
		e, err := parseEntry(r, root, opt)
		if err != nil {
			return nil, fmt.Errorf("dataset: %s: entry %d: %v", file, i, err)
		}
		e.Index = i
		entries = append(entries, e)
	}
	return entries, nil
}

// readObject reads file as a JSON object, one raw message per field.
func readObject(file, what string) (map[string]json.RawMessage, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil || obj == nil {
		msg := "not a JSON object"
		if err != nil && firstByte(data) == '{' {
			msg = err.Error()
		}
		return nil, fmt.Errorf("dataset: %s: not a %s: %s", file, what, msg)
	}
	return obj, nil
}

// listField decodes obj[name] as a JSON list; errors name the field.
func listField(file string, obj map[string]json.RawMessage, name string) ([]json.RawMessage, error) {
	r, ok := obj[name]
	if !ok || isNull(r) {
		return nil, fmt.Errorf("dataset: %s: missing %q", file, name)
	}
	var list []json.RawMessage
	if err := json.Unmarshal(r, &list); err != nil {
		return nil, fmt.Errorf("dataset: %s: %q is not a list", file, name)
	}
	return list, nil
}

// firstByte returns the first non-space byte of a raw JSON value.
func firstByte(r json.RawMessage) byte {
	b := bytes.TrimSpace(r)
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

// ReadCaptionTrain reads a BLIP training file (coco_karpathy_train.json,
// flickr30k_train.json): every entry needs "image", a string "caption" and
// "image_id" (a string or a number). Use NewPairs for the training view and
// IDIndex for the contiguous image indices BLIP uses in ITC/ITM; set
// opt.MaxWords to 30 to apply BLIP's pre_caption (coco_karpathy_train's
// default; a prompt is prepended later, by the caller).
func ReadCaptionTrain(file, root string, opt JSONOptions) ([]Entry, error) {
	return readEntries(file, root, opt, func(obj map[string]json.RawMessage) error {
		c, ok := obj["caption"]
		if !ok || isNull(c) {
			return fmt.Errorf(`missing "caption"`)
		}
		if firstByte(c) != '"' {
			return fmt.Errorf(`"caption" is not a string (a training entry has one caption)`)
		}
		if id, ok := obj["image_id"]; !ok || isNull(id) {
			return fmt.Errorf(`missing "image_id"`)
		}
		return nil
	})
}

// ReadCaptionEval reads a BLIP evaluation file (coco_karpathy_val.json,
// coco_karpathy_test.json, flickr30k_val/test.json): every entry needs
// "image" and a non-empty list of string captions. ImageID is "image_id"
// when present, else the image path (see CocoImageID for COCO's numeric
// ids). opt.MaxWords applies pre_caption to the captions.
func ReadCaptionEval(file, root string, opt JSONOptions) ([]Entry, error) {
	return readEntries(file, root, opt, func(obj map[string]json.RawMessage) error {
		c, ok := obj["caption"]
		if !ok || isNull(c) {
			return fmt.Errorf(`missing "caption"`)
		}
		if firstByte(c) != '[' {
			return fmt.Errorf(`"caption" is not a list (an evaluation entry lists all captions of its image)`)
		}
		return nil
	})
}

// Retrieval is the image-text retrieval evaluation view of an evaluation
// file, as BLIP's coco_karpathy_retrieval_eval / flickr30k_retrieval_eval
// build it: images in file order (the embedded Grouped yields one sample per
// image), every caption of every image in Texts in order, and the index
// maps between them.
type Retrieval struct {
	Grouped
	// Texts are all captions, image by image, cleaned with pre_caption.
	Texts []string
	// Txt2Img[t] is the image index of text t.
	Txt2Img []int
	// Img2Txt[i] lists the text indices of image i, ascending.
	Img2Txt [][]int
}

// NewRetrieval builds the retrieval view of entries (their captions used as
// they are). Every entry needs at least one caption.
func NewRetrieval(entries []Entry) (*Retrieval, error) {
	r := &Retrieval{Grouped: Grouped{Entries: entries}, Img2Txt: make([][]int, len(entries))}
	for i, e := range entries {
		if len(e.Captions) == 0 {
			return nil, fmt.Errorf("dataset: retrieval: image %d (%s) has no captions", i, e.Image)
		}
		r.Img2Txt[i] = make([]int, 0, len(e.Captions))
		for _, c := range e.Captions {
			r.Img2Txt[i] = append(r.Img2Txt[i], len(r.Texts))
			r.Txt2Img = append(r.Txt2Img, i)
			r.Texts = append(r.Texts, c)
		}
	}
	return r, nil
}

// ReadRetrievalEval reads an evaluation file (ReadCaptionEval) and builds its
// retrieval view with pre_caption(caption, maxWords) applied to the texts
// (BLIP uses RetrievalMaxWords; maxWords <= 0 only cleans).
func ReadRetrievalEval(file, root string, maxWords int) (*Retrieval, error) {
	opt := JSONOptions{MaxWords: maxWords}
	if maxWords <= 0 {
		opt.MaxWords = 1 << 30
	}
	es, err := ReadCaptionEval(file, root, opt)
	if err != nil {
		return nil, err
	}
	r, err := NewRetrieval(es)
	if err != nil {
		return nil, fmt.Errorf("dataset: %s: %v", file, err)
	}
	return r, nil
}

// CocoImageID is the COCO image id BLIP's coco_karpathy_caption_eval
// derives from an image path: the file name with the characters '.', 'j',
// 'p', 'g' stripped from both ends (Python's str.strip(".jpg")), then the
// part after the last '_' as an integer.
// "val2014/COCO_val2014_000000391895.jpg" gives 391895.
func CocoImageID(image string) (int64, error) {
	name := image
	if i := strings.LastIndexByte(image, '/'); i >= 0 {
		name = image[i+1:]
	}
	name = strings.Trim(name, ".jpg")
	if i := strings.LastIndexByte(name, '_'); i >= 0 {
		name = name[i+1:]
	}
	id, err := strconv.ParseInt(name, 10, 64)
	if err != nil || id < 0 {
		return 0, fmt.Errorf("dataset: no COCO image id in image path %q", image)
	}
	return id, nil
}

// ReadCocoCaptionEval reads coco_karpathy_val.json / coco_karpathy_test.json
// (ReadCaptionEval) and sets each entry's ImageID to its COCO image id
// (CocoImageID) in decimal, as BLIP's caption evaluation reports them.
func ReadCocoCaptionEval(file, root string, opt JSONOptions) ([]Entry, error) {
	es, err := ReadCaptionEval(file, root, opt)
	if err != nil {
		return nil, err
	}
	for i := range es {
		id, err := CocoImageID(es[i].Image)
		if err != nil {
			return nil, fmt.Errorf(`dataset: %s: entry %d: "image" %q has no COCO image id`, file, es[i].Index, es[i].Image)
		}
		es[i].ImageID = strconv.FormatInt(id, 10)
	}
	return es, nil
}

// CaptionReferences maps each entry's ImageID to its captions (entries with
// the same ImageID are merged in order): the references of a caption
// evaluation, to be PTB-tokenised and scored by package metrics.
func CaptionReferences(entries []Entry) map[string][]string {
	refs := make(map[string][]string, len(entries))
	for _, e := range entries {
		refs[e.ImageID] = append(refs[e.ImageID], e.Captions...)
	}
	return refs
}

// ReadCocoCaptionGT reads a COCO-format caption annotation file (captions_
// val2014.json, BLIP's coco_karpathy_{val,test}_gt.json):
// {"annotations": [{"image_id": int, "caption": string, ...}], ...}, and
// returns the captions by image id (decimal), in file order.
func ReadCocoCaptionGT(file string) (map[string][]string, error) {
	obj, err := readObject(file, "COCO annotation object")
	if err != nil {
		return nil, err
	}
	anns, err := listField(file, obj, "annotations")
	if err != nil {
		return nil, err
	}
	refs := map[string][]string{}
	for i, r := range anns {
		var a struct {
			ImageID *json.Number `json:"image_id"`
			Caption *string      `json:"caption"`
		}
		if err := json.Unmarshal(r, &a); err != nil {
			return nil, fmt.Errorf("dataset: %s: annotation %d: %v", file, i, err)
		}
		if a.ImageID == nil {
			return nil, fmt.Errorf(`dataset: %s: annotation %d: missing "image_id"`, file, i)
		}
		if a.Caption == nil {
			return nil, fmt.Errorf(`dataset: %s: annotation %d: missing "caption"`, file, i)
		}
		id := a.ImageID.String()
		refs[id] = append(refs[id], *a.Caption)
	}
	return refs, nil
}
