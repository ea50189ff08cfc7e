// Package capfilt implements BLIP's CapFilt (Li et al. 2022, section 3.3):
// a captioner (BlipForConditionalGeneration) writes synthetic captions for
// every web image by nucleus sampling, a filter (BlipForImageTextRetrieval)
// scores the web and synthetic captions with its ITM head, and the pairs
// whose match probability softmax(itm_logits)[1] reaches a threshold are
// kept, together with human-annotated pairs, as the next pretraining set.
//
// Runs are batched, resumable (every finished batch is appended to a
// journal, OUT.partial.jsonl, and fsynced; a restart skips the images it
// holds) and shardable (shard i of N takes the images whose index modulo N
// is i; Merge concatenates shard outputs). Sampling is seeded per image from
// the run seed and the image's path, so resumed, sharded and uninterrupted
// runs write the same captions.
package capfilt

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"blip/blip"
	"blip/blip/generate"
	"blip/data/dataset"
	"blip/data/preprocess"
	"blip/data/tokenizer"
	"blip/gpu"
)

// Sources of output pairs, the "source" field.
const (
	SourceWeb       = "web"
	SourceSynthetic = "synthetic"
	SourceHuman     = "human"
)

// Defaults, as BLIP's models/blip.py generate(sample=True) and the paper.
const (
	DefaultPrompt            = "a picture of "
	DefaultTopP              = 0.9
	DefaultTopK              = 50 // transformers' generate default, in effect in BLIP's sampling
	DefaultRepetitionPenalty = 1.1
	DefaultMaxLength         = 30
	DefaultMinLength         = 10
	DefaultThreshold         = 0.5
	DefaultMaxWords          = 30 // pre_caption of texts before the filter scores them
	DefaultMaxTextTokens     = 35 // BLIP's retrieval text length
)

// Models are an opened captioner and filter with their tokenizers and image
// processors.
type Models struct {
	Captioner, Filter       *blip.Model
	CaptionerTok, FilterTok *tokenizer.Tokenizer
	CaptionerProc           preprocess.Processor
	FilterProc              preprocess.Processor
	CaptionerDir, FilterDir string

	// scorer is the filter's ITM scorer, kept between batches (score).
	scorer   *blip.ITMScorer
	scorerBE gpu.Backend
}

// CheckKind opens dir's config and weights and returns an error naming the
// kind found when it is not want; role is "captioner" or "filter".
func CheckKind(dir, role string, want blip.ModelKind) error {
	f, err := blip.OpenFolder(dir)
	if err != nil {
		return fmt.Errorf("capfilt: %s: %w", role, err)
	}
	defer f.Close()
	return kindError(dir, role, f.Kind, want)
}

func kindError(dir, role string, got, want blip.ModelKind) error {
	if got == want {
		return nil
	}
	what := map[blip.ModelKind]string{
		blip.KindCaptioning: "a captioning model",
		blip.KindRetrieval:  "an image-text retrieval (ITM) model",
	}[want]
	return fmt.Errorf("capfilt: the %s %s holds a %v model; the %s must be %s (%v)", role, dir, got, role, what, want)
}

// openRole opens one model folder and checks its kind.
func openRole(be gpu.Backend, dir, role string, want blip.ModelKind) (*blip.Model, *tokenizer.Tokenizer, preprocess.Processor, error) {
	var proc preprocess.Processor
	f, err := blip.OpenFolder(dir)
	if err != nil {
		return nil, nil, proc, fmt.Errorf("capfilt: %s: %w", role, err)
	}
	defer f.Close()
	if err := kindError(dir, role, f.Kind, want); err != nil {
		return nil, nil, proc, err
	}
	tok, err := tokenizer.LoadDir(dir)
	if err != nil {
		return nil, nil, proc, fmt.Errorf("capfilt: %s: %w", role, err)
	}
	proc, err = preprocess.FromConfigDir(dir)
	if err != nil {
		return nil, nil, proc, fmt.Errorf("capfilt: %s: %w", role, err)
	}
	m, err := blip.Load(f, be)
	if err != nil {
		return nil, nil, proc, fmt.Errorf("capfilt: %s: %w", role, err)
	}
	return m, tok, proc, nil
}

