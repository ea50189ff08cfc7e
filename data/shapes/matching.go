package shapes

import "math"

// maxWeightMatching returns a one-to-one matching of rows to columns with
// the largest total weight (Hungarian algorithm, O(n^2 m)): match[r] is
// row r's column, or -1 when there are more rows than columns.
func maxWeightMatching(w [][]float64) []int {
	n := len(w)
	match := make([]int, n)
	for i := range match {
		match[i] = -1
	}
	if n == 0 || len(w[0]) == 0 {
		return match
	}
	m := len(w[0])
	if n > m { // solve the transpose, which has rows <= columns
		t := make([][]float64, m)
		for j := range t {
			t[j] = make([]float64, n)
			for i := range w {
				t[j][i] = w[i][j]
			}
		}
		for j, i := range maxWeightMatching(t) {
			if i >= 0 {
				match[i] = j
			}
		}
		return match
	}
	// Minimise cost = -weight; 1-based potentials as in the classic
	// formulation, column 0 a sentinel.
	inf := math.Inf(1)
	u := make([]float64, n+1)
	v := make([]float64, m+1)
	p := make([]int, m+1) // p[j]: row matched to column j (1-based), 0 free
	way := make([]int, m+1)
	for i := 1; i <= n; i++ {
		p[0] = i
		j0 := 0
		minv := make([]float64, m+1)
		used := make([]bool, m+1)
		for j := range minv {
			minv[j] = inf
		}
		for {
			used[j0] = true
			i0, delta, j1 := p[j0], inf, 0
			for j := 1; j <= m; j++ {
				if used[j] {
					continue
				}
				cur := -w[i0-1][j-1] - u[i0] - v[j]
				if cur < minv[j] {
					minv[j], way[j] = cur, j0
				}
				if minv[j] < delta {
					delta, j1 = minv[j], j
				}
			}
			for j := 0; j <= m; j++ {
				if used[j] {
					u[p[j]] += delta
					v[j] -= delta
				} else {
					minv[j] -= delta
				}
			}
			j0 = j1
			if p[j0] == 0 {
				break
			}
		}
		for j0 != 0 {
			j1 := way[j0]
			p[j0] = p[j1]
			j0 = j1
		}
	}
	for j := 1; j <= m; j++ {
		if p[j] > 0 {
			match[p[j]-1] = j - 1
		}
	}
	return match
}
