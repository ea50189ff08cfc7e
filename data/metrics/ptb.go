package metrics

import (
	"strings"
	"unicode"
)

// PTBPunctuations are the tokens pycocoevalcap's PTBTokenizer removes after
// tokenising (ptbtokenizer.py PUNCTUATIONS). The comparison is exact and
// comes after lower-casing, so the bracket tokens (-LRB- and so on, which
// the Java tokenizer lower-cases to -lrb-) are in fact kept.
var PTBPunctuations = []string{"''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-",
	".", "?", "!", ",", ":", "-", "--", "...", ";"}

var ptbDrop = func() map[string]bool {
	m := map[string]bool{}
	for _, p := range PTBPunctuations {
		m[p] = true
	}
	return m
}()

// PTBTokenize approximates the caption tokenisation of the COCO caption
// evaluation: pycocoevalcap's PTBTokenizer, which runs Stanford CoreNLP
// 3.4.1's edu.stanford.nlp.process.PTBTokenizer with -preserveLines
// -lowerCase on each caption (newlines replaced by spaces), lower-cases every
// token, drops the tokens in PTBPunctuations and joins the rest with single
// spaces. This is a pure-Go approximation of the Java lexer, good for
// ordinary English captions:
//
//   - punctuation is split from words: "dog." -> "dog", "a dog, a cat" ->
//     "a dog a cat"; hyphens, periods, apostrophes, slashes and ampersands
//     inside a word stay ("black-and-white", "u.s.", "t-shirt"), as do
//     commas, periods and colons between digits ("1,000", "3.5", "10:30");
//   - clitics are split: "don't" -> "do n't", "dog's" -> "dog 's",
//     "they're" -> "they 're", "cannot" -> "can not", "dogs'" -> "dogs";
//   - quote characters become the PTB quote tokens and are dropped; curly
//     quotes, Unicode dashes
//     and the ellipsis character are treated as their ASCII forms;
//   - brackets become -lrb- -rrb- -lsb- -rsb- -lcb- -rcb- and stay (the
//     removal list holds them in upper case; the Java tokenizer lower-cases
//     after escaping);
//   - other symbols are single-character tokens.
//
// Known differences from the Java lexer: its abbreviation list ("mr.",
// "st." keep their period), URLs, e-mail addresses, emoticons, SGML,
// "5 7/8"-style fractions, phone numbers, the escaping of / and * and other
// rare forms are not reproduced.
func PTBTokenize(caption string) string {
	caption = strings.ReplaceAll(caption, "\n", " ")
	var out []string
	for _, tok := range ptbLex(caption) {
		tok = strings.ToLower(tok)
		if !ptbDrop[tok] {
			out = append(out, tok)
		}
	}
	return strings.Join(out, " ")
}

// PTBTokenizeAll applies PTBTokenize to every caption of a map (candidates
// or references), as COCOEvalCap tokenises both before scoring.
func PTBTokenizeAll(captions map[string][]string) map[string][]string {
	out := make(map[string][]string, len(captions))
	for id, cs := range captions {
		t := make([]string, len(cs))
		for i, c := range cs {
			t[i] = PTBTokenize(c)
		}
		out[id] = t
	}
	return out
}

func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r) || r == '_'
}

// ptbLex splits text into PTB tokens (before lower-casing and removal).
func ptbLex(s string) []string {
	rs := []rune(ptbNormalizeRunes(s))
	var toks []string
	prevSpace := true // for opening vs closing quotes
	for i := 0; i < len(rs); {
		r := rs[i]
		switch {
		case pyIsSpace(r):
			prevSpace = true
			i++
			continue
		case isWordRune(r):
			j := i + 1
			for j < len(rs) {
				c := rs[j]
				if isWordRune(c) {
					j++
					continue
				}
				next := rune(0)
				if j+1 < len(rs) {
					next = rs[j+1]
				}
				prev := rs[j-1]
				joins := false
				switch c {
				case '-', '/', '&', '\'':
					joins = isWordRune(next)
				case '.':
					joins = isWordRune(next)
				case ',', ':':
					joins = unicode.IsDigit(prev) && unicode.IsDigit(next)
				}
				if !joins {
					break
				}
				j += 2
			}
			// An acronym keeps its final period: "u.s." (word with an
			// internal period followed by '.').
			if j < len(rs) && rs[j] == '.' && strings.ContainsRune(string(rs[i:j]), '.') {
				j++
			}
			toks = append(toks, ptbSplitClitics(string(rs[i:j]))...)
			i = j
		case r == '.':
			j := i
			for j < len(rs) && rs[j] == '.' {
				j++
			}
			if j-i >= 2 {
				toks = append(toks, "...")
			} else {
				toks = append(toks, ".")
			}
			i = j
		case r == '-':
			j := i
			for j < len(rs) && rs[j] == '-' {
				j++
			}
			if j-i >= 2 {
				toks = append(toks, "--")
			} else {
				toks = append(toks, "-")
			}
			i = j
		case r == '"':
			if prevSpace {
				toks = append(toks, "``")
			} else {
				toks = append(toks, "''")
			}
			i++
		case r == '\'' || r == '`':
			if prevSpace {
				toks = append(toks, "`")
			} else {
				toks = append(toks, "'")
			}
			i++
		default:
			toks = append(toks, ptbBracket(r))
			i++
		}
		prevSpace = len(toks) > 0 && ptbOpening[toks[len(toks)-1]]
	}
	return toks
}

var ptbOpening = map[string]bool{"-LRB-": true, "-LSB-": true, "-LCB-": true, "``": true, "`": true}

func ptbBracket(r rune) string {
	switch r {
	case '(':
		return "-LRB-"
	case ')':
		return "-RRB-"
	case '[':
		return "-LSB-"
	case ']':
		return "-RSB-"
	case '{':
		return "-LCB-"
	case '}':
		return "-RCB-"
	}
	return string(r)
}

// ptbNormalizeRunes maps curly quotes, Unicode dashes and the ellipsis to
// the ASCII forms the lexer treats them as.
func ptbNormalizeRunes(s string) string {
	return strings.NewReplacer(
		"\u2018", "'", "\u2019", "'", "\u201c", `"`, "\u201d", `"`,
		"\u2013", "--", "\u2014", "--", "\u2026", "...",
	).Replace(s)
}

// ptbSplitClitics splits English clitics off a word ("don't" -> "do n't",
// "dog's" -> "dog 's", "cannot" -> "can not").
func ptbSplitClitics(w string) []string {
	lw := strings.ToLower(w)
	switch lw {
	case "cannot", "gonna", "gotta", "wanna":
		return []string{w[:3], w[3:]}
	}
	if len(lw) > 3 && strings.HasSuffix(lw, "n't") {
		return []string{w[:len(w)-3], w[len(w)-3:]}
	}
	for _, c := range []string{"'s", "'m", "'d", "'re", "'ve", "'ll"} {
		if len(lw) > len(c) && strings.HasSuffix(lw, c) {
			return []string{w[:len(w)-len(c)], w[len(w)-len(c):]}
		}
	}
	return []string{w}
}
