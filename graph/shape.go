package graph

import (
	"fmt"
	"strings"
)

// Shape is the size of each dimension of a tensor, outermost first
// (row-major). The empty shape is a scalar of one element.
type Shape []int

// Numel is the number of elements.
func (s Shape) Numel() int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

// Rank is the number of dimensions.
func (s Shape) Rank() int { return len(s) }

// Last is the innermost dimension (1 for a scalar).
func (s Shape) Last() int {
	if len(s) == 0 {
		return 1
	}
	return s[len(s)-1]
}

// Rows is the product of every dimension but the last: the number of rows a
// row-wise kernel sees.
func (s Shape) Rows() int {
	if len(s) == 0 {
		return 1
	}
	return Shape(s[:len(s)-1]).Numel()
}

// Equal reports whether s and t have the same dimensions.
func (s Shape) Equal(t Shape) bool {
	if len(s) != len(t) {
		return false
	}
	for i := range s {
		if s[i] != t[i] {
			return false
		}
	}
	return true
}

// Clone returns a copy that does not share memory with s.
func (s Shape) Clone() Shape { return append(Shape{}, s...) }

// String formats s like a Python tuple: (2, 5, 768); a scalar is ().
func (s Shape) String() string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = fmt.Sprint(d)
	}
	if len(s) == 1 {
		return "(" + parts[0] + ",)"
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// valid reports whether every dimension is positive.
func (s Shape) valid() bool {
	for _, d := range s {
		if d <= 0 {
			return false
		}
	}
	return true
}

// trimLeadingOnes drops leading dimensions of size 1: (1, 577, 768) and
// (577, 768) broadcast alike.
func (s Shape) trimLeadingOnes() Shape {
	i := 0
	for i < len(s) && s[i] == 1 {
		i++
	}
	return s[i:]
}

// isSuffixOf reports whether s, without leading ones, equals the innermost
// dimensions of t: then s broadcasts over t's leading dimensions as a
// repeated block of s.Numel() elements.
func (s Shape) isSuffixOf(t Shape) bool {
	u := s.trimLeadingOnes()
	if len(u) > len(t) {
		return false
	}
	return u.Equal(t[len(t)-len(u):])
}

// axis resolves a possibly negative axis of a rank-r shape.
func axis(a, r int) (int, bool) {
	if a < 0 {
		a += r
	}
	return a, a >= 0 && a < r
}
