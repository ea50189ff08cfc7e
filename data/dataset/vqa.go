package dataset

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"

	"blip/data/tokenizer"
)

// VQAQuestion is one visual question with its image and, when known, its
// answers.
type VQAQuestion struct {
	// QuestionID is "question_id" as text (numbers kept verbatim); empty
	// when a BLIP JSON entry has none.
	QuestionID string
	// Question is the question text (cleaned with pre_question when
	// VQAOptions.MaxQuestionWords > 0).
	Question string
	// Answers are the answers in file order: the ten human answers of VQA
	// v2, BLIP's "answer" list, or the one answer of a Visual Genome entry.
	// Empty for test questions.
	Answers []string
	// MultipleChoiceAnswer, QuestionType and AnswerType are the official
	// annotation fields (empty elsewhere).
	MultipleChoiceAnswer, QuestionType, AnswerType string
	// Dataset is "vqa" or "vg" (BLIP's "dataset" field; "vqa" for the
	// official files).
	Dataset string
	// Image is the image path relative to its root, Path the file on disk.
	Image, Path string
	// ImageID is "image_id" as text for official files, else Image.
	ImageID string
	// Index is the question's position in its file.
	Index int
}

// AnswerWeights returns the distinct answers and their training weights as
// BLIP's vqa_dataset does: for VQA entries each occurrence adds
// 1/len(answers) (answers in order of first appearance); a Visual Genome
// entry's answer weighs 0.2.
func (q VQAQuestion) AnswerWeights() ([]string, []float64) {
	if q.Dataset == "vg" {
		ws := make([]float64, len(q.Answers))
		for i := range ws {
			ws[i] = 0.2
		}
		return append([]string(nil), q.Answers...), ws
	}
	var answers []string
	var weights []float64
	pos := map[string]int{}
	for _, a := range q.Answers {
		w := 1 / float64(len(q.Answers))
		if i, ok := pos[a]; ok {
			weights[i] += w
			continue
		}
		pos[a] = len(answers)
		answers = append(answers, a)
		weights = append(weights, w)
	}
	return answers, weights
}

// VQASet is a list of questions; as an Indexed dataset it yields one sample
// per question: the image (Key, Path, Ext, ImageID), the question in Caption
// and the answers in Captions. Questions[s.Index] has every field.
type VQASet struct {
	Questions []VQAQuestion
}

// Len returns the number of questions.
func (v *VQASet) Len() int { return len(v.Questions) }

// At returns question i as a sample.
func (v *VQASet) At(i int) (Sample, error) {
	if i < 0 || i >= len(v.Questions) {
		return Sample{}, fmt.Errorf("dataset: question index %d out of range [0,%d)", i, len(v.Questions))
	}
	q := v.Questions[i]
	return Sample{
		Key:      q.Image,
		Path:     q.Path,
		Ext:      extOf(q.Path),
		Caption:  q.Question,
		Captions: append([]string(nil), q.Answers...),
		ImageID:  q.ImageID,
		Index:    i,
	}, nil
}

// Open iterates the questions in order.
func (v *VQASet) Open() (Source, error) { return &sliceSource{d: v}, nil }

// VQAOptions configures the VQA readers.
type VQAOptions struct {
	// MaxQuestionWords, when > 0, applies BLIP's pre_question(question,
	// MaxQuestionWords) (BLIP's default is 50).
	MaxQuestionWords int
	// Split overrides the image split of official files (the "COCO_<split>_"
	// file name prefix); by default it is the questions file's
	// "data_subtype", with test-dev2015 mapped to test2015.
	Split string
}

// VQARoots are the image roots of BLIP's VQA JSON, by "dataset".
type VQARoots struct {
	// VQA is the COCO image root of "vqa" entries (BLIP's vqa_root).
	VQA string
	// VG is the Visual Genome image root of "vg" entries (BLIP's vg_root).
	VG string
}

func joinRoot(root, image string) string {
	if filepath.IsAbs(image) || root == "" {
		return image
	}
	return filepath.Join(root, image)
}

