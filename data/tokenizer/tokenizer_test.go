package tokenizer

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// smallVocab is a bert-like vocabulary without [DEC]/[ENC].
var smallVocab = []string{
	"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able", "a", "##b",
	"do", "n", "'", "t", "i", "s", "the", "cat", ",", "##s", ".", "!", "?", "hello", "world",
	"$", "+", "3", "##4", "σ", "ς", "##σ", "##n",
}

func newSmall(t *testing.T) *Tokenizer {
	t.Helper()
	tok, err := New(smallVocab)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestAppendsDecEnc(t *testing.T) {
	tok := newSmall(t)
	n := len(smallVocab)
	if tok.Dec != n || tok.Enc != n+1 || tok.VocabSize() != n+2 {
		t.Errorf("DEC %d ENC %d size %d, want %d %d %d", tok.Dec, tok.Enc, tok.VocabSize(), n, n+1, n+2)
	}
	if s, _ := tok.IDToToken(tok.Dec); s != "[DEC]" {
		t.Errorf("IDToToken(DEC) = %q", s)
	}
}

func TestWordPiece(t *testing.T) {
	tok := newSmall(t)
	cases := []struct {
		in   string
		want []string
	}{
		{"unaffable", []string{"un", "##aff", "##able"}},
		{"UNAFFABLE!", []string{"un", "##aff", "##able", "!"}},
		{"ab", []string{"a", "##b"}},
		{"unx", []string{"[UNK]"}},                     // unmatchable remainder: whole word [UNK]
		{"don't", []string{"do", "##n", "'", "t"}},     // apostrophe is punctuation
		{"$3+34", []string{"$", "3", "+", "3", "##4"}}, // ASCII symbols count as punctuation
		{"  hello\u00a0world\u3000", []string{"hello", "world"}},
		{"hello\u200bworld", []string{"[UNK]"}}, // U+200B is a format char: removed, words join
		{"the cat[SEP]", []string{"the", "cat", "[SEP]"}},
		{"[mask] [MASK]", []string{"[UNK]", "[UNK]", "[UNK]", "[MASK]"}}, // specials match verbatim only
		{"", nil},
	}
	for _, c := range cases {
		got := tok.Tokenize(c.in)
		if !reflect.DeepEqual(got, c.want) && !(len(got) == 0 && len(c.want) == 0) {
			t.Errorf("Tokenize(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	// Words longer than 100 characters are [UNK]; 100 is still split.
	b := strings.Repeat("b", 101)
	if got := tok.Tokenize("a" + b[:99]); len(got) != 100 {
		t.Errorf("100-char word a+b*99: %d pieces", len(got))
	}
	if got := tok.Tokenize("a" + b[:100]); len(got) != 1 || got[0] != "[UNK]" {
		t.Errorf("101-char word: %q", got)
	}
}

func TestEncodeOptions(t *testing.T) {
	tok := newSmall(t)
	e := tok.EncodeWith("the cat, the cat.", Options{MaxLength: 5, PadTo: 8})
	want := []int{2, 16, 17, 18, 3, 0, 0, 0}
	if !reflect.DeepEqual(e.IDs, want) || !reflect.DeepEqual(e.AttentionMask, []int{1, 1, 1, 1, 1, 0, 0, 0}) {
		t.Errorf("got %v %v", e.IDs, e.AttentionMask)
	}
	if got := tok.EncodeWith("the cat", Options{MaxLength: 1}).IDs; !reflect.DeepEqual(got, []int{2, 3}) {
		t.Errorf("MaxLength 1: %v", got)
	}
	if got := tok.EncodeWith("the cat", Options{PadTo: 2}).IDs; !reflect.DeepEqual(got, []int{2, 16, 17, 3}) {
		t.Errorf("PadTo shorter than the text: %v", got)
	}
	batch := tok.EncodeBatch([]string{"the", "the cat cat cat"}, Options{PadLongest: true})
	if len(batch[0].IDs) != 6 || batch[0].AttentionMask[2] != 1 || batch[0].AttentionMask[3] != 0 {
		t.Errorf("batch %v", batch)
	}
}

func TestDecode(t *testing.T) {
	tok := newSmall(t)
	ids := tok.Encode("un affable")
	if got := tok.Decode(ids, false); got != "[CLS] un [UNK] [SEP]" {
		t.Errorf("Decode = %q", got)
	}
	ids = tok.Encode("the cats, hello world! unaffable?")
	if got := tok.Decode(ids, true); got != "the cats, hello world! unaffable?" {
		t.Errorf("Decode = %q", got)
	}
	// HF's clean-up of contractions.
	// "do ##n ' t" joins to "don ' t"; the clean-up turns " ' " into "'".
	if got := tok.Decode(tok.Encode("don't"), true); got != "don't" {
		t.Errorf("don't -> %q", got)
	}
	if got := tok.Decode([]int{tok.Dec, 16, 17, 9999, -1, tok.Sep}, true); got != "the cat" {
		t.Errorf("skip special and unknown ids: %q", got)
	}
	if got := CleanUpTokenization("a , b . c ' s it 's we 're"); got != "a, b. c's it's we're" {
		t.Errorf("clean up: %q", got)
	}
}

func TestSigmaAndAccents(t *testing.T) {
	tok := newSmall(t)
	// tokenizers lowercases per character: no final-sigma rule.
	if got := tok.Tokenize("ΣΣ"); !reflect.DeepEqual(got, []string{"σ", "##σ"}) {
		t.Errorf("ΣΣ -> %q", got)
	}
	if got := tok.Tokenize("İ"); !reflect.DeepEqual(got, []string{"i"}) {
		t.Errorf("İ -> %q", got)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadDir(dir); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("empty dir: %v", err)
	}
	p := filepath.Join(dir, "vocab.txt")
	os.WriteFile(p, []byte("[PAD]\n[UNK]\n[CLS]\n"), 0o644)
	if _, err := LoadVocab(p); err == nil || !strings.Contains(err.Error(), "[SEP]") || !strings.Contains(err.Error(), p) {
		t.Errorf("missing [SEP]: %v", err)
	}
	if _, err := LoadVocab(filepath.Join(dir, "nope.txt")); err == nil {
		t.Error("missing file")
	}
	j := filepath.Join(dir, "tokenizer.json")
	os.WriteFile(j, []byte(`{"model": {"type": "BPE", "vocab": {}}}`), 0o644)
	if _, err := LoadJSON(j); err == nil || !strings.Contains(err.Error(), "WordPiece") {
		t.Errorf("BPE model: %v", err)
	}
	os.WriteFile(j, []byte(`{"model": {"type": "WordPiece", "vocab": {"[PAD]": 0, "[UNK]": 5}}}`), 0o644)
	if _, err := LoadJSON(j); err == nil {
		t.Error("gap in ids accepted")
	}
}

func TestLoadJSON(t *testing.T) {
	// A tokenizer.json shaped like Salesforce/blip-*'s: WordPiece vocab,
	// [DEC]/[ENC] as added special tokens after the vocabulary.
	dir := t.TempDir()
	js := `{"added_tokens": [
	  {"id": 0, "content": "[PAD]", "special": true},
	  {"id": 5, "content": "[DEC]", "special": true},
	  {"id": 6, "content": "[ENC]", "special": true}],
	 "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
	   "strip_accents": null, "lowercase": true},
	 "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
	   "max_input_chars_per_word": 100,
	   "vocab": {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "cafe": 4}}}`
	os.WriteFile(filepath.Join(dir, "tokenizer.json"), []byte(js), 0o644)
	tok, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Dec != 5 || tok.Enc != 6 || tok.Mask != -1 || tok.VocabSize() != 7 || !tok.StripAccents {
		t.Errorf("DEC %d ENC %d MASK %d size %d strip %v", tok.Dec, tok.Enc, tok.Mask, tok.VocabSize(), tok.StripAccents)
	}
	if got := tok.Encode("CAFÉ [DEC]"); !reflect.DeepEqual(got, []int{2, 4, 5, 3}) {
		t.Errorf("Encode = %v", got)
	}
}