// OpenModels loads the captioner (must be a BlipForConditionalGeneration
// folder) and the filter (a BlipForImageTextRetrieval folder) onto be.
// Both kinds are checked before either model is loaded.
func OpenModels(be gpu.Backend, captionerDir, filterDir string) (*Models, error) {
	if err := CheckKind(captionerDir, "captioner", blip.KindCaptioning); err != nil {
		return nil, err
	}
	if err := CheckKind(filterDir, "filter", blip.KindRetrieval); err != nil {
		return nil, err
	}
	ms := &Models{CaptionerDir: captionerDir, FilterDir: filterDir}
	var err error
	ms.Captioner, ms.CaptionerTok, ms.CaptionerProc, err = openRole(be, captionerDir, "captioner", blip.KindCaptioning)
	if err != nil {
		return nil, err
	}
	ms.Filter, ms.FilterTok, ms.FilterProc, err = openRole(be, filterDir, "filter", blip.KindRetrieval)
	if err != nil {
		ms.Captioner.Close()
		return nil, err
	}
	return ms, nil
}

// Close frees both models.
func (ms *Models) Close() {
	if ms.scorer != nil {
		ms.scorer.Close()
		ms.scorer = nil
	}
	if ms.Captioner != nil {
		ms.Captioner.Close()
	}
	if ms.Filter != nil {
		ms.Filter.Close()
	}
}

// Image is one web image with its web caption(s).
type Image struct {
	// Index is the image's position among the distinct images of the web
	// file (sharding and output order use it).
	Index int
	// Image is the annotation's "image" field, written to the output;
	// Path is it joined to the image root.
	Image, Path string
	Captions    []string
}

// ReadWeb reads a BLIP annotation file ([{"image", "caption"}], caption a
// string or a list) with data/dataset's reader; entries naming the same
// image are merged into one Image with all their captions, in file order.
// A missing field is an error naming the file and the entry.
func ReadWeb(file, root string) ([]Image, error) {
	entries, err := dataset.ReadAnnotations(file, root, dataset.JSONOptions{})
	if err != nil {
		return nil, err
	}
	var out []Image
	at := map[string]int{}
	for _, e := range entries {
		if i, ok := at[e.Image]; ok {
			out[i].Captions = append(out[i].Captions, e.Captions...)
			continue
		}
		at[e.Image] = len(out)
		out = append(out, Image{Index: len(out), Image: e.Image, Path: e.Path, Captions: append([]string(nil), e.Captions...)})
	}
	return out, nil
}

// ReadHuman reads human-annotated pairs, one output entry per caption,
// copied through unfiltered as BLIP does.
func ReadHuman(file string) ([]Entry, error) {
	entries, err := dataset.ReadAnnotations(file, "", dataset.JSONOptions{})
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, e := range entries {
		for _, c := range e.Captions {
			out = append(out, Entry{Image: e.Image, Caption: c, Source: SourceHuman})
		}
	}
	return out, nil
}

// Entry is one output pair in BLIP's annotation format; Score is the
// filter's match probability (absent for human pairs).
type Entry struct {
	Image   string   `json:"image"`
	Caption string   `json:"caption"`
	Source  string   `json:"source"`
	Score   *float32 `json:"score,omitempty"`
}

