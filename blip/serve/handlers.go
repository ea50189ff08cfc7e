package serve

import (
	"fmt"
	"image"
	"math"
	"net/http"
	"sort"
	"strings"

	"blip/blip"
)

// need answers 501 when the model an endpoint uses was not loaded.
func need(l *Loaded, what, flag string) error {
	if l == nil {
		return &apiError{http.StatusNotImplemented, fmt.Sprintf("%s needs a %s model; start blip serve with %s DIR", what, flag, flag)}
	}
	return nil
}

// text tokenises a request text and checks it fits the model.
func (s *Server) text(l *Loaded, what, t string) ([]int32, error) {
	if strings.TrimSpace(t) == "" {
		return nil, badRequest("%s is empty", what)
	}
	ids := encode(l.Tok, t)
	if n := l.Model.Config.TextConfig.MaxPositionEmbeddings; len(ids) > n {
		return nil, badRequest("%s is %d tokens long; the model takes at most %d", what, len(ids), n)
	}
	return ids, nil
}

// pixels decodes a request image and preprocesses it for l.
func (s *Server) pixels(l *Loaded, data []byte) ([]float32, error) {
	img, err := s.decodeImage(data)
	if err != nil {
		return nil, err
	}
	return s.preprocess(l, img)
}

func (s *Server) preprocess(l *Loaded, img image.Image) ([]float32, error) {
	px, err := l.Proc.Pixels(img)
	if err != nil {
		return nil, badRequest("cannot preprocess the image: %v", err)
	}
	return px, nil
}

// CaptionRequest are /v1/caption's fields (JSON, form or query).
type captionRequest struct {
	withImage
	Prompt            string   `json:"prompt"`
	NumBeams          int      `json:"num_beams"`
	MaxNewTokens      int      `json:"max_new_tokens"`
	MinNewTokens      int      `json:"min_new_tokens"`
	RepetitionPenalty *float64 `json:"repetition_penalty"`
	DoSample          bool     `json:"do_sample"`
	TopP              *float64 `json:"top_p"`
	TopK              *int     `json:"top_k"`
	Temperature       *float64 `json:"temperature"`
	Seed              *uint64  `json:"seed"`
}

// GeneratedText is one /v1/caption result, as transformers' pipeline names it.
type GeneratedText struct {
	GeneratedText string `json:"generated_text"`
}

// defaultMaxLength is transformers' default max_length (prompt included),
// used when a request gives no max_new_tokens, as blip caption does.
const defaultMaxLength = 20