// rawText decodes a JSON string or number into text (numbers verbatim).
func rawText(r json.RawMessage) (string, bool) {
	var s string
	if json.Unmarshal(r, &s) == nil {
		return s, true
	}
	var n json.Number
	d := json.NewDecoder(bytes.NewReader(r))
	d.UseNumber()
	if d.Decode(&n) == nil {
		return n.String(), true
	}
	return "", false
}

// stringField decodes obj[name] as a string; missing is ("", false, nil).
func stringField(obj map[string]json.RawMessage, name string) (string, bool, error) {
	r, ok := obj[name]
	if !ok || isNull(r) {
		return "", false, nil
	}
	var s string
	if err := json.Unmarshal(r, &s); err != nil {
		return "", true, fmt.Errorf("%q is not a string", name)
	}
	return s, true, nil
}

// answersField decodes a string or a list of strings.
func answersField(r json.RawMessage, name string) ([]string, error) {
	var s string
	if json.Unmarshal(r, &s) == nil {
		return []string{s}, nil
	}
	var list []json.RawMessage
	if json.Unmarshal(r, &list) != nil {
		return nil, fmt.Errorf("%q is neither a string nor a list of strings", name)
	}
	out := make([]string, len(list))
	for j, item := range list {
		if err := json.Unmarshal(item, &out[j]); err != nil || isNull(item) {
			return nil, fmt.Errorf("%q[%d] is not a string", name, j)
		}
	}
	return out, nil
}

// ReadVQAJSON reads BLIP's VQA annotation files (vqa_train.json,
// vqa_val.json, vqa_test.json, vg_qa.json): a list of {"question_id",
// "question", "answer": [string...] (or one string for Visual Genome;
// absent in test files), "image", "dataset": "vqa"|"vg"}. Images resolve
// against roots.VQA or roots.VG by "dataset" (absent means "vqa").
func ReadVQAJSON(file string, roots VQARoots, opt VQAOptions) (*VQASet, error) {
	raw, err := readRawList(file)
	if err != nil {
		return nil, err
	}
	set := &VQASet{Questions: make([]VQAQuestion, 0, len(raw))}
	for i, r := range raw {
		q, err := parseBLIPQuestion(r, roots, opt)
		if err != nil {
			return nil, fmt.Errorf("dataset: %s: entry %d: %v", file, i, err)
		}
		q.Index = i
		set.Questions = append(set.Questions, q)
	}
	return set, nil
}

func parseBLIPQuestion(r json.RawMessage, roots VQARoots, opt VQAOptions) (VQAQuestion, error) {
	var q VQAQuestion
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(r, &obj); err != nil || obj == nil {
		return q, fmt.Errorf("not a JSON object")
	}
	var ok bool
	var err error
	if q.Question, ok, err = stringField(obj, "question"); err != nil {
		return q, err
	} else if !ok {
		return q, fmt.Errorf(`missing "question"`)
	}
	if opt.MaxQuestionWords > 0 {
		q.Question = tokenizer.PreQuestion(q.Question, opt.MaxQuestionWords)
	}
	if q.Image, ok, err = stringField(obj, "image"); err != nil {
		return q, err
	} else if !ok || q.Image == "" {
		return q, fmt.Errorf(`missing or empty "image"`)
	}
	q.ImageID = q.Image
	if id, ok := obj["question_id"]; ok && !isNull(id) {
		if q.QuestionID, ok = rawText(id); !ok {
			return q, fmt.Errorf(`"question_id" is neither a string nor a number`)
		}
	}
	if a, ok := obj["answer"]; ok && !isNull(a) {
		if q.Answers, err = answersField(a, "answer"); err != nil {
			return q, err
		}
	}
	if q.Dataset, ok, err = stringField(obj, "dataset"); err != nil {
		return q, err
	} else if !ok {
		q.Dataset = "vqa"
	}
	switch q.Dataset {
	case "vqa":
		q.Path = joinRoot(roots.VQA, q.Image)
	case "vg":
		if roots.VG == "" && !filepath.IsAbs(q.Image) {
			return q, fmt.Errorf(`"dataset" is "vg" but no Visual Genome image root is set`)
		}
		q.Path = joinRoot(roots.VG, q.Image)
	default:
		return q, fmt.Errorf(`unknown "dataset" %q (want "vqa" or "vg")`, q.Dataset)
	}
	return q, nil
}

