// Package augment implements BLIP's image transforms (salesforce/BLIP
// data/__init__.py and transform/randaugment.py) on 8-bit RGB images:
//
//	train: RandomResizedCrop(size, scale=(minScale, 1), ratio=(3/4, 4/3),
//	       bicubic) -> RandomHorizontalFlip(0.5) -> RandomAugment(2, 5, ...)
//	       -> ToTensor -> Normalize(CLIP mean, std)
//	test:  Resize((size, size), bicubic) -> ToTensor -> Normalize
//
// Randomness comes from a *rand.Rand seeded per sample (SampleSeed), so the
// output depends only on (run seed, epoch, sample index), whatever worker
// loads the sample. The random stream is not numpy's or torch's: the
// distributions and the order of draws follow the reference, the values do
// not.
package augment

import (
	"fmt"
	"math/rand/v2"

	"blip/data/preprocess"
)

// BLIP's crop scale lower bounds: 0.2 for pretraining, 0.5 (create_dataset's
// default min_scale) for fine-tuning.
const (
	PretrainMinScale = 0.2
	FinetuneMinScale = 0.5
)

// splitmix64 is a 64-bit mixing step (Steele et al.).
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// SampleSeed derives the seed of one sample from the run seed, the epoch and
// the sample's index in the dataset.
func SampleSeed(runSeed uint64, epoch, index int) uint64 {
	s := splitmix64(runSeed)
	s = splitmix64(s ^ uint64(int64(epoch)))
	return splitmix64(s ^ uint64(int64(index)))
}

// NewRand returns the generator used for one sample.
func NewRand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, splitmix64(seed^0x5851f42d4c957f2d)))
}

// Transform is BLIP's train or test image pipeline.
type Transform struct {
	Size  int
	Train bool
	Crop  RandomResizedCrop // train only
	FlipP float64           // train only; probability of a horizontal flip
	Aug   *RandomAugment    // train only; nil skips it
	// Mean and Std of the normalisation (CLIP's by default).
	Mean, Std [3]float64
}

// NewTrain returns BLIP's training transform at size x size; minScale is
// PretrainMinScale or FinetuneMinScale.
func NewTrain(size int, minScale float64) *Transform {
	return &Transform{
		Size: size, Train: true,
		Crop:  NewRandomResizedCrop(size, minScale),
		FlipP: 0.5,
		Aug:   NewBLIPRandomAugment(),
		Mean:  preprocess.ClipMean, Std: preprocess.ClipStd,
	}
}

// NewTest returns BLIP's evaluation transform at size x size.
func NewTest(size int) *Transform {
	return &Transform{Size: size, Mean: preprocess.ClipMean, Std: preprocess.ClipStd}
}

// Image applies the geometric and colour steps and returns the 8-bit image
// before normalisation.
func (t *Transform) Image(img *preprocess.RGB, seed uint64) (*preprocess.RGB, error) {
	if t.Size <= 0 {
		return nil, fmt.Errorf("augment: size %d must be positive", t.Size)
	}
	if img == nil || img.W <= 0 || img.H <= 0 {
		return nil, fmt.Errorf("augment: empty image")
	}
	if !t.Train {
		return preprocess.Resize(img, t.Size, t.Size, preprocess.Bicubic)
	}
	if t.Aug != nil {
		if err := t.Aug.Validate(); err != nil {
			return nil, err
		}
	}
	r := NewRand(seed)
	out, err := t.Crop.Apply(img, r)
	if err != nil {
		return nil, err
	}
	if r.Float64() < t.FlipP {
		out = HFlip(out)
	}
	if t.Aug != nil {
		out, _ = t.Aug.Apply(out, r)
	}
	return out, nil
}

// Apply runs the whole pipeline: 3*Size*Size float32 values in CHW order.
func (t *Transform) Apply(img *preprocess.RGB, seed uint64) ([]float32, error) {
	m, err := t.Image(img, seed)
	if err != nil {
		return nil, err
	}
	return Normalize(m, t.Mean, t.Std), nil
}

// Normalize converts to CHW float32 as torchvision's ToTensor (float32
// division by 255) followed by Normalize ((x - mean) / std in float32).
func Normalize(img *preprocess.RGB, mean, std [3]float64) []float32 {
	var lut [3][256]float32
	for c := 0; c < 3; c++ {
		m, s := float32(mean[c]), float32(std[c])
		for v := 0; v < 256; v++ {
			x := float32(v) / 255
			lut[c][v] = (x - m) / s
		}
	}
	n := img.W * img.H
	out := make([]float32, 3*n)
	for i := 0; i < n; i++ {
		for c := 0; c < 3; c++ {
			out[c*n+i] = lut[c][img.Pix[3*i+c]]
		}
	}
	return out
}
