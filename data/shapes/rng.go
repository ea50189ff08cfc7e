package shapes

// rng is SplitMix64. It is written out here rather than taken from
// math/rand because the generator promises the same bytes for the same seed
// across Go releases, and math/rand's derived methods (IntN, Shuffle, ...)
// carry no such promise.
type rng struct{ s uint64 }

// Streams give each image independent random sequences for its layout, its
// captions, its questions and its pixels, so that changing, say, the number
// of paraphrases leaves every image and question unchanged.
const (
	streamLayout uint64 = iota + 1
	streamCaption
	streamQuestion
	streamTexture
	streamNoisy
)

// newRNG seeds a generator from the dataset seed, an image index and a
// stream, mixing each in so that nearby inputs give unrelated sequences.
func newRNG(seed int64, index int, stream uint64) *rng {
	h := mix64(uint64(seed) ^ 0x6a09e667f3bcc909)
	h = mix64(h ^ uint64(index))
	h = mix64(h ^ stream*0x9e3779b97f4a7c15)
	return &rng{s: h}
}

// mix64 is SplitMix64's output function.
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func (r *rng) uint64() uint64 {
	r.s += 0x9e3779b97f4a7c15
	return mix64(r.s)
}

// intn returns a uniform integer in [0, n) for n > 0, without modulo bias.
func (r *rng) intn(n int) int {
	if n <= 1 {
		return 0
	}
	bound := uint64(n)
	limit := -bound % bound // 2^64 mod n: values below it are biased
	for {
		if x := r.uint64(); x >= limit {
			return int(x % bound)
		}
	}
}

// float returns a uniform float64 in [0, 1).
func (r *rng) float() float64 { return float64(r.uint64()>>11) / (1 << 53) }

// uniform returns a uniform float64 in [lo, hi). The conversion keeps the
// compiler from fusing the multiply-add, so the value is the same on every
// architecture.
func (r *rng) uniform(lo, hi float64) float64 { return lo + float64((hi-lo)*r.float()) }

// perm returns a uniform permutation of 0..n-1 (Fisher-Yates).
func (r *rng) perm(n int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	for i := n - 1; i > 0; i-- {
		j := r.intn(i + 1)
		p[i], p[j] = p[j], p[i]
	}
	return p
}

// pick returns a uniform element of a non-empty slice.
func pick[T any](r *rng, xs []T) T { return xs[r.intn(len(xs))] }
