package capfilt

import (
	"math"
	"path/filepath"
	"testing"

	"blip/data/preprocess"
)

// TestScoreKeptScorer: the filter's scorer kept between batches (score)
// gives MatchTexts' match probability of each image alone with each text;
// it is reused while a batch's pairs round to the same rows and compiled
// again for other rows and for more images; a text naming an image past
// the batch is an error.
func TestScoreKeptScorer(t *testing.T) {
	be, ms := openTiny(t)
	var pixels []float32
	for _, name := range []string{"astronaut.png", "chelsea.png", "coffee.png"} {
		img, err := preprocess.Load(filepath.Join(imagesDir, name))
		if err != nil {
			t.Fatal(err)
		}
		px, err := ms.FilterProc.Pixels(img)
		if err != nil {
			t.Fatal(err)
		}
		pixels = append(pixels, px...)
	}
	per := len(pixels) / 3
	o := DefaultOptions()
	captions := []string{"an astronaut", "a cat sitting on a red sofa", "a cup of coffee", "a red bus on the street"}
	var texts [][]int32
	for _, c := range captions {
		texts = append(texts, encodeFilterText(ms.FilterTok, c, &o))
	}
	check := func(what string, batch int, texts [][]int32, owner []int) {
		t.Helper()
		kept, err := ms.score(be, pixels[:batch*per], batch, texts, owner, o.MaxTextTokens)
		if err != nil {
			t.Fatal(err)
		}
		for j, i := range owner {
			// Independently: MatchTexts, the image alone with the text.
			res, err := ms.Filter.MatchTexts(be, pixels[i*per:(i+1)*per], 1, texts[j:j+1])
			if err != nil {
				t.Fatal(err)
			}
			want := float64(res[0][0].ITMScore)
			if d := math.Abs(float64(kept[j]) - want); !(d <= 1e-5) {
				t.Errorf("%s: pair %d (image %d): kept scorer %v, MatchTexts %v", what, j, i, kept[j], want)
			}
		}
	}
	check("two images", 2, texts, []int{0, 1, 1, 0})
	first := ms.scorer
	check("same rows", 2, texts[:3], []int{1, 0, 1})
	if ms.scorer != first {
		t.Error("scorer compiled again for pairs of the same rows")
	}
	var many [][]int32
	var owner []int
	for j := range 9 {
		many, owner = append(many, texts[j%4]), append(owner, j%3)
	}
	check("three images, nine pairs", 3, many, owner)
	if ms.scorer == first || ms.scorer.Rows != 16 || ms.scorer.Images != 3 {
		t.Errorf("scorer of %d rows, %d images; want a new one of 16 and 3", ms.scorer.Rows, ms.scorer.Images)
	}
	if _, err := ms.score(be, pixels[:2*per], 2, texts[:1], []int{2}, o.MaxTextTokens); err == nil {
		t.Error("a text of image 2 in a batch of 2 was scored")
	}
}
