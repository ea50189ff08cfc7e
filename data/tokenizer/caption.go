package tokenizer

import (
	"strings"
	"unicode"
)

// captionPunct are the characters BLIP's caption and question cleaning
// removes: . ! " ( ) * # : ; ~
const captionPunct = `.!"()*#:;~`

// PreCaption normalises a caption as BLIP's data/utils.py pre_caption does:
// lowercase, turn each of .!"()*#:;~ into a space, collapse runs of two or
// more whitespace characters into one space, drop a trailing newline and
// surrounding spaces, and keep the first maxWords space-separated words
// (maxWords <= 0 keeps all; BLIP's default is 50).
func PreCaption(caption string, maxWords int) string {
	s := pyLower(caption)
	s = strings.Map(func(r rune) rune {
		if strings.ContainsRune(captionPunct, r) {
			return ' '
		}
		return r
	}, s)
	s = collapseSpaceRuns(s)
	s = strings.TrimRight(s, "\n")
	s = strings.Trim(s, " ")
	return truncateWords(s, maxWords)
}

// PreQuestion normalises a VQA question as BLIP's pre_question does:
// lowercase, delete each of .!"()*#:;~, drop trailing spaces, and keep the
// first maxWords space-separated words (maxWords <= 0 keeps all).
func PreQuestion(question string, maxWords int) string {
	s := pyLower(question)
	s = strings.Map(func(r rune) rune {
		if strings.ContainsRune(captionPunct, r) {
			return -1
		}
		return r
	}, s)
	s = strings.TrimRight(s, " ")
	return truncateWords(s, maxWords)
}

// truncateWords keeps the first n words of s split on single spaces
// (Python's s.split(' '), so empty words count).
func truncateWords(s string, n int) string {
	if n <= 0 {
		return s
	}
	words := strings.Split(s, " ")
	if len(words) > n {
		return strings.Join(words[:n], " ")
	}
	return s
}

// collapseSpaceRuns replaces every run of two or more Python-whitespace
// characters (regex \s{2,}) with a single space; single ones stay as they are.
func collapseSpaceRuns(s string) string {
	var b strings.Builder
	rs := []rune(s)
	for i := 0; i < len(rs); {
		if !pyIsSpace(rs[i]) {
			b.WriteRune(rs[i])
			i++
			continue
		}
		j := i
		for j < len(rs) && pyIsSpace(rs[j]) {
			j++
		}
		if j-i >= 2 {
			b.WriteByte(' ')
		} else {
			b.WriteRune(rs[i])
		}
		i = j
	}
	return b.String()
}

// pyIsSpace is Python's str.isspace / regex \s for str patterns: Unicode
// White_Space plus the separators U+001C..U+001F.
func pyIsSpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

// pyLower is Python's str.lower(): full lowercase mapping (U+0130 becomes
// "i" + combining dot) and the final-sigma rule for U+03A3.
func pyLower(s string) string {
	rs := []rune(s)
	var b strings.Builder
	b.Grow(len(s))
	for i, r := range rs {
		switch r {
		case 0x130:
			b.WriteString("i\u0307")
		case 0x3a3:
			if finalSigma(rs, i) {
				b.WriteRune(0x3c2)
			} else {
				b.WriteRune(0x3c3)
			}
		default:
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// finalSigma applies Unicode's Final_Sigma condition at position i: a cased
// letter before (skipping case-ignorable characters) and none after.
func finalSigma(rs []rune, i int) bool {
	j := i - 1
	for j >= 0 && caseIgnorable(rs[j]) {
		j--
	}
	if j < 0 || !cased(rs[j]) {
		return false
	}
	k := i + 1
	for k < len(rs) && caseIgnorable(rs[k]) {
		k++
	}
	return k == len(rs) || !cased(rs[k])
}

// cased approximates Unicode's Cased property.
func cased(r rune) bool {
	return unicode.IsUpper(r) || unicode.IsLower(r) || unicode.IsTitle(r) ||
		unicode.Is(unicode.Other_Lowercase, r) || unicode.Is(unicode.Other_Uppercase, r)
}

// caseIgnorable approximates Unicode's Case_Ignorable property.
func caseIgnorable(r rune) bool {
	switch r {
	case '\'', '.', ':', '^', '`', 0xb7, 0x2018, 0x2019, 0x2024, 0xfe13, 0xfe52, 0xfe55, 0xff07, 0xff0e, 0xff1a:
		return true
	}
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk)
}
