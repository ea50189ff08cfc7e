package metrics

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"
)

// The fixtures and the numbers the original Python code gives for them
// (written by testdata/metrics/make_reference.py).
var fixtureDir = filepath.Join("..", "..", "testdata", "metrics")

type captionSet struct {
	Name       string              `json:"name"`
	Candidates map[string][]string `json:"candidates"`
	References map[string][]string `json:"references"`
}

type vqaCase struct {
	Name    string   `json:"name"`
	Pred    string   `json:"pred"`
	Answers []string `json:"answers"`
}

type expectedFile struct {
	Captions map[string]struct {
		Bleu         [4]float64            `json:"bleu"`
		BleuPerItem  map[string][4]float64 `json:"bleu_per_item"`
		Cider        float64               `json:"cider"`
		CiderPerItem map[string]float64    `json:"cider_per_item"`
	} `json:"captions"`
	VQA struct {
		Accuracy       map[string]float64 `json:"accuracy"`
		OverallPercent float64            `json:"overall_percent"`
		Normalize      [][2]string        `json:"normalize"`
		Tables         struct {
			Contractions map[string]string `json:"contractions"`
			ManualMap    map[string]string `json:"manualMap"`
			Articles     []string          `json:"articles"`
			Punct        []string          `json:"punct"`
		} `json:"tables"`
	} `json:"vqa"`
}