// Options configure Run. Start from DefaultOptions.
type Options struct {
	// SamplesPerImage is the number of synthetic captions per image.
	SamplesPerImage int
	// Beams > 1 uses beam search (deterministic) instead of sampling.
	Beams int
	// TopP, TopK, Temperature and RepetitionPenalty configure sampling
	// (RepetitionPenalty also applies to beam search).
	TopP, Temperature, RepetitionPenalty float64
	TopK                                 int
	// MaxLength and MinLength count [DEC] and the prompt tokens, as
	// transformers' max_length/min_length and BLIP's generate.
	MaxLength, MinLength int
	// Prompt the captions continue; it is removed from the outputs.
	Prompt string
	// Threshold: pairs with p(match) >= Threshold are kept.
	Threshold float64
	// MaxWords > 0 applies BLIP's pre_caption to texts before the filter
	// sees them (outputs keep the original text); MaxTextTokens truncates
	// the filter's tokens.
	MaxWords, MaxTextTokens int
	// Batch is the number of images per batch (one journal write each).
	Batch int
	// Shard and Shards: process images with Index % Shards == Shard.
	Shard, Shards int
	// Seed for sampling; each image's stream is derived from it and the
	// image's path.
	Seed uint64
	// MaxBatches > 0 stops after that many batches of this call, leaving
	// the journal for a later resume (Run returns ErrIncomplete).
	MaxBatches int
	// KeepJournal keeps OUT.partial.jsonl after the final output is written.
	KeepJournal bool
	// HTMLImages is the number of images on the sample page.
	HTMLImages int
	// Progress, when set, is called after each batch with the images done
	// (skipped ones included) and the shard's total.
	Progress func(done, total int)
	// Warn receives one line per image that fails to load (nil: discard).
	Warn io.Writer
}

// DefaultOptions returns BLIP's CapFilt settings.
func DefaultOptions() Options {
	return Options{
		SamplesPerImage: 1, Beams: 1, TopP: DefaultTopP, TopK: DefaultTopK, Temperature: 1,
		RepetitionPenalty: DefaultRepetitionPenalty, MaxLength: DefaultMaxLength, MinLength: DefaultMinLength,
		Prompt: DefaultPrompt, Threshold: DefaultThreshold, MaxWords: DefaultMaxWords,
		MaxTextTokens: DefaultMaxTextTokens, Batch: 8, Shards: 1, HTMLImages: 50,
	}
}

func (o *Options) validate() error {
	switch {
	case o.SamplesPerImage < 0:
		return fmt.Errorf("capfilt: samples per image %d < 0", o.SamplesPerImage)
	case o.Beams < 1:
		return fmt.Errorf("capfilt: beams %d < 1", o.Beams)
	case o.Beams > 1 && o.SamplesPerImage > o.Beams:
		return fmt.Errorf("capfilt: beam search returns at most %d captions per image, %d asked", o.Beams, o.SamplesPerImage)
	case o.Batch < 1:
		return fmt.Errorf("capfilt: batch %d < 1", o.Batch)
	case o.Shards < 1 || o.Shard < 0 || o.Shard >= o.Shards:
		return fmt.Errorf("capfilt: bad shard %d/%d", o.Shard, o.Shards)
	case o.Threshold < 0 || o.Threshold > 1 || o.Threshold != o.Threshold:
		return fmt.Errorf("capfilt: threshold %v is not in [0, 1]", o.Threshold)
	case o.MaxLength < 2:
		return fmt.Errorf("capfilt: max length %d < 2", o.MaxLength)
	}
	return nil
}

// ParseShard parses "i/N".
func ParseShard(s string) (i, n int, err error) {
	if s == "" {
		return 0, 1, nil
	}
	if _, err := fmt.Sscanf(s, "%d/%d", &i, &n); err != nil || n < 1 || i < 0 || i >= n || fmt.Sprintf("%d/%d", i, n) != s {
		return 0, 0, fmt.Errorf("capfilt: bad shard %q: want i/N with 0 <= i < N", s)
	}
	return i, n, nil
}

// ImageSeed is the sampling seed of one image: the run seed mixed with an
// FNV-1a hash of the image's "image" field, so it depends neither on the
// batch nor on the shard.
func ImageSeed(seed uint64, image string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(image))
	return splitmix(seed ^ splitmix(h.Sum64()))
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// Scored is one caption of an image with the filter's probability.
type Scored struct {
	Caption string  `json:"caption"`
	Source  string  `json:"source"`
	Score   float32 `json:"score"`
}