func (s *Server) caption(w http.ResponseWriter, r *http.Request) (any, error) {
	l := s.models.Caption
	if err := need(l, "captioning", "--model"); err != nil {
		return nil, err
	}
	var req captionRequest
	data, err := s.readRequest(w, r, &req)
	if err != nil {
		return nil, err
	}
	item := &captionItem{cfg: l.Model.CaptionConfig()}
	cfg := &item.cfg
	if p := strings.TrimSpace(req.Prompt); p != "" {
		if item.prompt, err = s.text(l, "prompt", p); err != nil {
			return nil, err
		}
	}
	// The decoder's prompt: [DEC] then the prompt without its [SEP].
	promptLen := 1
	if item.prompt != nil {
		promptLen = len(item.prompt) - 1
	}
	if req.NumBeams == 0 {
		req.NumBeams = 1
	}
	if req.NumBeams < 1 || req.NumBeams > s.cfg.MaxBeams {
		return nil, badRequest("num_beams %d is outside 1..%d", req.NumBeams, s.cfg.MaxBeams)
	}
	cfg.NumBeams = req.NumBeams
	newTokens := req.MaxNewTokens
	switch {
	case req.MaxNewTokens < 0:
		return nil, badRequest("max_new_tokens %d is negative", req.MaxNewTokens)
	case req.MaxNewTokens > s.cfg.MaxNewTokens:
		return nil, badRequest("max_new_tokens %d exceeds this server's limit of %d", req.MaxNewTokens, s.cfg.MaxNewTokens)
	case req.MaxNewTokens > 0:
		cfg.MaxNewTokens = req.MaxNewTokens
	default:
		cfg.MaxLength = defaultMaxLength
		newTokens = max(0, defaultMaxLength-promptLen)
		if newTokens > s.cfg.MaxNewTokens {
			newTokens, cfg.MaxNewTokens = s.cfg.MaxNewTokens, s.cfg.MaxNewTokens
		}
	}
	if n := l.Model.Config.TextConfig.MaxPositionEmbeddings; promptLen+newTokens > n {
		return nil, badRequest("the prompt (%d tokens) and %d new tokens exceed the model's %d positions", promptLen, newTokens, n)
	}
	if req.MinNewTokens < 0 || req.MinNewTokens > max(newTokens, 0) {
		return nil, badRequest("min_new_tokens %d is outside 0..%d", req.MinNewTokens, newTokens)
	}
	cfg.MinNewTokens = req.MinNewTokens
	if p := req.RepetitionPenalty; p != nil {
		if !(*p > 0) || math.IsInf(*p, 0) {
			return nil, badRequest("repetition_penalty must be > 0")
		}
		cfg.RepetitionPenalty = *p
	}
	key := ""
	if req.DoSample {
		if cfg.NumBeams > 1 {
			return nil, badRequest("do_sample works with num_beams 1 only")
		}
		cfg.DoSample, cfg.TopK, cfg.TopP = true, 0, 0.9 // blip caption --sample's defaults
		if p := req.TopP; p != nil {
			if !(*p > 0 && *p <= 1) {
				return nil, badRequest("top_p must be in (0, 1]")
			}
			cfg.TopP = *p
		}
		if k := req.TopK; k != nil {
			if *k < 0 {
				return nil, badRequest("top_k must be >= 0")
			}
			cfg.TopK = *k
		}
		if t := req.Temperature; t != nil {
			if !(*t > 0) || math.IsInf(*t, 0) {
				return nil, badRequest("temperature must be > 0")
			}
			cfg.Temperature = *t
		}
		if req.Seed != nil {
			// Each row of a batch draws from its own stream: a seeded
			// request runs alone so that its seed reproduces its caption.
			cfg.Seed = *req.Seed
		} else {
			item.randomSeed = true
			key = fmt.Sprintf("%+v|%v", *cfg, item.prompt)
		}
	} else {
		key = fmt.Sprintf("%+v|%v", *cfg, item.prompt)
	}
	if item.pixels, err = s.pixels(l, data); err != nil {
		return nil, err
	}
	if err := s.w.submit(r.Context(), &task{kind: "caption", key: key, cap: item}); err != nil {
		return nil, err
	}
	return []GeneratedText{{decode(l.Tok, item.seq)}}, nil
}

type vqaRequest struct {
	withImage
	Question     string   `json:"question"`
	NumBeams     int      `json:"num_beams"`
	MaxNewTokens int      `json:"max_new_tokens"`
	Candidates   []string `json:"candidates"`
	TopK         int      `json:"top_k"`
}

// Answer is one /v1/vqa result: the answer and its probability under the
// decoder (for beam search, of the length-normalised score).
type Answer struct {
	Answer string  `json:"answer"`
	Score  float64 `json:"score"`
}

func (s *Server) vqa(w http.ResponseWriter, r *http.Request) (any, error) {
	l := s.models.VQA
	if err := need(l, "visual question answering", "--vqa"); err != nil {
		return nil, err
	}
	var req vqaRequest
	data, err := s.readRequest(w, r, &req)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(req.Question) == "" {
		return nil, badRequest("question is required")
	}
	q, err := s.text(l, "question", req.Question)
	if err != nil {
		return nil, err
	}
	if req.NumBeams == 0 {
		req.NumBeams = 1
	}
	if req.NumBeams < 1 || req.NumBeams > s.cfg.MaxBeams {
		return nil, badRequest("num_beams %d is outside 1..%d", req.NumBeams, s.cfg.MaxBeams)
	}
	if req.MaxNewTokens < 0 || req.MaxNewTokens > s.cfg.MaxNewTokens {
		return nil, badRequest("max_new_tokens %d is outside 0..%d", req.MaxNewTokens, s.cfg.MaxNewTokens)
	}
	if len(req.Candidates) > s.cfg.MaxTexts {
		return nil, badRequest("%d candidates; at most %d", len(req.Candidates), s.cfg.MaxTexts)
	}
	var cands [][]int32
	for i, c := range req.Candidates {
		ids, err := s.text(l, fmt.Sprintf("candidate %d", i), c)
		if err != nil {
			return nil, err
		}
		cands = append(cands, ids)
	}
	if req.TopK < 0 {
		return nil, badRequest("top_k must be >= 0")
	}
	if req.TopK == 0 {
		req.TopK = 128
	}
	pixels, err := s.pixels(l, data)
	if err != nil {
		return nil, err
	}
	var out []Answer
	err = s.w.submit(r.Context(), &task{kind: "vqa", fn: func() error {
		m := l.Model
		if cands != nil {
			res, err := m.RankAnswers(s.be, pixels, 1, [][]int32{q}, cands, req.TopK)
			if err != nil {
				return err
			}
			for j, idx := range res[0].TopK {
				out = append(out, Answer{req.Candidates[idx], math.Exp(res[0].LogLikelihoods[j])})
			}
			sort.SliceStable(out, func(a, b int) bool { return out[a].Score > out[b].Score })
			return nil
		}
		cfg := m.QAConfig()
		cfg.NumBeams = req.NumBeams
		if req.MaxNewTokens > 0 {
			cfg.MaxNewTokens = req.MaxNewTokens
		}
		res, err := m.AnswerQuestions(s.be, pixels, 1, [][]int32{q}, cfg)
		if err != nil {
			return err
		}
		out = []Answer{{decode(l.Tok, res.Sequences[0][:res.Lengths[0]]), math.Exp(float64(res.Scores[0]))}}
		return nil
	}})
	if err != nil {
		return nil, err
	}
	return out, nil
}

