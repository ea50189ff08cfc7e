package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"blip/data/safetensors"
)

var goldenDir = filepath.Join("..", "..", "testdata", "hf-blip-tiny")

// golden is the part of golden.json used here.
type golden struct {
	Special   map[string]int `json:"special"`
	Captions  []string       `json:"captions"`
	Tokenizer struct {
		Strings []string `json:"strings"`
		IDs     [][]int  `json:"ids"`
	} `json:"tokenizer"`
	VocabSize int `json:"vocab_size"`
}

func loadGolden(t *testing.T) golden {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(goldenDir, "golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	return g
}

func tinyTokenizer(t *testing.T) *Tokenizer {
	t.Helper()
	tok, err := LoadDir(filepath.Join(goldenDir, "tiny-captioning"))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestGoldenStrings: the ids the tokenizers library gave for golden.json's
// strings (lowercasing, accents, CJK, punctuation, [UNK], long words).
func TestGoldenStrings(t *testing.T) {
	g := loadGolden(t)
	tok := tinyTokenizer(t)
	if len(g.Tokenizer.Strings) == 0 || len(g.Tokenizer.Strings) != len(g.Tokenizer.IDs) {
		t.Fatalf("golden has %d strings, %d id lists", len(g.Tokenizer.Strings), len(g.Tokenizer.IDs))
	}
	for i, s := range g.Tokenizer.Strings {
		got := tok.Encode(s)
		if !reflect.DeepEqual(got, g.Tokenizer.IDs[i]) {
			t.Errorf("Encode(%q) = %v, want %v (tokens %q)", s, got, g.Tokenizer.IDs[i], tok.Tokenize(s))
		}
	}
}

func TestGoldenSpecialIDs(t *testing.T) {
	g := loadGolden(t)
	tok := tinyTokenizer(t)
	got := map[string]int{"PAD": tok.Pad, "CLS": tok.Cls, "SEP": tok.Sep, "DEC": tok.Dec, "ENC": tok.Enc}
	for k, v := range g.Special {
		if got[k] != v {
			t.Errorf("%s = %d, want %d", k, got[k], v)
		}
	}
	if tok.Unk != 1 || tok.Mask != 4 || tok.Dec != 135 || tok.Enc != 136 {
		t.Errorf("UNK %d MASK %d DEC %d ENC %d", tok.Unk, tok.Mask, tok.Dec, tok.Enc)
	}
	if tok.VocabSize() != g.VocabSize {
		t.Errorf("vocab size %d, want %d ([DEC]/[ENC] already in the tiny vocab)", tok.VocabSize(), g.VocabSize)
	}
}

// TestGoldenCaptionIDs: the captions padded to the batch's longest give the
// golden input_ids and attention masks: [CLS] first for retrieval (itm.*),
// [DEC] first for captioning (cap.*).
func TestGoldenCaptionIDs(t *testing.T) {
	g := loadGolden(t)
	tok := tinyTokenizer(t)
	f, err := safetensors.Open(filepath.Join(goldenDir, "golden.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	enc := tok.EncodeBatch(g.Captions, Options{PadLongest: true})
	for _, prefix := range []string{"itm", "cap"} {
		ids, err := f.Int64(prefix + ".input_ids")
		if err != nil {
			t.Fatal(err)
		}
		mask, err := f.Int64(prefix + ".attention_mask")
		if err != nil {
			t.Fatal(err)
		}
		info, _ := f.Info(prefix + ".input_ids")
		width := int(info.Shape[1])
		for i, e := range enc {
			if len(e.IDs) != width {
				t.Fatalf("%s row %d: length %d, want %d", prefix, i, len(e.IDs), width)
			}
			for j := range e.IDs {
				want := e.IDs[j]
				if prefix == "cap" && j == 0 {
					want = tok.Dec // BLIP's decoder input starts with [DEC]
				}
				if int64(want) != ids[i*width+j] || int64(e.AttentionMask[j]) != mask[i*width+j] {
					t.Errorf("%s row %d: ids %v mask %v, want ids %v mask %v", prefix, i, e.IDs, e.AttentionMask,
						ids[i*width:(i+1)*width], mask[i*width:(i+1)*width])
					break
				}
			}
		}
	}
}

// TestGoldenDecodeRoundTrip: captions survive encode + decode.
func TestGoldenDecodeRoundTrip(t *testing.T) {
	g := loadGolden(t)
	tok := tinyTokenizer(t)
	for _, c := range g.Captions {
		if got := tok.Decode(tok.Encode(c), true); got != c {
			t.Errorf("round trip %q -> %q", c, got)
		}
	}
	// Generated ids (start with [DEC], end with [SEP]) decode to text.
	if got := tok.Decode([]int{135, 11, 77, 65, 11, 84, 3, 0, 0}, true); got != "a picture of a cat" {
		t.Errorf("decode = %q", got)
	}
}