// record is one journal line: an image's captions with their scores, or
// why it failed.
type record struct {
	Index    int      `json:"i"`
	Image    string   `json:"image"`
	Path     string   `json:"path,omitempty"`
	Failed   string   `json:"failed,omitempty"`
	Captions []Scored `json:"captions,omitempty"`
}

// ErrIncomplete is returned when MaxBatches stopped a run early.
var ErrIncomplete = errors.New("capfilt: stopped before the end (resume by running again)")

// encodeFilterText tokenises a caption for the filter: pre_caption, then
// [CLS] words [SEP] truncated to MaxTextTokens.
func encodeFilterText(tok *tokenizer.Tokenizer, s string, o *Options) []int32 {
	if o.MaxWords > 0 {
		s = tokenizer.PreCaption(s, o.MaxWords)
	}
	enc := tok.EncodeWith(s, tokenizer.Options{MaxLength: o.MaxTextTokens})
	ids := make([]int32, len(enc.IDs))
	for i, id := range enc.IDs {
		ids[i] = int32(id)
	}
	return ids
}

// genConfig is the captioner's generate configuration.
func genConfig(m *blip.Model, o *Options) generate.Config {
	cfg := m.CaptionConfig()
	cfg.MaxLength, cfg.MinLength = o.MaxLength, o.MinLength
	cfg.RepetitionPenalty = o.RepetitionPenalty
	cfg.NumReturnSequences = max(1, o.SamplesPerImage)
	if o.Beams > 1 {
		cfg.NumBeams = o.Beams
	} else {
		cfg.DoSample, cfg.TopP, cfg.TopK, cfg.Temperature = true, o.TopP, o.TopK, o.Temperature
	}
	return cfg
}

// promptIDs tokenises the prompt as the HF processor does ([CLS] words
// [SEP]); nil for no prompt.
func promptIDs(tok *tokenizer.Tokenizer, prompt string) []int32 {
	p := strings.TrimSpace(prompt)
	if p == "" {
		return nil
	}
	var ids []int32
	for _, id := range tok.Encode(p) {
		ids = append(ids, int32(id))
	}
	return ids
}

// caption generates SamplesPerImage captions for each image of pixels.
// Sampling runs one image at a time with its own seed (generate derives the
// row streams from one seed and the row number, so a batch would tie an
// image's captions to its batch position); beam search is deterministic
// and runs the whole batch.
func caption(be gpu.Backend, ms *Models, pixels []float32, imgs []Image, o *Options) ([][]string, error) {
	k := o.SamplesPerImage
	out := make([][]string, len(imgs))
	if k == 0 {
		return out, nil
	}
	cfg := genConfig(ms.Captioner, o)
	prompt := promptIDs(ms.CaptionerTok, o.Prompt)
	// As BLIP's generate: decode the whole sequence, then cut the prompt
	// text off the front.
	var promptText string
	if prompt != nil {
		ids := make([]int, len(prompt))
		for i, id := range prompt {
			ids[i] = int(id)
		}
		promptText = ms.CaptionerTok.Decode(ids, true)
	}
	decode := func(seq []int32, n int) string {
		ids := make([]int, n)
		for i, id := range seq[:n] {
			ids[i] = int(id)
		}
		return strings.TrimSpace(strings.TrimPrefix(ms.CaptionerTok.Decode(ids, true), promptText))
	}
	prompts := func(n int) [][]int32 {
		if prompt == nil {
			return nil
		}
		ps := make([][]int32, n)
		for i := range ps {
			ps[i] = prompt
		}
		return ps
	}
	per := len(pixels) / len(imgs)
	if cfg.NumBeams > 1 {
		res, err := ms.Captioner.GenerateCaptions(be, pixels, len(imgs), prompts(len(imgs)), cfg)
		if err != nil {
			return nil, err
		}
		for i := range imgs {
			for j := range k {
				r := i*k + j
				out[i] = append(out[i], decode(res.Sequences[r], res.Lengths[r]))
			}
		}
		return out, nil
	}
	for i, img := range imgs {
		c := cfg
		c.Seed = ImageSeed(o.Seed, img.Image)
		res, err := ms.Captioner.GenerateCaptions(be, pixels[i*per:(i+1)*per], 1, prompts(1), c)
		if err != nil {
			return nil, err
		}
		for j := range k {
			out[i] = append(out[i], decode(res.Sequences[j], res.Lengths[j]))
		}
	}
	return out, nil
}

