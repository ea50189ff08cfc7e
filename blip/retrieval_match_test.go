package blip

import (
	"testing"
)

// TestMatchTextsGolden: MatchTexts (the vision encoder once per image, its
// states gathered to every text) gives transformers' all-pairs ITM logits
// and ITC cosines, and the embeddings' dot products are the cosines.
func TestMatchTextsGolden(t *testing.T) {
	gd := openGolden(t)
	texts := gd.texts()
	b := len(texts)
	pixels := gd.f32("pixel_values")
	for _, bc := range backends {
		t.Run(bc.name, func(t *testing.T) {
			be := bc.open(t)
			m := loadTiny(t, "tiny-retrieval", be)
			res, err := m.MatchTexts(be, pixels, b, texts)
			if err != nil {
				t.Fatal(err)
			}
			var logits, cos []float32
			for i := range b {
				for j := range b {
					logits = append(logits, res[i][j].ITMLogits[:]...)
					cos = append(cos, res[i][j].Cosine)
				}
			}
			checkClose(t, "itm_logits_all_pairs", logits, gd.f32("itm.itm_logits_all_pairs"), bc.tol)
			checkClose(t, "cosine_sim", cos, gd.f32("itm.cosine_sim"), bc.tol)
			img, err := m.ImageEmbeddings(be, pixels, b)
			if err != nil {
				t.Fatal(err)
			}
			txt, err := m.TextEmbeddings(be, texts)
			if err != nil {
				t.Fatal(err)
			}
			d := m.Config.ImageTextHiddenSize
			dots := make([]float32, b*b)
			for i := range b {
				for j := range b {
					for k := range d {
						dots[i*b+j] += img[i*d+k] * txt[j*d+k]
					}
				}
			}
			checkClose(t, "embedding dot products", dots, gd.f32("itm.cosine_sim"), bc.tol)
		})
	}
}