// ReadVQAOfficial reads the official VQA v2 files: questions
// (OpenEnded_mscoco_<split>_questions.json: {"data_subtype", "questions":
// [{"image_id", "question", "question_id"}]}) and, unless annotationsFile
// is empty (test splits), annotations (mscoco_<split>_annotations.json:
// {"annotations": [{"question_id", "image_id", "answers": [{"answer", ...}],
// "multiple_choice_answer", "question_type", "answer_type"}]}), joined by
// question_id in question order. Image paths are
// root/COCO_<split>_<image_id as %012d>.jpg.
func ReadVQAOfficial(questionsFile, annotationsFile, root string, opt VQAOptions) (*VQASet, error) {
	obj, err := readObject(questionsFile, "VQA questions object")
	if err != nil {
		return nil, err
	}
	questions, err := listField(questionsFile, obj, "questions")
	if err != nil {
		return nil, err
	}
	subtype, _, err := stringField(obj, "data_subtype")
	if err != nil {
		return nil, fmt.Errorf("dataset: %s: %v", questionsFile, err)
	}
	split := opt.Split
	if split == "" {
		if subtype == "" {
			return nil, fmt.Errorf(`dataset: %s: missing "data_subtype" (set VQAOptions.Split)`, questionsFile)
		}
		split = subtype
		if split == "test-dev2015" {
			split = "test2015"
		}
	}
	var anns map[string]officialAnnotation
	if annotationsFile != "" {
		if anns, err = readOfficialAnnotations(annotationsFile); err != nil {
			return nil, err
		}
	}
	set := &VQASet{Questions: make([]VQAQuestion, 0, len(questions))}
	seen := map[string]int{}
	for i, r := range questions {
		q, imageID, err := parseOfficialQuestion(r, opt)
		if err != nil {
			return nil, fmt.Errorf("dataset: %s: question %d: %v", questionsFile, i, err)
		}
		if j, dup := seen[q.QuestionID]; dup {
			return nil, fmt.Errorf("dataset: %s: question %d: question_id %s repeats question %d", questionsFile, i, q.QuestionID, j)
		}
		seen[q.QuestionID] = i
		q.Image = fmt.Sprintf("COCO_%s_%012d.jpg", split, imageID)
		q.Path = joinRoot(root, q.Image)
		q.Index = i
		if anns != nil {
			a, ok := anns[q.QuestionID]
			if !ok {
				return nil, fmt.Errorf("dataset: %s: question %d: question_id %s has no annotation in %s", questionsFile, i, q.QuestionID, annotationsFile)
			}
			if a.imageID != q.ImageID {
				return nil, fmt.Errorf("dataset: %s: annotation %d: image_id %s, but question %d (%s) has image_id %s",
					annotationsFile, a.index, a.imageID, i, questionsFile, q.ImageID)
			}
			q.Answers = a.answers
			q.MultipleChoiceAnswer, q.QuestionType, q.AnswerType = a.mc, a.qtype, a.atype
		}
		set.Questions = append(set.Questions, q)
	}
	if len(anns) > len(seen) {
		extra := -1
		var extraID string
		for id, a := range anns {
			if _, ok := seen[id]; !ok && (extra < 0 || a.index < extra) {
				extra, extraID = a.index, id
			}
		}
		return nil, fmt.Errorf("dataset: %s: annotation %d: question_id %s is not in %s", annotationsFile, extra, extraID, questionsFile)
	}
	return set, nil
}

