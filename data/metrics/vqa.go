package metrics

import (
	"fmt"
	"sort"
	"strings"
)

// The tables of the official VQA evaluation (vqaEval.py, class VQAEval):
// punctuation handled by processPunctuation, number words and articles of
// processDigitArticle, and its contraction fixes. Keys are matched against
// lower-cased words, so the entries with capitals never apply; they are
// kept so the table equals the official one (the tests check it does).
var (
	vqaPunct = []string{";", "/", "[", "]", `"`, "{", "}", "(", ")", "=", "+", `\`, "_", "-",
		">", "<", "@", "`", ",", "?", "!"}
	vqaNumbers = map[string]string{
		"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
		"five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
	}
	vqaArticles = map[string]bool{"a": true, "an": true, "the": true}
)

// vqaContractions maps an answer word written without its apostrophe to
// the contracted form (and a few odd entries), as vqaEval.py's table.
var vqaContractions = map[string]string{
	"aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've",
	"couldnt": "couldn't", "couldn'tve": "couldn't've", "couldnt've": "couldn't've",
	"didnt": "didn't", "doesnt": "doesn't", "dont": "don't", "hadnt": "hadn't",
	"hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't", "havent": "haven't",
	"hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've", "hes": "he's", "howd": "how'd",
	"howll": "how'll", "hows": "how's", "Id've": "I'd've", "I'dve": "I'd've", "Im": "I'm",
	"Ive": "I've", "isnt": "isn't", "itd": "it'd", "itd've": "it'd've", "it'dve": "it'd've",
	"itll": "it'll", "let's": "let's", "maam": "ma'am", "mightnt": "mightn't",
	"mightnt've": "mightn't've", "mightn'tve": "mightn't've", "mightve": "might've",
	"mustnt": "mustn't", "mustve": "must've", "neednt": "needn't", "notve": "not've",
	"oclock": "o'clock", "oughtnt": "oughtn't", "ow's'at": "'ow's'at", "'ows'at": "'ow's'at",
	"'ow'sat": "'ow's'at", "shant": "shan't", "shed've": "she'd've", "she'dve": "she'd've",
	"she's": "she's", "shouldve": "should've", "shouldnt": "shouldn't",
	"shouldnt've": "shouldn't've", "shouldn'tve": "shouldn't've", "somebody'd": "somebodyd",
	"somebodyd've": "somebody'd've", "somebody'dve": "somebody'd've",
	"somebodyll": "somebody'll", "somebodys": "somebody's", "someoned": "someone'd",
	"someoned've": "someone'd've", "someone'dve": "someone'd've", "someonell": "someone'll",
	"someones": "someone's", "somethingd": "something'd", "somethingd've": "something'd've",
	"something'dve": "something'd've", "somethingll": "something'll", "thats": "that's",
	"thered": "there'd", "thered've": "there'd've", "there'dve": "there'd've",
	"therere": "there're", "theres": "there's", "theyd": "they'd", "theyd've": "they'd've",
	"they'dve": "they'd've", "theyll": "they'll", "theyre": "they're", "theyve": "they've",
	"twas": "'twas", "wasnt": "wasn't", "wed've": "we'd've", "we'dve": "we'd've",
	"weve": "we've", "werent": "weren't", "whatll": "what'll", "whatre": "what're",
	"whats": "what's", "whatve": "what've", "whens": "when's", "whered": "where'd",
	"wheres": "where's", "whereve": "where've", "whod": "who'd", "whod've": "who'd've",
	"who'dve": "who'd've", "wholl": "who'll", "whos": "who's", "whove": "who've",
	"whyll": "why'll", "whyre": "why're", "whys": "why's", "wont": "won't",
	"wouldve": "would've", "wouldnt": "wouldn't", "wouldnt've": "wouldn't've",
	"wouldn'tve": "wouldn't've", "yall": "y'all", "yall'll": "y'all'll",
	"y'allll": "y'all'll", "yall'd've": "y'all'd've", "y'alld've": "y'all'd've",
	"y'all'dve": "y'all'd've", "youd": "you'd", "youd've": "you'd've",
	"you'dve": "you'd've", "youll": "you'll", "youre": "you're", "youve": "you've",
}

// vqaPeriodStripMax is the most periods processPunctuation removes: the
// official code passes re.UNICODE (32) as re.sub's count argument.
const vqaPeriodStripMax = 32

// vqaClean is the first step evaluate() applies to every answer: newlines
// and tabs become spaces, then surrounding white space is stripped.
func vqaClean(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	s = strings.ReplaceAll(s, "\t", " ")
	return pyStrip(s)
}

func isASCIIDigit(b byte) bool { return b >= '0' && b <= '9' }

// vqaPunctuation is VQAEval.processPunctuation. Each punctuation mark is
// deleted when it touches a space somewhere in the input, or when the input
// has a digit-comma-digit anywhere; otherwise it becomes a space. Then up to
// 32 periods not followed by a digit are deleted.
func vqaPunctuation(in string) string {
	commaNumber := false
	for i := 1; i+1 < len(in); i++ {
		if in[i] == ',' && isASCIIDigit(in[i-1]) && isASCIIDigit(in[i+1]) {
			commaNumber = true
			break
		}
	}
	out := in
	for _, p := range vqaPunct {
		if strings.Contains(in, p+" ") || strings.Contains(in, " "+p) || commaNumber {
			out = strings.ReplaceAll(out, p, "")
		} else {
			out = strings.ReplaceAll(out, p, " ")
		}
	}
	// periodStrip = "(?!<=\d)(\.)(?!\d)": the first group is a lookahead
	// (not a lookbehind) that can never fail before a '.', so this deletes
	// every '.' not followed by a digit, decided on the unmodified string.
	var b strings.Builder
	removed := 0
	for i := 0; i < len(out); i++ {
		if out[i] == '.' && removed < vqaPeriodStripMax && (i+1 == len(out) || !isASCIIDigit(out[i+1])) {
			removed++
			continue
		}
		b.WriteByte(out[i])
	}
	return b.String()
}

// vqaDigitArticle is VQAEval.processDigitArticle: lower-case, split on
// white space, number words zero..ten and "none" to digits, drop a/an/the,
// restore apostrophes of known contractions, join with single spaces.
func vqaDigitArticle(in string) string {
	var words []string
	for _, w := range pySplit(strings.ToLower(in)) {
		if d, ok := vqaNumbers[w]; ok {
			w = d
		}
		if !vqaArticles[w] {
			words = append(words, w)
		}
	}
	for i, w := range words {
		if c, ok := vqaContractions[w]; ok {
			words[i] = c
		}
	}
	return strings.Join(words, " ")
}

// NormalizeVQAAnswer normalises an answer as the official VQA evaluation
// does before comparing answers: newlines and tabs to spaces and surrounding
// space stripped, then processPunctuation and processDigitArticle (see
// vqaEval.py). Examples: "Two." -> "2", "a dog" -> "dog", "dont" -> "don't",
// "1,000" -> "1000", "yes!" -> "yes".
//
// Digits are ASCII (the regular expressions of the original run on Python 2
// byte strings), and lower-casing is Go's Unicode simple mapping; both agree
// with the official code on ASCII answers.
func NormalizeVQAAnswer(s string) string {
	return vqaDigitArticle(vqaPunctuation(vqaClean(s)))
}

// VQAAccuracy is the official VQA accuracy of one predicted answer against
// the human answers (10 in VQA v2): the mean over each human answer left
// out of min(1, #other humans giving the prediction / 3).
//
// As in vqaEval.py, answers are cleaned (newlines/tabs, surrounding space)
// and then normalised with NormalizeVQAAnswer only when the human answers
// are not all the same after cleaning: when all ten humans said "2", the
// prediction "two" scores 0. It returns 0 for no human answers (the
// official code would divide by zero).
func VQAAccuracy(pred string, gtAnswers []string) float64 {
	if len(gtAnswers) == 0 {
		return 0
	}
	p := vqaClean(pred)
	gts := make([]string, len(gtAnswers))
	distinct := map[string]bool{}
	for i, g := range gtAnswers {
		gts[i] = vqaClean(g)
		distinct[gts[i]] = true
	}
	if len(distinct) > 1 {
		for i, g := range gts {
			gts[i] = vqaDigitArticle(vqaPunctuation(g))
		}
		p = vqaDigitArticle(vqaPunctuation(p))
	}
	sum := 0.0
	for i := range gts {
		match := 0
		for j, g := range gts {
			if j != i && g == p {
				match++
			}
		}
		sum += min(1, float64(match)/3)
	}
	return sum / float64(len(gts))
}

// VQAAccuracies scores predictions by question id against the human
// answers: per-question accuracy and their mean (the official "overall",
// before its rounding to 100*x with two decimals). Every question with
// answers needs a prediction; predictions for other ids are an error.
func VQAAccuracies(preds map[string]string, gtAnswers map[string][]string) (float64, map[string]float64, error) {
	if len(gtAnswers) == 0 {
		return 0, nil, fmt.Errorf("metrics: no VQA questions to score")
	}
	ids := make([]string, 0, len(gtAnswers))
	for id, g := range gtAnswers {
		if _, ok := preds[id]; !ok {
			return 0, nil, fmt.Errorf("metrics: question %q has no prediction", id)
		}
		if len(g) == 0 {
			return 0, nil, fmt.Errorf("metrics: question %q has no human answers", id)
		}
		ids = append(ids, id)
	}
	if len(preds) != len(gtAnswers) {
		for id := range preds {
			if _, ok := gtAnswers[id]; !ok {
				return 0, nil, fmt.Errorf("metrics: prediction for unknown question %q", id)
			}
		}
	}
	sort.Strings(ids)
	per := make(map[string]float64, len(ids))
	sum := 0.0
	for _, id := range ids {
		a := VQAAccuracy(preds[id], gtAnswers[id])
		per[id] = a
		sum += a
	}
	return sum / float64(len(ids)), per, nil
}
