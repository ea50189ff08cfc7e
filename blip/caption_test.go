package blip

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"blip/blip/generate"
)

// goldenCaptions is golden.json's "captioning" section: the token ids
// transformers' generate gave for the four golden images.
type goldenCaptions struct {
	Greedy, Beam3, GreedyLen20 struct {
		IDs [][]int32 `json:"ids"`
	}
	PromptGreedy struct {
		PromptIDs [][]int32 `json:"prompt_ids"`
		IDs       [][]int32 `json:"ids"`
	} `json:"prompt_greedy"`
	Margins [][]float64 `json:"greedy_step_margins"`
}

func readGoldenCaptions(t *testing.T) goldenCaptions {
	raw, err := os.ReadFile(filepath.Join(tinyDir, "golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Captioning struct {
			Greedy       json.RawMessage `json:"greedy"`
			Beam3        json.RawMessage `json:"beam3"`
			GreedyLen20  json.RawMessage `json:"greedy_len20"`
			PromptGreedy json.RawMessage `json:"prompt_greedy"`
			Margins      json.RawMessage `json:"greedy_step_margins"`
		} `json:"captioning"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var g goldenCaptions
	c := doc.Captioning
	for _, x := range []struct {
		raw json.RawMessage
		dst any
	}{{c.Greedy, &g.Greedy}, {c.Beam3, &g.Beam3}, {c.GreedyLen20, &g.GreedyLen20}, {c.PromptGreedy, &g.PromptGreedy}, {c.Margins, &g.Margins}} {
		if err := json.Unmarshal(x.raw, x.dst); err != nil {
			t.Fatal(err)
		}
	}
	return g
}

// Captions must be token-identical to transformers' generate (greedy, beam 3
// with min length, 20 forced new tokens, and a prompt) on every backend. The
// golden greedy margins are all above 1e-2, so fp32 rounding cannot flip a
// choice.
func TestGenerateMatchesTransformers(t *testing.T) {
	gold := openGolden(t)
	pixels := gold.f32("pixel_values")
	want := readGoldenCaptions(t)
	for _, bc := range backends {
		t.Run(bc.name, func(t *testing.T) {
			be := bc.open(t)
			m := loadTiny(t, "tiny-captioning", be)
			for _, c := range want.cases() {
				cfg := m.CaptionConfig()
				c.cfg(&cfg)
				out, err := m.GenerateCaptions(be, pixels, 4, c.prompts, cfg)
				if err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
				for i := range c.want {
					got := out.Sequences[i][:out.Lengths[i]]
					if !equalIDs(got, c.want[i]) {
						t.Errorf("%s image %d: got %v, transformers %v", c.name, i, got, c.want[i])
					}
				}
			}
		})
	}
}

// captionCase is one generation of the golden captions: the search, the
// prompts and transformers' token ids.
type captionCase struct {
	name    string
	cfg     func(*generate.Config)
	prompts [][]int32
	want    [][]int32
}

// cases are the golden generations: greedy, beam 3 with a minimum length,
// 20 forced new tokens, and greedy after a prompt.
func (g goldenCaptions) cases() []captionCase {
	return []captionCase{
		{"greedy", func(c *generate.Config) { c.MaxLength = 12 }, nil, g.Greedy.IDs},
		{"beam3", func(c *generate.Config) { c.NumBeams, c.MaxLength, c.MinLength = 3, 12, 5 }, nil, g.Beam3.IDs},
		{"greedy_len20", func(c *generate.Config) { c.MaxNewTokens, c.MinNewTokens = 20, 20 }, nil, g.GreedyLen20.IDs},
		{"prompt_greedy", func(c *generate.Config) { c.MaxLength = 12 }, g.PromptGreedy.PromptIDs, g.PromptGreedy.IDs},
	}
}

func equalIDs(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
