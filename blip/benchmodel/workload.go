// Package benchmodel times BLIP's model-level workloads (captioning, ViT
// forward, ITM scoring, a caption training step, the pretraining step)
// with random weights on a blip backend and, in the same run, with a
// PyTorch reference script kept here (torch_model.py): `blip bench model`.
// The workloads and their sizes are those of hf_anchor.py, the
// transformers timings blip is compared against on GPUs.
package benchmodel

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"blip/blip"
)

// Workload is one timed job. Batch counts images (pairs for itm, samples
// for the training steps); Model names the entry of Models it runs on.
type Workload struct {
	Name    string `json:"name"`
	Kind    string `json:"kind"` // generate, vision, itm, train, pretrain
	Model   string `json:"model"`
	Batch   int    `json:"batch"`
	Beams   int    `json:"beams,omitempty"`
	Tokens  int    `json:"tokens,omitempty"`  // forced new tokens
	TextLen int    `json:"textlen,omitempty"` // text tokens of itm and training
	Queue   int    `json:"queue,omitempty"`   // ITC queue of pretraining
}

// Names lists the workloads in run order.
var Names = []string{"caption1", "beam3", "caption-batch", "vit", "itm", "itm-rerank", "train-caption", "pretrain"}

// Anchor returns the workloads at hf_anchor.py's sizes: captions of
// exactly 20 new tokens (batch 1 greedy and beam 3, batch 32 greedy), a
// ViT forward of 32 images, ITM over 128 (image, text) pairs of 30
// tokens, a captioning LM training step of 32 samples; and two that
// hf_anchor.py lacks: ITM re-ranking as retrieval runs it (one image's
// top 128 texts, Flickr's k, the image's ViT states already computed at
// the ITC stage, as BLIP's evaluation caches them) and BLIP's pretraining
// step (ITC + ITM + LM, queue 57600) at batch 32 (transformers has no
// pretraining model).
func Anchor() []Workload {
	return []Workload{
		{Name: "caption1", Kind: "generate", Model: "caption", Batch: 1, Beams: 1, Tokens: 20},
		{Name: "beam3", Kind: "generate", Model: "caption", Batch: 1, Beams: 3, Tokens: 20},
		{Name: "caption-batch", Kind: "generate", Model: "caption", Batch: 32, Beams: 1, Tokens: 20},
		{Name: "vit", Kind: "vision", Model: "caption", Batch: 32},
		{Name: "itm", Kind: "itm", Model: "itm", Batch: 128, TextLen: 30},
		{Name: "itm-rerank", Kind: "rerank", Model: "itm", Batch: 128, TextLen: 30},
		{Name: "train-caption", Kind: "train", Model: "train", Batch: 32, TextLen: 30},
		{Name: "pretrain", Kind: "pretrain", Model: "pretrain", Batch: 32, TextLen: 30, Queue: 57600},
	}
}

// CPUBaseBatches are the default batches of base-size workloads on a CPU
// device: the anchors' 32 and 128 would take most of an hour on a few
// cores, and per-sample throughput barely changes with the batch there.
var CPUBaseBatches = map[string]int{"caption-batch": 2, "vit": 2, "itm": 4, "itm-rerank": 8, "train-caption": 2, "pretrain": 2}

// Select keeps the workloads named in only (comma-separated; "" keeps
// all) and applies batch overrides: "N" for every batched workload, or
// "name=N,...". caption1 and beam3 are batch 1 by definition.
func Select(ws []Workload, only, batch string) ([]Workload, error) {
	if only != "" {
		keep := map[string]bool{}
		for _, n := range strings.Split(only, ",") {
			n = strings.TrimSpace(n)
			if !slices.Contains(Names, n) {
				return nil, fmt.Errorf("--only: unknown workload %q (have %s)", n, strings.Join(Names, ", "))
			}
			keep[n] = true
		}
		ws = slices.DeleteFunc(slices.Clone(ws), func(w Workload) bool { return !keep[w.Name] })
	}
	if batch == "" {
		return ws, nil
	}
	set := map[string]int{}
	if n, err := strconv.Atoi(strings.TrimSpace(batch)); err == nil {
		for _, w := range ws {
			if w.Name != "caption1" && w.Name != "beam3" {
				set[w.Name] = n
			}
		}
	} else {
		for _, f := range strings.Split(batch, ",") {
			name, v, ok := strings.Cut(strings.TrimSpace(f), "=")
			n, err := strconv.Atoi(v)
			if !ok || err != nil {
				return nil, fmt.Errorf("--batch %q: want N or name=N,... (names: %s)", batch, strings.Join(Names[2:], ", "))
			}
			if name == "caption1" || name == "beam3" {
				return nil, fmt.Errorf("--batch: %s is batch 1 by definition", name)
			}
			if !slices.Contains(Names, name) {
				return nil, fmt.Errorf("--batch: unknown workload %q (have %s)", name, strings.Join(Names[2:], ", "))
			}
			set[name] = n
		}
	}
	out := slices.Clone(ws)
	for i := range out {
		if n, ok := set[out[i].Name]; ok {
			if n < 1 || out[i].Kind == "pretrain" && n < 2 {
				return nil, fmt.Errorf("--batch: %s=%d (want >= 1; pretrain >= 2, ITM draws negatives from the batch)", out[i].Name, n)
			}
			out[i].Batch = n
		}
	}
	return out, nil
}

