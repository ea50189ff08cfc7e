package shapes

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// CaptionEntry is one image of a caption file, as BLIP's coco_karpathy
// val/test annotations: every paraphrase in Caption.
type CaptionEntry struct {
	Image   string   `json:"image"`
	Caption []string `json:"caption"`
	ImageID int      `json:"image_id"`
}

// FlatCaptionEntry is one caption of one image, as BLIP's
// coco_karpathy_train annotations (one entry per caption).
type FlatCaptionEntry struct {
	Image   string `json:"image"`
	Caption string `json:"caption"`
	ImageID int    `json:"image_id"`
}

// VQAEntry is one question of a VQA file, as BLIP's vqa datasets read it;
// Answer holds the answer ten times, as VQA v2 has ten human answers.
type VQAEntry struct {
	QuestionID   int          `json:"question_id"`
	Question     string       `json:"question"`
	Answer       []string     `json:"answer"`
	Image        string       `json:"image"`
	ImageID      int          `json:"image_id"`
	Dataset      string       `json:"dataset"`
	QuestionType QuestionType `json:"question_type"`
}

// VQAAnswers is the number of (identical) answers per question.
const VQAAnswers = 10

// DatasetName is the "dataset" field of VQA entries: "vqa", so that BLIP's
// VQA loaders (and blip finetune --task vqa) resolve the images against
// the VQA image root, which they only do for "vqa" and "vg".
const DatasetName = "vqa"

// CaptionEntries lists scenes with all their paraphrases, one entry each.
func CaptionEntries(scenes []Scene) []CaptionEntry {
	out := make([]CaptionEntry, 0, len(scenes))
	for _, s := range scenes {
		out = append(out, CaptionEntry{Image: s.Image, Caption: append([]string{}, s.Captions...), ImageID: s.ImageID})
	}
	return out
}

// FlatCaptionEntries lists every caption as its own entry, image by image.
func FlatCaptionEntries(scenes []Scene) []FlatCaptionEntry {
	out := []FlatCaptionEntry{}
	for _, s := range scenes {
		for _, c := range s.Captions {
			out = append(out, FlatCaptionEntry{Image: s.Image, Caption: c, ImageID: s.ImageID})
		}
	}
	return out
}

// VQAEntries lists the questions of scenes in BLIP's VQA format.
func VQAEntries(scenes []Scene) []VQAEntry {
	out := []VQAEntry{}
	for _, s := range scenes {
		for _, q := range s.Questions {
			ans := make([]string, VQAAnswers)
			for i := range ans {
				ans[i] = q.Answer
			}
			out = append(out, VQAEntry{
				QuestionID: q.QuestionID, Question: q.Question, Answer: ans,
				Image: s.Image, ImageID: s.ImageID, Dataset: DatasetName, QuestionType: q.Type,
			})
		}
	}
	return out
}

// File names inside a dataset folder.
const (
	SettingsFile   = "settings.json"
	VocabFile      = "vocab.txt"
	AnswerListFile = "answer_list.json"
)

// CaptionFile names a split's caption file, e.g. train.json.
func CaptionFile(split string) string { return split + ".json" }

// VQAFile names a split's question file, e.g. vqa_train.json.
func VQAFile(split string) string { return "vqa_" + split + ".json" }

// AttributesFile names a split's ground-truth file, e.g.
// attributes_train.json.
func AttributesFile(split string) string { return "attributes_" + split + ".json" }

// LoadConfig reads the settings a dataset folder was generated with.
func LoadConfig(dir string) (Config, error) {
	var c Config
	if err := readJSON(filepath.Join(dir, SettingsFile), &c); err != nil {
		return Config{}, err
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", filepath.Join(dir, SettingsFile), err)
	}
	return c, nil
}

// LoadScenes reads the ground truth of one split, questions included.
func LoadScenes(dir, split string) ([]Scene, error) {
	var scenes []Scene
	if err := readJSON(filepath.Join(dir, AttributesFile(split)), &scenes); err != nil {
		return nil, err
	}
	var vqa []VQAEntry
	if err := readJSON(filepath.Join(dir, VQAFile(split)), &vqa); err != nil {
		return nil, err
	}
	byID := map[int]int{}
	for i, s := range scenes {
		byID[s.ImageID] = i
	}
	for _, e := range vqa {
		i, ok := byID[e.ImageID]
		if !ok || len(e.Answer) == 0 {
			return nil, fmt.Errorf("shapes: %s: question %d: unknown image %d or no answer", VQAFile(split), e.QuestionID, e.ImageID)
		}
		scenes[i].Questions = append(scenes[i].Questions, Question{
			QuestionID: e.QuestionID, ImageID: e.ImageID, Question: e.Question, Answer: e.Answer[0], Type: e.QuestionType,
		})
	}
	return scenes, nil
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("shapes: %w", err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("shapes: %s: %v", path, err)
	}
	return nil
}