func readJSON(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func loadExpected(t *testing.T) *expectedFile {
	var e expectedFile
	readJSON(t, "expected.json", &e)
	return &e
}

// near reports whether got matches want to 1e-9 relative (with a 1e-15
// absolute floor for values that are exactly zero in the reference).
func near(got, want float64) bool {
	return math.Abs(got-want) <= 1e-9*math.Max(math.Abs(got), math.Abs(want))+1e-15
}

func TestCaptionMetricsMatchPycocoevalcap(t *testing.T) {
	var fx struct {
		Sets []captionSet `json:"sets"`
	}
	readJSON(t, "captions.json", &fx)
	exp := loadExpected(t)
	if len(fx.Sets) == 0 {
		t.Fatal("no caption sets")
	}
	for _, s := range fx.Sets {
		want, ok := exp.Captions[s.Name]
		if !ok {
			t.Fatalf("set %s: no expected numbers (rerun make_reference.py)", s.Name)
		}
		b, err := BleuScores(s.Candidates, s.References)
		if err != nil {
			t.Fatalf("set %s: %v", s.Name, err)
		}
		for k := range BleuN {
			if !near(b.Corpus[k], want.Bleu[k]) {
				t.Errorf("set %s: BLEU-%d = %.17g, pycocoevalcap %.17g", s.Name, k+1, b.Corpus[k], want.Bleu[k])
			}
		}
		if len(b.PerItem) != len(want.BleuPerItem) {
			t.Errorf("set %s: %d BLEU items, want %d", s.Name, len(b.PerItem), len(want.BleuPerItem))
		}
		for id, w := range want.BleuPerItem {
			g := b.PerItem[id]
			for k := range BleuN {
				if !near(g[k], w[k]) {
					t.Errorf("set %s id %s: BLEU-%d = %.17g, pycocoevalcap %.17g", s.Name, id, k+1, g[k], w[k])
				}
			}
		}
		corpus, err := Bleu(s.Candidates, s.References)
		if err != nil || corpus != b.Corpus {
			t.Errorf("set %s: Bleu = %v, %v; BleuScores gave %v", s.Name, corpus, err, b.Corpus)
		}

		c, err := CiderScores(s.Candidates, s.References)
		if err != nil {
			t.Fatalf("set %s: %v", s.Name, err)
		}
		if !near(c.Corpus, want.Cider) {
			t.Errorf("set %s: CIDEr = %.17g, pycocoevalcap %.17g", s.Name, c.Corpus, want.Cider)
		}
		if len(c.PerItem) != len(want.CiderPerItem) {
			t.Errorf("set %s: %d CIDEr items, want %d", s.Name, len(c.PerItem), len(want.CiderPerItem))
		}
		for id, w := range want.CiderPerItem {
			if !near(c.PerItem[id], w) {
				t.Errorf("set %s id %s: CIDEr = %.17g, pycocoevalcap %.17g", s.Name, id, c.PerItem[id], w)
			}
		}
		cc, err := Cider(s.Candidates, s.References)
		if err != nil || cc != c.Corpus {
			t.Errorf("set %s: Cider = %v, %v; CiderScores gave %v", s.Name, cc, err, c.Corpus)
		}
	}
}

func TestCaptionMetricsInputErrors(t *testing.T) {
	refs := map[string][]string{"1": {"a dog"}, "2": {"a cat"}}
	for name, cands := range map[string]map[string][]string{
		"missing id":     {"1": {"a dog"}},
		"unknown id":     {"1": {"a dog"}, "3": {"a cat"}},
		"two candidates": {"1": {"a dog", "a cat"}, "2": {"a cat"}},
		"no candidate":   {"1": {}, "2": {"a cat"}},
	} {
		if _, err := Bleu(cands, refs); err == nil {
			t.Errorf("Bleu with %s: no error", name)
		}
		if _, err := Cider(cands, refs); err == nil {
			t.Errorf("Cider with %s: no error", name)
		}
	}
	if _, err := Bleu(map[string][]string{"1": {"x"}}, map[string][]string{"1": {}}); err == nil {
		t.Error("Bleu with no references: no error")
	}
	if _, err := Cider(map[string][]string{}, map[string][]string{}); err == nil {
		t.Error("Cider with nothing: no error")
	}
}

func TestCiderExactMatch(t *testing.T) {
	// A one-word candidate equal to its only reference: only the unigram
	// order has weight, no length penalty.
	cands := map[string][]string{"a": {"dog"}, "b": {"cat sat"}}
	refs := map[string][]string{"a": {"dog"}, "b": {"a cat sat"}}
	c, err := CiderScores(cands, refs)
	if err != nil {
		t.Fatal(err)
	}
	// Cosine 1 for unigrams, 0 for the other orders: 10 * 1/4.
	if !near(c.PerItem["a"], 10.0/4) {
		t.Errorf("CIDEr(a) = %v, want 2.5", c.PerItem["a"])
	}
}

func TestVQAAccuracyMatchesOfficial(t *testing.T) {
	var fx struct {
		Cases     []vqaCase `json:"cases"`
		Normalize []string  `json:"normalize"`
	}
	readJSON(t, "vqa.json", &fx)
	exp := loadExpected(t)
	if len(fx.Cases) != len(exp.VQA.Accuracy) {
		t.Fatalf("%d cases, %d expected (rerun make_reference.py)", len(fx.Cases), len(exp.VQA.Accuracy))
	}
	preds := map[string]string{}
	gts := map[string][]string{}
	for _, c := range fx.Cases {
		want, ok := exp.VQA.Accuracy[c.Name]
		if !ok {
			t.Fatalf("case %s: no expected accuracy", c.Name)
		}
		if got := VQAAccuracy(c.Pred, c.Answers); !near(got, want) {
			t.Errorf("case %s: VQAAccuracy(%q, %q) = %.17g, official %.17g", c.Name, c.Pred, c.Answers, got, want)
		}
		preds[c.Name] = c.Pred
		gts[c.Name] = c.Answers
	}
	mean, per, err := VQAAccuracies(preds, gts)
	if err != nil {
		t.Fatal(err)
	}
	if len(per) != len(fx.Cases) {
		t.Errorf("VQAAccuracies: %d per-question scores", len(per))
	}
	// The official overall is round(100 * mean, 2).
	if r := math.Round(100*mean*100) / 100; r != exp.VQA.OverallPercent {
		t.Errorf("overall %.2f, official %.2f", r, exp.VQA.OverallPercent)
	}

	if len(exp.VQA.Normalize) != len(fx.Normalize) {
		t.Fatalf("%d normalisation cases, %d expected", len(fx.Normalize), len(exp.VQA.Normalize))
	}
	for _, p := range exp.VQA.Normalize {
		if got := NormalizeVQAAnswer(p[0]); got != p[1] {
			t.Errorf("NormalizeVQAAnswer(%q) = %q, official %q", p[0], got, p[1])
		}
	}
}

func TestVQATablesMatchOfficial(t *testing.T) {
	tb := loadExpected(t).VQA.Tables
	if !reflect.DeepEqual(vqaContractions, tb.Contractions) {
		for k, v := range tb.Contractions {
			if vqaContractions[k] != v {
				t.Errorf("contraction %q: %q, official %q", k, vqaContractions[k], v)
			}
		}
		for k := range vqaContractions {
			if _, ok := tb.Contractions[k]; !ok {
				t.Errorf("contraction %q not in the official table", k)
			}
		}
	}
	if !reflect.DeepEqual(vqaNumbers, tb.ManualMap) {
		t.Errorf("number words %v, official %v", vqaNumbers, tb.ManualMap)
	}
	if !reflect.DeepEqual(vqaPunct, tb.Punct) {
		t.Errorf("punctuation %q, official %q", vqaPunct, tb.Punct)
	}
	var arts []string
	for a := range vqaArticles {
		arts = append(arts, a)
	}
	sort.Strings(arts)
	want := append([]string(nil), tb.Articles...)
	sort.Strings(want)
	if !reflect.DeepEqual(arts, want) {
		t.Errorf("articles %q, official %q", arts, want)
	}
}

func TestVQAAccuraciesErrors(t *testing.T) {
	gts := map[string][]string{"1": {"yes"}}
	if _, _, err := VQAAccuracies(map[string]string{}, gts); err == nil {
		t.Error("missing prediction: no error")
	}
	if _, _, err := VQAAccuracies(map[string]string{"1": "yes", "2": "no"}, gts); err == nil {
		t.Error("unknown question: no error")
	}
	if _, _, err := VQAAccuracies(map[string]string{"1": "yes"}, map[string][]string{"1": nil}); err == nil {
		t.Error("no human answers: no error")
	}
	if got := VQAAccuracy("yes", nil); got != 0 {
		t.Errorf("no answers: %v", got)
	}
}

func TestPTBTokenize(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"A dog, running on the beach.", "a dog running on the beach"},
		{"Don't stop! The dog's bone.", "do n't stop the dog 's bone"},
		{"A black-and-white photo of 1,000 \"cats\" at 10:30...", "a black-and-white photo of 1,000 cats at 10:30"},
		{"A man (in red) on a bike", "a man -lrb- in red -rrb- on a bike"},
		{"The U.S. flag; a 3.5 inch disk?", "the u.s. flag a 3.5 inch disk"},
		{"two dogs' toys", "two dogs toys"},
		{"He said 'hi' -- then left - fast.", "he said hi then left fast"},
		{"I cannot go; we're fine, they've left", "i can not go we 're fine they 've left"},
		{"A  man\nriding\ta horse", "a man riding a horse"},
		{"\u201cQuoted\u201d caf\u00e9 \u2014 it\u2019s nice\u2026", "quoted caf\u00e9 it 's nice"},
		{"", ""},
		{"...", ""},
	} {
		if got := PTBTokenize(c.in); got != c.want {
			t.Errorf("PTBTokenize(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	all := PTBTokenizeAll(map[string][]string{"1": {"A Dog.", "Two cats!"}})
	if !reflect.DeepEqual(all, map[string][]string{"1": {"a dog", "two cats"}}) {
		t.Errorf("PTBTokenizeAll: %q", all)
	}
}