type itmRequest struct {
	withImage
	Texts []string `json:"texts"`
}

// ITMResult scores one text against the image.
type ITMResult struct {
	Text      string  `json:"text"`
	ITMScore  float32 `json:"itm_score"`
	ITCCosine float32 `json:"itc_cosine"`
}

// texts validates and tokenises a list of request texts.
func (s *Server) texts(l *Loaded, what string, ts []string) ([][]int32, error) {
	if len(ts) == 0 {
		return nil, badRequest("%s is required (a non-empty list)", what)
	}
	if len(ts) > s.cfg.MaxTexts {
		return nil, badRequest("%d %s; at most %d", len(ts), what, s.cfg.MaxTexts)
	}
	out := make([][]int32, len(ts))
	for i, t := range ts {
		ids, err := s.text(l, fmt.Sprintf("%s[%d]", what, i), t)
		if err != nil {
			return nil, err
		}
		out[i] = ids
	}
	return out, nil
}

func (s *Server) itm(w http.ResponseWriter, r *http.Request) (any, error) {
	l := s.models.Retrieval
	if err := need(l, "ITM", "--retrieval"); err != nil {
		return nil, err
	}
	var req itmRequest
	data, err := s.readRequest(w, r, &req)
	if err != nil {
		return nil, err
	}
	ids, err := s.texts(l, "texts", req.Texts)
	if err != nil {
		return nil, err
	}
	pixels, err := s.pixels(l, data)
	if err != nil {
		return nil, err
	}
	var res [][]blip.Match
	err = s.w.submit(r.Context(), &task{kind: "itm", fn: func() (err error) {
		res, err = l.Model.MatchTexts(s.be, pixels, 1, ids)
		return err
	}})
	if err != nil {
		return nil, err
	}
	out := make([]ITMResult, len(req.Texts))
	for j, t := range req.Texts {
		out[j] = ITMResult{t, res[0][j].ITMScore, res[0][j].Cosine}
	}
	return out, nil
}

type embedRequest struct {
	withImage
	Text string `json:"text"`
}

// Embedding is /v1/embed's answer: the L2-normalised ITC feature.
type Embedding struct {
	Input     string    `json:"input"` // "image" or "text"
	Dim       int       `json:"dim"`
	Embedding []float32 `json:"embedding"`
}

func (s *Server) embed(w http.ResponseWriter, r *http.Request) (any, error) {
	l := s.models.Retrieval
	if err := need(l, "embeddings", "--retrieval"); err != nil {
		return nil, err
	}
	var req embedRequest
	data, err := s.readRequest(w, r, &req)
	if err != nil {
		return nil, err
	}
	hasText := req.Text != ""
	switch {
	case hasText && len(data) > 0:
		return nil, badRequest("give either an image or a text, not both")
	case !hasText && len(data) == 0:
		return nil, badRequest("give an image or a text")
	}
	out := Embedding{Dim: l.Model.Config.ImageTextHiddenSize}
	if hasText {
		ids, err := s.text(l, "text", req.Text)
		if err != nil {
			return nil, err
		}
		out.Input = "text"
		err = s.w.submit(r.Context(), &task{kind: "embed", fn: func() (err error) {
			out.Embedding, err = l.Model.TextEmbeddings(s.be, [][]int32{ids})
			return err
		}})
		if err != nil {
			return nil, err
		}
		return out, nil
	}
	pixels, err := s.pixels(l, data)
	if err != nil {
		return nil, err
	}
	out.Input = "image"
	err = s.w.submit(r.Context(), &task{kind: "embed", fn: func() (err error) {
		out.Embedding, err = l.Model.ImageEmbeddings(s.be, pixels, 1)
		return err
	}})
	if err != nil {
		return nil, err
	}
	return out, nil
}