func parseOfficialQuestion(r json.RawMessage, opt VQAOptions) (VQAQuestion, int64, error) {
	q := VQAQuestion{Dataset: "vqa"}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(r, &obj); err != nil || obj == nil {
		return q, 0, fmt.Errorf("not a JSON object")
	}
	var ok bool
	var err error
	if q.Question, ok, err = stringField(obj, "question"); err != nil {
		return q, 0, err
	} else if !ok {
		return q, 0, fmt.Errorf(`missing "question"`)
	}
	if opt.MaxQuestionWords > 0 {
		q.Question = tokenizer.PreQuestion(q.Question, opt.MaxQuestionWords)
	}
	if q.QuestionID, err = intField(obj, "question_id"); err != nil {
		return q, 0, err
	}
	if q.ImageID, err = intField(obj, "image_id"); err != nil {
		return q, 0, err
	}
	imageID, _ := strconv.ParseInt(q.ImageID, 10, 64)
	return q, imageID, nil
}

// intField decodes a required non-negative integer field, returned in
// decimal.
func intField(obj map[string]json.RawMessage, name string) (string, error) {
	r, ok := obj[name]
	if !ok || isNull(r) {
		return "", fmt.Errorf("missing %q", name)
	}
	var n int64
	if err := json.Unmarshal(r, &n); err != nil || n < 0 {
		return "", fmt.Errorf("%q is not a non-negative integer", name)
	}
	return strconv.FormatInt(n, 10), nil
}

type officialAnnotation struct {
	index            int
	imageID          string
	answers          []string
	mc, qtype, atype string
}

func readOfficialAnnotations(file string) (map[string]officialAnnotation, error) {
	obj, err := readObject(file, "VQA annotations object")
	if err != nil {
		return nil, err
	}
	annotations, err := listField(file, obj, "annotations")
	if err != nil {
		return nil, err
	}
	out := make(map[string]officialAnnotation, len(annotations))
	for i, r := range annotations {
		a, qid, err := parseOfficialAnnotation(r)
		if err != nil {
			return nil, fmt.Errorf("dataset: %s: annotation %d: %v", file, i, err)
		}
		if prev, dup := out[qid]; dup {
			return nil, fmt.Errorf("dataset: %s: annotation %d: question_id %s repeats annotation %d", file, i, qid, prev.index)
		}
		a.index = i
		out[qid] = a
	}
	return out, nil
}

func parseOfficialAnnotation(r json.RawMessage) (officialAnnotation, string, error) {
	var a officialAnnotation
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(r, &obj); err != nil || obj == nil {
		return a, "", fmt.Errorf("not a JSON object")
	}
	qid, err := intField(obj, "question_id")
	if err != nil {
		return a, "", err
	}
	if a.imageID, err = intField(obj, "image_id"); err != nil {
		return a, "", err
	}
	ra, ok := obj["answers"]
	if !ok || isNull(ra) {
		return a, "", fmt.Errorf(`missing "answers"`)
	}
	var list []json.RawMessage
	if json.Unmarshal(ra, &list) != nil {
		return a, "", fmt.Errorf(`"answers" is not a list`)
	}
	for j, item := range list {
		var ans map[string]json.RawMessage
		if json.Unmarshal(item, &ans) != nil || ans == nil {
			return a, "", fmt.Errorf(`"answers"[%d] is not a JSON object`, j)
		}
		s, ok, err := stringField(ans, "answer")
		if err != nil || !ok {
			return a, "", fmt.Errorf(`"answers"[%d]: missing or non-string "answer"`, j)
		}
		a.answers = append(a.answers, s)
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{{"multiple_choice_answer", &a.mc}, {"question_type", &a.qtype}, {"answer_type", &a.atype}} {
		if *f.dst, _, err = stringField(obj, f.name); err != nil {
			return a, "", err
		}
	}
	return a, qid, nil
}

// ReadAnswerList reads BLIP's answer_list.json, the candidate answers of
// rank-based VQA inference: a JSON list of strings.
func ReadAnswerList(file string) ([]string, error) {
	raw, err := readRawList(file)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(raw))
	for i, r := range raw {
		if err := json.Unmarshal(r, &out[i]); err != nil || isNull(r) {
			return nil, fmt.Errorf("dataset: %s: entry %d: not a string", file, i)
		}
	}
	return out, nil
}
