package tokenizer

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// Tokenizer is a BERT WordPiece tokenizer with BLIP's extra tokens. Its
// exported fields may be changed before use; it is safe for concurrent use
// afterwards.
type Tokenizer struct {
	// Normaliser settings (all true for bert-base-uncased).
	CleanText, ChineseChars, StripAccents, Lowercase bool
	// Prefix marks word continuations ("##").
	Prefix string
	// MaxInputCharsPerWord: longer words become [UNK] (100).
	MaxInputCharsPerWord int

	// Special token ids. Mask is -1 when the vocabulary has no [MASK].
	Pad, Unk, Cls, Sep, Mask int
	// Dec ([DEC], BLIP's bos) and Enc ([ENC]) are the vocabulary's own when
	// present, else appended as the next two ids (30522 and 30523 for
	// bert-base-uncased), as BLIP's add_special_tokens does.
	Dec, Enc int

	vocab   map[string]int
	tokens  []string
	special map[int]bool
	// splitOn lists the special token strings recognised verbatim in input
	// text, longest first (HF added tokens).
	splitOn []string
}

// New builds a tokenizer from a vocabulary list (id = index) with the
// bert-base-uncased settings.
func New(tokens []string) (*Tokenizer, error) { return newWithUnk(tokens, UnkToken) }

// newWithUnk is New with a chosen unknown token.
func newWithUnk(tokens []string, unk string) (*Tokenizer, error) {
	if len(tokens) == 0 {
		return nil, errors.New("empty vocabulary")
	}
	t := &Tokenizer{
		CleanText: true, ChineseChars: true, StripAccents: true, Lowercase: true,
		Prefix: "##", MaxInputCharsPerWord: 100,
		vocab:   make(map[string]int, len(tokens)+2),
		tokens:  append([]string(nil), tokens...),
		special: map[int]bool{},
	}
	for id, tok := range t.tokens {
		// With duplicates HF keeps the last id for the token.
		t.vocab[tok] = id
	}
	get := func(name string, required bool) (int, error) {
		id, ok := t.vocab[name]
		if !ok {
			if required {
				return 0, fmt.Errorf("vocabulary lacks %s", name)
			}
			return -1, nil
		}
		t.addSpecial(name)
		return id, nil
	}
	var err error
	if t.Unk, err = get(unk, true); err != nil {
		return nil, err
	}
	if t.Cls, err = get(ClsToken, true); err != nil {
		return nil, err
	}
	if t.Sep, err = get(SepToken, true); err != nil {
		return nil, err
	}
	if t.Pad, err = get(PadToken, true); err != nil {
		return nil, err
	}
	t.Mask, _ = get(MaskToken, false)
	for _, name := range []string{DecToken, EncToken} {
		if _, ok := t.vocab[name]; !ok {
			t.vocab[name] = len(t.tokens)
			t.tokens = append(t.tokens, name)
		}
	}
	t.Dec, _ = get(DecToken, true)
	t.Enc, _ = get(EncToken, true)
	return t, nil
}

// addSpecial registers a special token: skipped by Decode(skipSpecial) and
// matched verbatim in input text.
func (t *Tokenizer) addSpecial(tok string) {
	id, ok := t.vocab[tok]
	if !ok || t.special[id] {
		return
	}
	t.special[id] = true
	t.splitOn = append(t.splitOn, tok)
	sort.SliceStable(t.splitOn, func(i, j int) bool { return len(t.splitOn[i]) > len(t.splitOn[j]) })
}

// VocabSize returns the number of ids, [DEC] and [ENC] included.
func (t *Tokenizer) VocabSize() int { return len(t.tokens) }

// TokenToID returns the id of a token.
func (t *Tokenizer) TokenToID(tok string) (int, bool) {
	id, ok := t.vocab[tok]
	return id, ok
}

// IDToToken returns the token of an id.
func (t *Tokenizer) IDToToken(id int) (string, bool) {
	if id < 0 || id >= len(t.tokens) {
		return "", false
	}
	return t.tokens[id], true
}

// IsSpecial reports whether id is a special token.
func (t *Tokenizer) IsSpecial(id int) bool { return t.special[id] }

// Tokenize splits text into WordPiece tokens, without [CLS]/[SEP].
func (t *Tokenizer) Tokenize(text string) []string {
	ids := t.tokenIDs(text)
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = t.tokens[id]
	}
	return out
}

// tokenIDs runs the whole pipeline on text: special tokens written in the
// text are kept whole; the rest is normalised, pre-tokenised and split
// into word pieces.
func (t *Tokenizer) tokenIDs(text string) []int {
	var ids []int
	for len(text) > 0 {
		pos, tok := t.nextSpecial(text)
		if pos < 0 {
			ids = t.appendPlain(ids, text)
			break
		}
		ids = t.appendPlain(ids, text[:pos])
		ids = append(ids, t.vocab[tok])
		text = text[pos+len(tok):]
	}
	return ids
}

// nextSpecial finds the leftmost (then longest) special token in text.
func (t *Tokenizer) nextSpecial(text string) (int, string) {
	best, bestTok := -1, ""
	for _, tok := range t.splitOn {
		if i := strings.Index(text, tok); i >= 0 && (best < 0 || i < best) {
			best, bestTok = i, tok
		}
	}
	return best, bestTok
}