// score returns the filter's ITM match probability softmax(itm_logits)[1]
// of image owner[j] (an index into the batch of preprocessed pixels) with
// texts[j] (tokenised [CLS] text [SEP]). The vision encoder runs once for
// the batch, and so does the projection of each image to the text
// layers' cross-attention keys and values (blip.ITMScorer, kept between
// batches), which the image's texts share. textLen is the longest text
// expected (Options.MaxTextTokens), 0 if unknown. The pairs' rows (a
// multiple of 8) and padded length depend on the batch alone, never on
// earlier ones, so that a resumed run scores as an uninterrupted one; the
// scorer is compiled again when they change, or for more images than it
// holds.
func (ms *Models) score(be gpu.Backend, pixels []float32, batch int, texts [][]int32, owner []int, textLen int) ([]float32, error) {
	if err := checkOwners(texts, owner, batch); err != nil || len(texts) == 0 {
		return nil, err
	}
	if mx := ms.Filter.Config.TextConfig.MaxPositionEmbeddings; mx > 0 {
		textLen = min(textLen, mx)
	}
	rows, tl := (len(texts)+7)/8*8, max(longest(texts), textLen)
	if sc := ms.scorer; sc == nil || ms.scorerBE != be || sc.Images < batch || sc.Rows != rows || sc.TextLen != tl {
		images := batch
		if sc != nil {
			if ms.scorerBE == be {
				images = max(images, sc.Images)
			}
			sc.Close()
			ms.scorer = nil
		}
		sc, err := ms.Filter.NewITMScorer(be, images, rows, tl)
		if err != nil {
			return nil, err
		}
		ms.scorer, ms.scorerBE = sc, be
	}
	sc := ms.scorer
	if err := sc.LoadPixels(pixels, 0, batch); err != nil {
		return nil, err
	}
	pairs := make([]blip.ITMPair, len(texts))
	for j := range pairs {
		pairs[j] = blip.ITMPair{Image: owner[j], Text: texts[j]}
	}
	logits, err := sc.ScorePairs(pairs)
	if err != nil {
		return nil, err
	}
	out := make([]float32, len(texts))
	for j, l := range logits {
		out[j] = MatchProb(l[0], l[1])
	}
	return out, nil
}

// checkOwners checks that every text names an image of the batch.
func checkOwners(texts [][]int32, owner []int, batch int) error {
	if len(texts) != len(owner) {
		return fmt.Errorf("capfilt: %d texts, %d owners", len(texts), len(owner))
	}
	for j, o := range owner {
		if o < 0 || o >= batch {
			return fmt.Errorf("capfilt: text %d belongs to image %d of a batch of %d", j, o, batch)
		}
	}
	return nil
}

// longest is the length of the longest text, at least 1.
func longest(texts [][]int32) int {
	n := 1
	for _, t := range texts {
		n = max(n, len(t))
	}
	return n
}

// loadPixels decodes an image and preprocesses it for both models.
func loadPixels(ms *Models, path string) (cp, fp []float32, err error) {
	img, err := preprocess.Load(path)
	if err != nil {
		return nil, nil, err
	}
	if cp, err = ms.CaptionerProc.Pixels(img); err != nil {
		return nil, nil, fmt.Errorf("%s: captioner preprocessing: %w", path, err)
	}
	if fp, err = ms.FilterProc.Pixels(img); err != nil {
		return nil, nil, fmt.Errorf("%s: filter preprocessing: %w", path, err)
	}
	return cp, fp, nil
}

