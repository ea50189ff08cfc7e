package dataset

import (
	"fmt"
	"strconv"
	"strings"
)

// ExpandBraces expands shell-style brace patterns as webdataset does:
// "{a,b}" alternatives and "{000..099}" numeric ranges (zero-padded to the
// wider bound when either bound has a leading zero, descending allowed).
// Several groups and nesting are supported and expand left to right. A
// group with neither a comma nor a range (e.g. "{x}") is kept literally.
// Unbalanced braces are an error.
func ExpandBraces(pattern string) ([]string, error) {
	open := strings.IndexByte(pattern, '{')
	if open < 0 {
		if strings.IndexByte(pattern, '}') >= 0 {
			return nil, fmt.Errorf("dataset: unbalanced '}' in pattern %q", pattern)
		}
		return []string{pattern}, nil
	}
	if c := strings.IndexByte(pattern[:open], '}'); c >= 0 {
		return nil, fmt.Errorf("dataset: unbalanced '}' in pattern %q", pattern)
	}
	depth, close := 0, -1
	var commas []int
	for i := open; i < len(pattern) && close < 0; i++ {
		switch pattern[i] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				close = i
			}
		case ',':
			if depth == 1 {
				commas = append(commas, i)
			}
		}
	}
	if close < 0 {
		return nil, fmt.Errorf("dataset: unbalanced '{' in pattern %q", pattern)
	}
	prefix, body, rest := pattern[:open], pattern[open+1:close], pattern[close+1:]
	var alts []string
	literal := false
	switch {
	case len(commas) > 0:
		start := open + 1
		for _, c := range commas {
			alts = append(alts, pattern[start:c])
			start = c + 1
		}
		alts = append(alts, pattern[start:close])
	default:
		r, ok, err := numericRange(body)
		if err != nil {
			return nil, fmt.Errorf("dataset: pattern %q: %v", pattern, err)
		}
		if !ok {
			// Literal group: expand its inside and the rest, keep braces.
			inner, err := ExpandBraces(body)
			if err != nil {
				return nil, err
			}
			for i := range inner {
				inner[i] = "{" + inner[i] + "}"
			}
			alts = inner
			literal = true
		} else {
			alts = r
		}
	}
	tails, err := ExpandBraces(rest)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, a := range alts {
		heads := []string{a}
		if !literal {
			if heads, err = ExpandBraces(a); err != nil {
				return nil, err
			}
		}
		for _, h := range heads {
			for _, t := range tails {
				out = append(out, prefix+h+t)
			}
		}
	}
	return out, nil
}

const maxRange = 10_000_000

func numericRange(body string) ([]string, bool, error) {
	lo, hi, ok := strings.Cut(body, "..")
	if !ok || !isInt(lo) || !isInt(hi) {
		return nil, false, nil
	}
	a, err1 := strconv.Atoi(lo)
	b, err2 := strconv.Atoi(hi)
	if err1 != nil || err2 != nil {
		return nil, false, fmt.Errorf("range {%s} out of bounds", body)
	}
	width := 0
	if padded(lo) || padded(hi) {
		width = max(len(lo), len(hi))
	}
	step := 1
	if b < a {
		step = -1
	}
	if n := (b-a)*step + 1; n > maxRange {
		return nil, false, fmt.Errorf("range {%s} has %d elements (max %d)", body, n, maxRange)
	}
	var out []string
	for v := a; ; v += step {
		s := strconv.Itoa(v)
		if v < 0 {
			s = strconv.Itoa(-v)
			for len(s) < width-1 {
				s = "0" + s
			}
			s = "-" + s
		} else {
			for len(s) < width {
				s = "0" + s
			}
		}
		out = append(out, s)
		if v == b {
			break
		}
	}
	return out, true, nil
}

func isInt(s string) bool {
	s = strings.TrimPrefix(s, "-")
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func padded(s string) bool {
	s = strings.TrimPrefix(s, "-")
	return len(s) > 1 && s[0] == '0'
}