// appendPlain tokenises text that holds no special token.
func (t *Tokenizer) appendPlain(ids []int, text string) []int {
	for _, w := range preTokenize(t.normalize(text)) {
		ids = t.wordPiece(ids, w)
	}
	return ids
}

// wordPiece splits one word greedily, longest match first; a word with an
// unmatchable part, or longer than MaxInputCharsPerWord characters, is
// [UNK] as a whole.
func (t *Tokenizer) wordPiece(ids []int, word string) []int {
	if utf8.RuneCountInString(word) > t.MaxInputCharsPerWord {
		return append(ids, t.Unk)
	}
	n := len(ids)
	for start := 0; start < len(word); {
		end := len(word)
		found := -1
		for start < end {
			sub := word[start:end]
			if start > 0 {
				sub = t.Prefix + sub
			}
			if id, ok := t.vocab[sub]; ok {
				found = id
				break
			}
			_, size := utf8.DecodeLastRuneInString(word[start:end])
			end -= size
		}
		if found < 0 {
			return append(ids[:n], t.Unk)
		}
		ids = append(ids, found)
		start = end
	}
	return ids
}

// Options controls Encode's framing.
type Options struct {
	// MaxLength > 0 truncates to at most MaxLength ids, [CLS] and [SEP]
	// included (values below 2 act as 2).
	MaxLength int
	// PadTo > 0 pads with [PAD] (attention mask 0) up to PadTo ids.
	PadTo int
	// PadLongest pads every sequence of a batch to the longest one.
	PadLongest bool
}

// Encoding is one encoded text.
type Encoding struct {
	IDs           []int
	AttentionMask []int
}

// Encode returns [CLS] tokens [SEP].
func (t *Tokenizer) Encode(text string) []int {
	return t.EncodeWith(text, Options{}).IDs
}

// EncodeWith encodes with truncation and padding as HF's
// tokenizer(text, max_length=..., truncation=True, padding=...) does:
// truncation drops trailing word pieces and keeps the final [SEP].
func (t *Tokenizer) EncodeWith(text string, o Options) Encoding {
	body := t.tokenIDs(text)
	if o.MaxLength > 0 {
		keep := max(o.MaxLength, 2) - 2
		if len(body) > keep {
			body = body[:keep]
		}
	}
	ids := make([]int, 0, max(len(body)+2, o.PadTo))
	ids = append(ids, t.Cls)
	ids = append(ids, body...)
	ids = append(ids, t.Sep)
	return t.pad(ids, o.PadTo)
}

// pad extends ids to n with [PAD] and builds the attention mask.
func (t *Tokenizer) pad(ids []int, n int) Encoding {
	mask := make([]int, len(ids), max(len(ids), n))
	for i := range mask {
		mask[i] = 1
	}
	for len(ids) < n {
		ids = append(ids, t.Pad)
		mask = append(mask, 0)
	}
	return Encoding{IDs: ids, AttentionMask: mask}
}

// EncodeBatch encodes several texts; with PadLongest every encoding is
// padded to the longest (and to PadTo, if larger).
func (t *Tokenizer) EncodeBatch(texts []string, o Options) []Encoding {
	out := make([]Encoding, len(texts))
	longest := 0
	for i, s := range texts {
		out[i] = t.EncodeWith(s, o)
		longest = max(longest, len(out[i].IDs))
	}
	if o.PadLongest {
		for i := range out {
			out[i] = t.pad(out[i].IDs[:len(out[i].IDs):len(out[i].IDs)], longest)
		}
	}
	return out
}

// Decode turns ids back into text as HF's decode does: tokens joined with
// spaces, "##" continuations glued to the previous piece, then HF's
// clean-up of spaces before punctuation and contractions. With skipSpecial,
// special tokens ([CLS], [SEP], [PAD], [UNK], [MASK], [DEC], [ENC]) are
// left out. Unknown ids are skipped.
func (t *Tokenizer) Decode(ids []int, skipSpecial bool) string {
	var b strings.Builder
	first := true
	for _, id := range ids {
		tok, ok := t.IDToToken(id)
		if !ok || (skipSpecial && t.special[id]) {
			continue
		}
		switch {
		case first:
			b.WriteString(tok)
		case strings.HasPrefix(tok, t.Prefix) && t.Prefix != "":
			b.WriteString(tok[len(t.Prefix):])
		default:
			b.WriteByte(' ')
			b.WriteString(tok)
		}
		first = false
	}
	return CleanUpTokenization(b.String())
}

// cleanUpReplacer undoes the spaces tokenisation put before punctuation and
// in English contractions (HF's clean_up_tokenization).
var cleanUpReplacer = []struct{ from, to string }{
	{" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"},
	{" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"},
}

// CleanUpTokenization applies HF's clean_up_tokenization: each replacement
// runs over the whole string in turn, in HF's order.
func CleanUpTokenization(s string) string {
	for _, r := range cleanUpReplacer {
		s = strings.ReplaceAll(s, r.from, r.to)
	}
	return s
}

// BOS returns the id generation starts from ([DEC]), as in HF's BLIP
// text config (bos_token_id).
func (t *Tokenizer) BOS() int { return t.Dec }

// EOS returns the id that ends a generated caption ([SEP]).
func (t *Tokenizer) EOS() int { return t.Sep }