// MatchProb is softmax((no, yes))[1], computed as blip.Match.ITMScore is.
func MatchProb(no, yes float32) float32 {
	return float32(1 / (1 + math.Exp(float64(no)-float64(yes))))
}

// processBatch loads, captions and scores one batch of images. An image
// that cannot be read or preprocessed is recorded as failed and skipped.
func processBatch(be gpu.Backend, ms *Models, batch []Image, o *Options) ([]record, error) {
	recs := make([]record, len(batch))
	var ok []Image
	var okAt []int
	var capPix, filPix []float32
	for i, im := range batch {
		recs[i] = record{Index: im.Index, Image: im.Image, Path: im.Path}
		cp, fp, err := loadPixels(ms, im.Path)
		if err != nil {
			recs[i].Failed = err.Error()
			if o.Warn != nil {
				fmt.Fprintf(o.Warn, "blip: capfilt: warning: skipping image %d (%s): %v\n", im.Index, im.Image, err)
			}
			continue
		}
		ok, okAt = append(ok, im), append(okAt, i)
		capPix, filPix = append(capPix, cp...), append(filPix, fp...)
	}
	if len(ok) == 0 {
		return recs, nil
	}
	synth, err := caption(be, ms, capPix, ok, o)
	if err != nil {
		return nil, fmt.Errorf("capfilt: captioning: %w", err)
	}
	var texts [][]int32
	var owner []int
	for i, im := range ok {
		r := &recs[okAt[i]]
		for _, c := range im.Captions {
			r.Captions = append(r.Captions, Scored{Caption: c, Source: SourceWeb})
		}
		for _, c := range synth[i] {
			r.Captions = append(r.Captions, Scored{Caption: c, Source: SourceSynthetic})
		}
		for _, s := range r.Captions {
			texts = append(texts, encodeFilterText(ms.FilterTok, s.Caption, o))
			owner = append(owner, i)
		}
	}
	scores, err := ms.score(be, filPix, len(ok), texts, owner, o.MaxTextTokens)
	if err != nil {
		return nil, fmt.Errorf("capfilt: filtering: %w", err)
	}
	j := 0
	for _, at := range okAt {
		for c := range recs[at].Captions {
			recs[at].Captions[c].Score = scores[j]
			j++
		}
	}
	return recs, nil
}

// settings is what a journal must agree on to be resumed: everything that
// changes the captions or the scores (the threshold does not: the journal
// keeps every score).
type settings struct {
	Captioner         string  `json:"captioner"`
	Filter            string  `json:"filter"`
	Images            int     `json:"images"`
	SamplesPerImage   int     `json:"samples_per_image"`
	Beams             int     `json:"beams"`
	TopP              float64 `json:"top_p"`
	TopK              int     `json:"top_k"`
	Temperature       float64 `json:"temperature"`
	RepetitionPenalty float64 `json:"repetition_penalty"`
	MaxLength         int     `json:"max_length"`
	MinLength         int     `json:"min_length"`
	Prompt            string  `json:"prompt"`
	MaxWords          int     `json:"max_words"`
	MaxTextTokens     int     `json:"max_text_tokens"`
	Seed              uint64  `json:"seed"`
	Shard             string  `json:"shard"`
}