type classifyRequest struct {
	withImage
	CandidateLabels    []string `json:"candidate_labels"`
	HypothesisTemplate string   `json:"hypothesis_template"`
	Temperature        *float64 `json:"temperature"`
}

// LabelScore is one /v1/classify result.
type LabelScore struct {
	Label string  `json:"label"`
	Score float64 `json:"score"`
}

// DefaultTemplate turns a label into the text compared with the image.
const DefaultTemplate = "a picture of {}"

// DefaultTemperature divides the ITC cosines before the softmax over labels:
// BLIP's initial ITC temperature (the HF retrieval checkpoints do not keep
// the trained one).
const DefaultTemperature = 0.07

func (s *Server) classify(w http.ResponseWriter, r *http.Request) (any, error) {
	l := s.models.Retrieval
	if err := need(l, "zero-shot classification", "--retrieval"); err != nil {
		return nil, err
	}
	var req classifyRequest
	data, err := s.readRequest(w, r, &req)
	if err != nil {
		return nil, err
	}
	tmpl := req.HypothesisTemplate
	if tmpl == "" {
		tmpl = DefaultTemplate
	}
	if !strings.Contains(tmpl, "{}") {
		return nil, badRequest("hypothesis_template %q has no {} for the label", tmpl)
	}
	temp := DefaultTemperature
	if t := req.Temperature; t != nil {
		if !(*t > 0) || math.IsInf(*t, 0) {
			return nil, badRequest("temperature must be > 0")
		}
		temp = *t
	}
	texts := make([]string, len(req.CandidateLabels))
	for i, lab := range req.CandidateLabels {
		if strings.TrimSpace(lab) == "" {
			return nil, badRequest("candidate_labels[%d] is empty", i)
		}
		texts[i] = strings.ReplaceAll(tmpl, "{}", lab)
	}
	ids, err := s.texts(l, "candidate_labels", texts)
	if err != nil {
		return nil, err
	}
	pixels, err := s.pixels(l, data)
	if err != nil {
		return nil, err
	}
	var img, txt []float32
	err = s.w.submit(r.Context(), &task{kind: "classify", fn: func() (err error) {
		if img, err = l.Model.ImageEmbeddings(s.be, pixels, 1); err != nil {
			return err
		}
		txt, err = l.Model.TextEmbeddings(s.be, ids)
		return err
	}})
	if err != nil {
		return nil, err
	}
	d := len(img)
	logits := make([]float64, len(ids))
	top := math.Inf(-1)
	for j := range ids {
		var c float64
		for k, x := range img {
			c += float64(x) * float64(txt[j*d+k])
		}
		logits[j] = c / temp
		top = max(top, logits[j])
	}
	var sum float64
	for j := range logits {
		logits[j] = math.Exp(logits[j] - top)
		sum += logits[j]
	}
	out := make([]LabelScore, len(ids))
	for j, lab := range req.CandidateLabels {
		out[j] = LabelScore{lab, logits[j] / sum}
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].Score > out[b].Score })
	return out, nil
}

type infoResponse struct {
	Models map[string]*string `json:"models"`
	Index  *indexInfo         `json:"index"`
	Limits map[string]any     `json:"limits"`
}

type indexInfo struct {
	Images int    `json:"images"`
	Root   string `json:"root"`
	Model  string `json:"model"`
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) (any, error) {
	if len(r.URL.Query()) > 0 {
		return nil, badRequest("/v1/info takes no parameters")
	}
	dir := func(l *Loaded) *string {
		if l == nil {
			return nil
		}
		return &l.Dir
	}
	out := infoResponse{
		Models: map[string]*string{"caption": dir(s.models.Caption), "retrieval": dir(s.models.Retrieval), "vqa": dir(s.models.VQA)},
		Limits: map[string]any{
			"max_body_bytes": s.cfg.MaxBodyBytes, "max_pixels": s.cfg.MaxPixels, "max_new_tokens": s.cfg.MaxNewTokens,
			"max_beams": s.cfg.MaxBeams, "max_texts": s.cfg.MaxTexts, "max_search_k": s.cfg.MaxSearchK,
			"max_rerank": s.cfg.MaxRerank, "max_batch": s.cfg.MaxBatch, "max_wait_ms": s.cfg.MaxWait.Milliseconds(),
			"request_timeout_s": s.cfg.RequestTimeout.Seconds(),
		},
	}
	if s.ix != nil {
		out.Index = &indexInfo{s.ix.Len(), s.ix.Root, s.ix.Model}
	}
	return out, nil
}
