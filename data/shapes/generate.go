package shapes

import (
	"fmt"
	"slices"
)

// Split names, in file order.
const (
	SplitTrain = "train"
	SplitVal   = "val"
	SplitTest  = "test"
)

// Splits lists the split names.
func Splits() []string { return []string{SplitTrain, SplitVal, SplitTest} }

// Dataset is a generated world: settings and every scene, with its
// captions and questions, in image-id order (train, then val, then test).
// Pixels are drawn on demand by Render or Write.
type Dataset struct {
	Config Config
	Scenes []Scene
}

// Generate draws a dataset. Scene i depends only on the settings and i, so
// the same settings give the same scenes, and the same bytes once written.
func Generate(cfg Config) (*Dataset, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Shapes, cfg.Colors = slices.Clone(cfg.shapes()), slices.Clone(cfg.colors())
	train, val, _ := cfg.splitSizes()
	d := &Dataset{Config: cfg, Scenes: make([]Scene, cfg.N)}
	for i := range d.Scenes {
		split := SplitTrain
		switch {
		case i >= train+val:
			split = SplitTest
		case i >= train:
			split = SplitVal
		}
		s, err := generateScene(&d.Config, i, split)
		if err != nil {
			return nil, err
		}
		d.Scenes[i] = s
	}
	return d, nil
}

// generateScene draws scene number index (image id index+1).
func generateScene(c *Config, index int, split string) (Scene, error) {
	id := index + 1
	r := newRNG(c.Seed, index, streamLayout)
	objs := layout(c, r)
	s := Scene{
		ImageID:     id,
		Image:       fmt.Sprintf("images/%s/%06d.png", split, id),
		Split:       split,
		Width:       c.Size,
		Height:      c.Size,
		Background:  background(r),
		TextureSeed: newRNG(c.Seed, index, streamTexture).uint64(),
		Noise:       c.Noise,
		Objects:     objs,
		Relations:   chain(objs),
	}
	caps, err := sceneCaptions(&s, c.Captions, newRNG(c.Seed, index, streamCaption))
	if err != nil {
		return Scene{}, err
	}
	s.Captions = caps
	s.Questions = sceneQuestions(c, &s, newRNG(c.Seed, index, streamQuestion))
	return s, nil
}

// Split returns the scenes of one split ("train", "val" or "test").
func (d *Dataset) Split(name string) []Scene {
	var out []Scene
	for i := range d.Scenes {
		if d.Scenes[i].Split == name {
			out = append(out, d.Scenes[i])
		}
	}
	return out
}

// Questions returns the questions of a list of scenes, in order.
func Questions(scenes []Scene) []Question {
	var out []Question
	for i := range scenes {
		out = append(out, scenes[i].Questions...)
	}
	return out
}