func settingsOf(ms *Models, n int, o *Options) settings {
	return settings{
		Captioner: absPath(ms.CaptionerDir), Filter: absPath(ms.FilterDir), Images: n, SamplesPerImage: o.SamplesPerImage,
		Beams: o.Beams, TopP: o.TopP, TopK: o.TopK, Temperature: o.Temperature, RepetitionPenalty: o.RepetitionPenalty,
		MaxLength: o.MaxLength, MinLength: o.MinLength, Prompt: o.Prompt, MaxWords: o.MaxWords,
		MaxTextTokens: o.MaxTextTokens, Seed: o.Seed, Shard: fmt.Sprintf("%d/%d", o.Shard, o.Shards),
	}
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// JournalPath is where Run appends finished batches for out.
func JournalPath(out string) string { return out + ".partial.jsonl" }

// SummaryPath and HTMLPath are the side outputs of out (OUT.json ->
// OUT.summary.json, OUT.html).
func SummaryPath(out string) string { return trimJSON(out) + ".summary.json" }

// HTMLPath is the sample page of out.
func HTMLPath(out string) string { return trimJSON(out) + ".html" }

func trimJSON(out string) string {
	if strings.HasSuffix(strings.ToLower(out), ".json") {
		return out[:len(out)-len(".json")]
	}
	return out
}

// Run filters the shard of images selected by o and writes out (the kept
// pairs, then the human pairs: shard 0 only, so that shard outputs
// concatenate), its summary and its sample page. A journal left by an
// interrupted run with the same settings is resumed.
func Run(be gpu.Backend, ms *Models, images []Image, human []Entry, out string, o Options) (*Summary, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	var mine []Image
	for _, im := range images {
		if im.Index%o.Shards == o.Shard {
			mine = append(mine, im)
		}
	}
	st := settingsOf(ms, len(images), &o)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return nil, fmt.Errorf("capfilt: %w", err)
	}
	j, done, err := openJournal(JournalPath(out), st)
	if err != nil {
		return nil, err
	}
	defer j.Close()
	total := len(mine)
	count := 0
	for _, im := range mine {
		if _, ok := done[im.Index]; ok {
			count++
		}
	}
	if o.Progress != nil {
		o.Progress(count, total)
	}
	batches := 0
	// Batches are cut from the shard's list at fixed positions, so a resumed
	// run recomputes exactly the batches an uninterrupted one would.
	for start := 0; start < len(mine); start += o.Batch {
		var todo []Image
		for _, im := range mine[start:min(start+o.Batch, len(mine))] {
			if _, ok := done[im.Index]; !ok {
				todo = append(todo, im)
			}
		}
		if len(todo) == 0 {
			continue
		}
		if o.MaxBatches > 0 && batches >= o.MaxBatches {
			return nil, ErrIncomplete
		}
		recs, err := processBatch(be, ms, todo, &o)
		if err != nil {
			return nil, err
		}
		if err := j.append(recs); err != nil {
			return nil, err
		}
		for _, r := range recs {
			done[r.Index] = r
		}
		batches++
		count += len(todo)
		if o.Progress != nil {
			o.Progress(count, total)
		}
	}
	recs := make([]record, 0, len(mine))
	for _, im := range mine {
		recs = append(recs, done[im.Index])
	}
	if o.Shard != 0 {
		human = nil
	}
	sum, err := finish(recs, human, out, st, &o)
	if err != nil {
		return nil, err
	}
	j.Close()
	if !o.KeepJournal {
		os.Remove(JournalPath(out))
	}
	return sum, nil
}

// Kept returns the output entries of records at threshold: per image, its
// kept web captions then its kept synthetic captions, in image order.
func kept(recs []record, threshold float64) []Entry {
	var out []Entry
	for _, r := range recs {
		for _, c := range r.Captions {
			if float64(c.Score) >= threshold {
				s := c.Score
				out = append(out, Entry{Image: r.Image, Caption: c.Caption, Source: c.Source, Score: &s})
			}
		}
	}
	return out
}

// marshalEntries writes entries as a JSON list, one entry per line.
func marshalEntries(es []Entry) ([]byte, error) {
	var b strings.Builder
	b.WriteString("[")
	for i, e := range es {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString("\n  ")
		line, err := json.Marshal(e)
		if err != nil {
			return nil, err
		}
		b.Write(line)
	}
	b.WriteString("\n]\n")
	return []byte(b.String()), nil
}
