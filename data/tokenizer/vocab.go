package tokenizer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Names of BERT's special tokens and of the two BLIP adds.
const (
	PadToken  = "[PAD]"
	UnkToken  = "[UNK]"
	ClsToken  = "[CLS]"
	SepToken  = "[SEP]"
	MaskToken = "[MASK]"
	DecToken  = "[DEC]" // BLIP's decoder start (bos) token
	EncToken  = "[ENC]" // BLIP's image-grounded encoder token
)

// LoadDir loads the tokenizer of an HF model folder: tokenizer.json when
// present, else vocab.txt.
func LoadDir(dir string) (*Tokenizer, error) {
	js := filepath.Join(dir, "tokenizer.json")
	if _, err := os.Stat(js); err == nil {
		return LoadJSON(js)
	}
	txt := filepath.Join(dir, "vocab.txt")
	if _, err := os.Stat(txt); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("tokenizer: %s: neither tokenizer.json nor vocab.txt found", dir)
	}
	return LoadVocab(txt)
}

// LoadVocab reads a vocab.txt: one token per line, id = line number.
func LoadVocab(path string) (*Tokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	var tokens []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		// HF strips only the newline; a trailing \r (Windows file) goes too.
		tokens = append(tokens, strings.TrimSuffix(sc.Text(), "\r"))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %v", path, err)
	}
	t, err := New(tokens)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %v", path, err)
	}
	return t, nil
}

// tokenizerJSON is the part of an HF tokenizer.json used here.
type tokenizerJSON struct {
	AddedTokens []struct {
		ID      int    `json:"id"`
		Content string `json:"content"`
		Special bool   `json:"special"`
	} `json:"added_tokens"`
	Normalizer *struct {
		Type               string `json:"type"`
		CleanText          *bool  `json:"clean_text"`
		HandleChineseChars *bool  `json:"handle_chinese_chars"`
		StripAccents       *bool  `json:"strip_accents"`
		Lowercase          *bool  `json:"lowercase"`
	} `json:"normalizer"`
	Model struct {
		Type                    string         `json:"type"`
		Vocab                   map[string]int `json:"vocab"`
		UnkToken                string         `json:"unk_token"`
		ContinuingSubwordPrefix *string        `json:"continuing_subword_prefix"`
		MaxInputCharsPerWord    int            `json:"max_input_chars_per_word"`
	} `json:"model"`
}

// LoadJSON reads an HF tokenizer.json whose model is WordPiece.
func LoadJSON(path string) (*Tokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	var tj tokenizerJSON
	if err := json.Unmarshal(data, &tj); err != nil {
		return nil, fmt.Errorf("tokenizer: %s: bad JSON: %v", path, err)
	}
	if tj.Model.Type != "WordPiece" {
		return nil, fmt.Errorf("tokenizer: %s: model type %q, want WordPiece", path, tj.Model.Type)
	}
	vocab := map[string]int{}
	for tok, id := range tj.Model.Vocab {
		vocab[tok] = id
	}
	for _, a := range tj.AddedTokens {
		vocab[a.Content] = a.ID
	}
	tokens, err := denseTokens(vocab)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %v", path, err)
	}
	unk := tj.Model.UnkToken
	if unk == "" {
		unk = UnkToken
	}
	t, err := newWithUnk(tokens, unk)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %v", path, err)
	}
	for _, a := range tj.AddedTokens {
		if a.Special {
			t.addSpecial(a.Content)
		}
	}
	if p := tj.Model.ContinuingSubwordPrefix; p != nil {
		t.Prefix = *p
	}
	if tj.Model.MaxInputCharsPerWord > 0 {
		t.MaxInputCharsPerWord = tj.Model.MaxInputCharsPerWord
	}
	if n := tj.Normalizer; n != nil && n.Type == "BertNormalizer" {
		if n.CleanText != nil {
			t.CleanText = *n.CleanText
		}
		if n.HandleChineseChars != nil {
			t.ChineseChars = *n.HandleChineseChars
		}
		if n.Lowercase != nil {
			t.Lowercase = *n.Lowercase
		}
		// strip_accents null means "same as lowercase".
		t.StripAccents = t.Lowercase
		if n.StripAccents != nil {
			t.StripAccents = *n.StripAccents
		}
	}
	return t, nil
}

// denseTokens turns a token -> id map into an id-indexed list; ids must
// cover 0..n-1 without gaps or duplicates.
func denseTokens(vocab map[string]int) ([]string, error) {
	if len(vocab) == 0 {
		return nil, errors.New("empty vocabulary")
	}
	type pair struct {
		tok string
		id  int
	}
	ps := make([]pair, 0, len(vocab))
	for tok, id := range vocab {
		ps = append(ps, pair{tok, id})
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].id < ps[j].id })
	tokens := make([]string, len(ps))
	for i, p := range ps {
		if p.id != i {
			return nil, fmt.Errorf("vocabulary ids are not 0..%d: id %d (%q) at position %d", len(ps)-1, p.id, p.tok, i)
		}
		tokens[i] = p.tok
	}
	return tokens, nil
}