// Model is one model the workloads run on: its config.json (what blip
// loads and transformers builds) and the parsed config.
type Model struct {
	JSON   []byte
	Config *blip.BlipConfig
}

// Models derives the four models of the workloads from a captioning
// config.json (the inference size: 384px at base) and a pretraining one
// (the training size: 224px at base): "caption" (captioning, ViT
// forward), "itm" (the same sizes as a BlipForImageTextRetrieval),
// "train" (the captioner at the pretraining image size) and "pretrain".
func Models(caption, pretrain []byte) (map[string]Model, error) {
	pc, err := blip.ParseConfig(pretrain, "pretraining config")
	if err != nil {
		return nil, err
	}
	out := map[string]Model{"pretrain": {pretrain, pc}}
	for name, edit := range map[string]func(map[string]any){
		"caption": func(map[string]any) {},
		"itm":     func(o map[string]any) { o["architectures"] = []string{blip.KindRetrieval.String()} },
		"train": func(o map[string]any) {
			v, _ := o["vision_config"].(map[string]any)
			if v == nil {
				v = map[string]any{}
				o["vision_config"] = v
			}
			v["image_size"] = pc.VisionConfig.ImageSize
		},
	} {
		var o map[string]any
		if err := json.Unmarshal(caption, &o); err != nil {
			return nil, fmt.Errorf("captioning config: %w", err)
		}
		t, _ := o["text_config"].(map[string]any)
		if t == nil {
			t = map[string]any{}
			o["text_config"] = t
		}
		t["is_decoder"] = true // cross-attention layers: captioning and ITM need them
		edit(o)
		js, err := json.Marshal(o)
		if err != nil {
			return nil, err
		}
		c, err := blip.ParseConfig(js, name+" config")
		if err != nil {
			return nil, err
		}
		out[name] = Model{js, c}
	}
	return out, nil
}

// Describe says what a workload does, for the table.
func Describe(w Workload, m Model) string {
	px := fmt.Sprintf("%dpx", m.Config.VisionConfig.ImageSize)
	switch w.Kind {
	case "generate":
		search := "greedy"
		if w.Beams > 1 {
			search = fmt.Sprintf("beam %d", w.Beams)
		}
		return fmt.Sprintf("caption, batch %d, %s, %d new tokens, %s", w.Batch, search, w.Tokens, px)
	case "vision":
		return fmt.Sprintf("ViT forward, batch %d, %s", w.Batch, px)
	case "itm":
		return fmt.Sprintf("ITM, %d pairs (ViT per pair), %d tokens, %s", w.Batch, w.TextLen, px)
	case "rerank":
		return fmt.Sprintf("ITM re-rank: 1 image's top %d texts (its ViT states cached), %d tokens, %s", w.Batch, w.TextLen, px)
	case "train":
		return fmt.Sprintf("caption LM step, batch %d, %s, %d tokens", w.Batch, px, w.TextLen)
	case "pretrain":
		return fmt.Sprintf("ITC+ITM+LM step, batch %d, %s, queue %d", w.Batch, px, w.Queue)
	}
	return w.Kind
}

// Unit is what a workload's throughput counts.
func Unit(w Workload) string {
	switch w.Kind {
	case "itm", "rerank":
		return "pairs"
	case "train", "pretrain":
		return "samples"
	}
	return "images"
}
