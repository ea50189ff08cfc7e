package shapes

import (
	"fmt"
	"strings"
	"unicode"
)

// ParseError is a caption the grammar cannot read.
type ParseError struct {
	Text string // the normalised caption
	Word int    // index of the word where parsing failed (len(words) at the end)
	Msg  string
}

// Error implements error.
func (e *ParseError) Error() string {
	return fmt.Sprintf("shapes: cannot parse caption %q at word %d: %s", e.Text, e.Word, e.Msg)
}

// parsed is a caption with, for each statement, the words that made it:
// the noisy-caption builder swaps one of them.
type parsed struct {
	desc  Description
	words []string
	objs  []objectSpan
	pos   [2]int   // position phrase words [start, end); {-1, -1} if none
	rels  [][2]int // relation phrase words per relation
}

// objectSpan holds the word index of each attribute (-1 when unstated).
type objectSpan struct{ size, color, shape int }

// ParseCaption reads a caption of this world back into what it states. It
// accepts every generated caption and, to score model output, variants:
// any letter case, punctuation, the prefixes "there is", "an image of" and
// BLIP's prompt "a picture of", "a"/"an"/"the" or no article, adjectives in
// either order or left out, "object" for an unnamed shape, and "and"
// before a relation. The grammar:
//
//	caption  = prefix* ( position ["there is" | "is"] object
//	                   | object ["is"] position
//	                   | object { ["and"] ["is"] relation object } )
//	object   = [article] {size | colour} (shape | "object")
//
// Unstated attributes are left empty. A failure is a *ParseError.
func ParseCaption(text string) (Description, error) {
	p, err := parseCaption(text)
	if err != nil {
		return Description{}, err
	}
	return p.desc, nil
}

// normalizeWords lowercases text and splits it into words at anything that
// is not a letter or digit.
func normalizeWords(text string) []string {
	return strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
}

// phraseTable maps a phrase's words to its value.
type phraseTable[T any] struct {
	phrases [][]string
	values  []T
}

func newPhraseTable[T comparable](m map[T][]string, order []T) phraseTable[T] {
	var t phraseTable[T]
	for _, v := range order {
		for _, p := range m[v] {
			t.phrases = append(t.phrases, strings.Fields(p))
			t.values = append(t.values, v)
		}
	}
	return t
}

// match returns the value of the longest phrase starting at words[i] and
// the index after it.
func (t *phraseTable[T]) match(words []string, i int) (v T, end int, ok bool) {
	best := -1
	for k, p := range t.phrases {
		if i+len(p) > len(words) || (best >= 0 && len(p) <= len(t.phrases[best])) {
			continue
		}
		if equalWords(words[i:i+len(p)], p) {
			best = k
		}
	}
	if best < 0 {
		return v, i, false
	}
	return t.values[best], i + len(t.phrases[best]), true
}

func equalWords(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

var (
	positionTable = newPhraseTable(positionPhrases, allPositions)
	relationTable = newPhraseTable(relationPhrases, allRels)
	prefixTable   = newPhraseTable(map[string][]string{"": captionPrefixes}, []string{""})
)

type captionParser struct {
	words []string
	i     int
	out   parsed
}

func (p *captionParser) fail(format string, args ...any) error {
	return &ParseError{Text: strings.Join(p.words, " "), Word: p.i, Msg: fmt.Sprintf(format, args...)}
}

func (p *captionParser) atEnd() bool { return p.i >= len(p.words) }

// accept consumes word w if it is next.
func (p *captionParser) accept(w ...string) bool {
	if p.i+len(w) <= len(p.words) && equalWords(p.words[p.i:p.i+len(w)], w) {
		p.i += len(w)
		return true
	}
	return false
}

func parseCaption(text string) (*parsed, error) {
	p := &captionParser{words: normalizeWords(text)}
	p.out.words = p.words
	p.out.pos = [2]int{-1, -1}
	if len(p.words) == 0 {
		return nil, p.fail("empty caption")
	}
	for range captionPrefixes {
		if _, end, ok := prefixTable.match(p.words, p.i); ok {
			p.i = end
		}
	}
	// A fronted position: "on the left there is a red circle".
	if pos, end, ok := positionTable.match(p.words, p.i); ok {
		start := p.i
		p.i = end
		if !p.accept("there", "is") {
			p.accept("is")
		}
		if err := p.object(); err != nil {
			return nil, err
		}
		p.out.desc.Objects[0].Position = pos
		p.out.pos = [2]int{start, end}
		return p.end()
	}
	if err := p.object(); err != nil {
		return nil, err
	}
	if p.atEnd() {
		return &p.out, nil
	}
	save := p.i
	p.accept("is")
	if pos, end, ok := positionTable.match(p.words, p.i); ok {
		p.out.desc.Objects[0].Position = pos
		p.out.pos = [2]int{p.i, end}
		p.i = end
		return p.end()
	}
	p.i = save
	for !p.atEnd() {
		p.accept("and")
		p.accept("is")
		rel, end, ok := relationTable.match(p.words, p.i)
		if !ok {
			return nil, p.fail("expected a relation (left of, right of, above, below)")
		}
		span := [2]int{p.i, end}
		p.i = end
		a := len(p.out.desc.Objects) - 1
		if err := p.object(); err != nil {
			return nil, err
		}
		p.out.desc.Relations = append(p.out.desc.Relations, Relation{A: a, Rel: rel, B: a + 1})
		p.out.rels = append(p.out.rels, span)
	}
	return &p.out, nil
}

// end requires that every word was read.
func (p *captionParser) end() (*parsed, error) {
	if !p.atEnd() {
		return nil, p.fail("unexpected %q after the caption's end", p.words[p.i])
	}
	return &p.out, nil
}

// object reads [article] {size | colour} (shape | "object").
func (p *captionParser) object() error {
	if !p.accept("a") && !p.accept("an") {
		p.accept("the")
	}
	var o Object
	span := objectSpan{-1, -1, -1}
	for !p.atEnd() {
		w := p.words[p.i]
		switch {
		case Size(w).Valid():
			if o.Size != "" {
				return p.fail("second size %q", w)
			}
			o.Size, span.size = Size(w), p.i
		case Color(w).Valid():
			if o.Color != "" {
				return p.fail("second colour %q", w)
			}
			o.Color, span.color = Color(w), p.i
		case Shape(w).Valid():
			o.Shape, span.shape = Shape(w), p.i
			p.i++
			return p.addObject(o, span)
		case w == "object":
			p.i++
			return p.addObject(o, span)
		default:
			return p.fail("expected a size, colour or shape, got %q", w)
		}
		p.i++
	}
	return p.fail("expected a shape")
}

func (p *captionParser) addObject(o Object, span objectSpan) error {
	p.out.desc.Objects = append(p.out.desc.Objects, o)
	p.out.objs = append(p.out.objs, span)
	return nil
}
