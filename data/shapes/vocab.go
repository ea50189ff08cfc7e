package shapes

import (
	"slices"
	"strconv"
	"strings"
)

// Special tokens of the vocabulary, in BERT's order at the start and
// BLIP's two additions at the end.
var (
	vocabHead = []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}
	vocabTail = []string{"[DEC]", "[ENC]"}
)

// templateWords are the fixed words of caption templates not held in a
// phrase table ("is" between object and position or relation).
const templateWords = "a an is and the object"

// Words returns every word of this world's captions, questions and
// answers, sorted: all attributes (whatever subset a configuration uses),
// shape plurals, position and relation wordings, caption prefixes (BLIP's
// prompt "a picture of" included), question templates and answers.
func Words() []string {
	var text []string
	for _, x := range allShapes {
		text = append(text, string(x), x.Plural())
	}
	for _, x := range allColors {
		text = append(text, string(x))
	}
	for _, x := range allSizes {
		text = append(text, string(x))
	}
	for _, x := range allPositions {
		text = append(text, string(x))
		text = append(text, positionPhrases[x]...)
	}
	for _, x := range allRels {
		text = append(text, relationPhrases[x]...)
	}
	text = append(text, captionPrefixes...)
	text = append(text, templateWords, "yes no")
	text = append(text, colorQuestions...)
	text = append(text, shapeQuestions...)
	text = append(text, sizeQuestions...)
	text = append(text, positionQuestions...)
	text = append(text, countObjectsQuestion, countQuestion, existQuestion, relationQuestion)
	for k := 0; k <= MaxObjectsLimit; k++ {
		text = append(text, strconv.Itoa(k))
	}
	set := map[string]bool{}
	for _, t := range text {
		for _, w := range strings.Fields(t) {
			if !strings.HasPrefix(w, "%") {
				set[w] = true
			}
		}
	}
	words := make([]string, 0, len(set))
	for w := range set {
		words = append(words, w)
	}
	slices.Sort(words)
	return words
}

// Vocabulary returns the tokens of vocab.txt, id = index: [PAD] (0),
// [UNK], [CLS], [SEP], [MASK], the words of Words, then [DEC] and [ENC].
// Every word is a whole token, so a WordPiece tokenizer splits no caption
// or question of this world and never needs [UNK].
func Vocabulary() []string {
	out := slices.Clone(vocabHead)
	out = append(out, Words()...)
	return append(out, vocabTail...)
}

// WriteVocab writes Vocabulary to path, one token per line, atomically.
func WriteVocab(path string) error {
	return writeAtomic(path, []byte(strings.Join(Vocabulary(), "\n")+"\n"))
}
