package shapes

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"blip/data/tokenizer"
)

func TestVocabularyLayout(t *testing.T) {
	v := Vocabulary()
	head := []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}
	for i, tok := range head {
		if v[i] != tok {
			t.Fatalf("token %d = %q, want %q", i, v[i], tok)
		}
	}
	if v[len(v)-2] != "[DEC]" || v[len(v)-1] != "[ENC]" {
		t.Fatalf("vocabulary ends %q", v[len(v)-2:])
	}
	seen := map[string]bool{}
	for _, tok := range v {
		if seen[tok] || tok == "" || strings.ContainsAny(tok, " \t\n") {
			t.Fatalf("bad or repeated token %q", tok)
		}
		seen[tok] = true
	}
	for _, w := range []string{"picture", "hexagons", "crosses", "middle", "4", "yes", "an"} {
		if !seen[w] {
			t.Errorf("vocabulary lacks %q", w)
		}
	}
	t.Logf("%d tokens", len(v))
}

// The vocabulary, loaded by data/tokenizer, tokenises every caption,
// question, answer and BLIP's prompt into whole words, never [UNK].
func TestVocabularyCoversText(t *testing.T) {
	path := filepath.Join(t.TempDir(), VocabFile)
	if err := WriteVocab(path); err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.LoadVocab(path)
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := tok.TokenToID("[PAD]"); id != 0 || tok.Dec != tok.VocabSize()-2 || tok.Enc != tok.VocabSize()-1 {
		t.Fatalf("pad %d dec %d enc %d of %d", id, tok.Dec, tok.Enc, tok.VocabSize())
	}
	d := testDataset(t)
	check := func(text string) {
		words := strings.Fields(text)
		got := tok.Tokenize(text)
		if len(got) != len(words) {
			t.Errorf("%q tokenises to %q", text, got)
			return
		}
		for i, w := range got {
			if w != words[i] {
				t.Errorf("%q tokenises to %q", text, got)
				return
			}
		}
	}
	check("a picture of")
	for _, a := range AnswerList(d.Config) {
		check(a)
	}
	for _, s := range d.Scenes {
		for _, c := range s.Captions {
			check(c)
			check("a picture of " + c)
		}
		for _, q := range s.Questions {
			check(q.Question)
		}
	}
	// One token per line.
	data, _ := os.ReadFile(path)
	if n := strings.Count(string(data), "\n"); n != len(Vocabulary()) {
		t.Errorf("vocab.txt has %d lines, want %d", n, len(Vocabulary()))
	}
}
