package main

import (
	"encoding/json"
	"fmt"
	"image"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"blip/blip"
	"blip/data/preprocess"
	"blip/data/tokenizer"
	"blip/gpu"
)

func vqaCmd() *cli.Command {
	return &cli.Command{
		Name:  "vqa",
		Usage: "answer a question about an image with a BLIP VQA model (HF folder), as transformers' generate does",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "model", Required: true, Usage: "HF folder of a BlipForQuestionAnswering model"},
			&cli.StringFlag{Name: "image", Required: true, Usage: "image file"},
			&cli.StringFlag{Name: "question", Required: true, Usage: "the question"},
			&cli.IntFlag{Name: "max-length", Value: 20, Usage: "maximum answer length in tokens, counting [DEC] (transformers' max_length)"},
			&cli.IntFlag{Name: "beams", Value: 1, Usage: "beam search width (1: greedy)"},
			&cli.StringSliceFlag{Name: "candidate", Usage: "rank mode: choose the answer among these (repeat the flag), as salesforce/BLIP's rank_answer"},
			&cli.IntFlag{Name: "top-k", Value: 128, Usage: "rank mode: candidates kept by first-token probability before full re-scoring"},
			&cli.BoolFlag{Name: "json", Usage: "JSON Lines on stdout"},
		},
		Action: vqa,
	}
}

// openKind opens an HF folder, refuses a model of another class before
// loading its weights, and loads it with its tokenizer and processor.
func openKind(c *cli.Context, be gpu.Backend, cmd string, want blip.ModelKind) (*blip.Model, *tokenizer.Tokenizer, preprocess.Processor, error) {
	dir := c.String("model")
	f, err := blip.OpenFolder(dir)
	if err != nil {
		return nil, nil, preprocess.Processor{}, err
	}
	defer f.Close()
	if f.Kind != want {
		return nil, nil, preprocess.Processor{}, fmt.Errorf("%s: %s holds a %v model; %s needs a %v", cmd, dir, f.Kind, cmd, want)
	}
	tok, err := tokenizer.LoadDir(dir)
	if err != nil {
		return nil, nil, preprocess.Processor{}, err
	}
	proc, err := preprocess.FromConfigDir(dir)
	if err != nil {
		return nil, nil, preprocess.Processor{}, err
	}
	m, err := blip.Load(f, be)
	if err != nil {
		return nil, nil, preprocess.Processor{}, err
	}
	if err := applyPrecision(c, m); err != nil {
		m.Close()
		return nil, nil, preprocess.Processor{}, err
	}
	if c.Bool("verbose") {
		for _, name := range f.Weights.Unused() {
			fmt.Fprintf(os.Stderr, "blip: %s: unused tensor %s\n", dir, name)
		}
	}
	return m, tok, proc, nil
}

// encodeText tokenises [CLS] text [SEP] as the HF processor does.
func encodeText(tok *tokenizer.Tokenizer, s string) []int32 {
	var ids []int32
	for _, id := range tok.Encode(s) {
		ids = append(ids, int32(id))
	}
	return ids
}

// loadPixels reads and preprocesses image files; errors name the file.
func loadPixels(proc preprocess.Processor, paths []string) ([]float32, error) {
	imgs := make([]image.Image, len(paths))
	for i, p := range paths {
		img, err := preprocess.Load(p)
		if err != nil {
			return nil, err
		}
		imgs[i] = img
	}
	return proc.Batch(imgs)
}

func vqa(c *cli.Context) error {
	question := strings.TrimSpace(c.String("question"))
	if question == "" {
		return fmt.Errorf("vqa: the question is empty")
	}
	if _, err := os.Stat(c.String("image")); err != nil {
		return fmt.Errorf("vqa: %w", err)
	}
	be, err := openBackend(c)
	if err != nil {
		return err
	}
	defer be.Close()
	m, tok, proc, err := openKind(c, be, "vqa", blip.KindQA)
	if err != nil {
		return err
	}
	defer m.Close()
	pixels, err := loadPixels(proc, []string{c.String("image")})
	if err != nil {
		return err
	}
	q := [][]int32{encodeText(tok, question)}
	rec := map[string]any{"question": question}
	if cands := c.StringSlice("candidate"); len(cands) > 0 {
		ids := make([][]int32, len(cands))
		for i, s := range cands {
			if strings.TrimSpace(s) == "" {
				return fmt.Errorf("vqa: candidate %d is empty", i+1)
			}
			ids[i] = encodeText(tok, s)
		}
		r, err := m.RankAnswers(be, pixels, 1, q, ids, c.Int("top-k"))
		if err != nil {
			return err
		}
		best := r[0].Best
		// The answer as the decoder scored it: [DEC] replaces [CLS].
		seq := append([]int32{int32(m.Config.TextConfig.BosTokenID)}, ids[best][1:]...)
		rec["answer"], rec["token_ids"], rec["candidate_index"] = cands[best], seq, best
		for j, idx := range r[0].TopK {
			if idx == best {
				rec["log_likelihood"] = r[0].LogLikelihoods[j]
			}
		}
	} else {
		cfg := m.QAConfig()
		cfg.MaxLength, cfg.NumBeams = c.Int("max-length"), c.Int("beams")
		out, err := m.AnswerQuestions(be, pixels, 1, q, cfg)
		if err != nil {
			return err
		}
		ids := out.Sequences[0][:out.Lengths[0]]
		ints := make([]int, len(ids))
		for j, id := range ids {
			ints[j] = int(id)
		}
		rec["answer"], rec["token_ids"] = tok.Decode(ints, true), ids
	}
	if c.Bool("json") {
		return json.NewEncoder(os.Stdout).Encode(rec)
	}
	fmt.Printf("%s\t%s\n", question, rec["answer"])
	return nil
}
