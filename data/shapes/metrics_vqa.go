package shapes

import (
	"strings"
	"unicode"
)

// numberWords are the number words the official VQA evaluation turns into
// digits.
var numberWords = map[string]string{
	"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
	"six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}

// NormalizeAnswer prepares an answer for comparison as the official VQA
// evaluation does, in the parts that matter for one-word answers:
// lowercase, punctuation dropped, number words as digits, articles removed.
func NormalizeAnswer(a string) string {
	words := strings.FieldsFunc(strings.ToLower(a), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	out := words[:0]
	for _, w := range words {
		if w == "a" || w == "an" || w == "the" {
			continue
		}
		if d, ok := numberWords[w]; ok {
			w = d
		}
		out = append(out, w)
	}
	return strings.Join(out, " ")
}

// VQAAccuracy is the official VQA accuracy of one predicted answer: the
// mean, over leaving out each human answer in turn, of min(#others that
// match / 3, 1). Here all ten answers are the same, so it is 1 for the
// right answer and 0 otherwise. A single reference answer is compared
// exactly.
func VQAAccuracy(pred string, answers []string) float64 {
	p := NormalizeAnswer(pred)
	if len(answers) == 0 {
		return 0
	}
	if len(answers) == 1 {
		if NormalizeAnswer(answers[0]) == p {
			return 1
		}
		return 0
	}
	match := 0
	for _, a := range answers {
		if NormalizeAnswer(a) == p {
			match++
		}
	}
	var acc float64
	for _, a := range answers {
		others := match
		if NormalizeAnswer(a) == p {
			others--
		}
		acc += min(1, float64(others)/3)
	}
	return acc / float64(len(answers))
}

// VQAReport is VQA accuracy over a set of questions, overall and per
// question type.
type VQAReport struct {
	N        int                      `json:"n"`
	Accuracy float64                  `json:"accuracy"`
	ByType   map[QuestionType]float64 `json:"by_type"`
	Count    map[QuestionType]int     `json:"count"`
}

// vqaSum accumulates per-question scores into a report.
type vqaSum struct{ r VQAReport }

func (s *vqaSum) add(t QuestionType, acc float64) {
	if s.r.ByType == nil {
		s.r.ByType, s.r.Count = map[QuestionType]float64{}, map[QuestionType]int{}
	}
	s.r.N++
	s.r.Accuracy += acc
	s.r.ByType[t] += acc
	s.r.Count[t]++
}

func (s *vqaSum) report() VQAReport {
	r := s.r
	if r.ByType == nil {
		r.ByType, r.Count = map[QuestionType]float64{}, map[QuestionType]int{}
	}
	if r.N > 0 {
		r.Accuracy /= float64(r.N)
	}
	for t := range r.ByType {
		r.ByType[t] /= float64(r.Count[t])
	}
	return r
}

// EvaluateVQA scores predicted answers, keyed by question id, against the
// questions; a question without a prediction scores 0.
func EvaluateVQA(preds map[int]string, qs []Question) VQAReport {
	var s vqaSum
	for _, q := range qs {
		acc := 0.0
		if p, ok := preds[q.QuestionID]; ok {
			acc = VQAAccuracy(p, []string{q.Answer})
		}
		s.add(q.Type, acc)
	}
	return s.report()
}

// ChanceVQA is the expected accuracy of answering each question with a
// uniformly random answer of its type under configuration c: 1/#colours
// for colour questions, 1/#shapes for shape questions, 1/2 for size,
// existence and relation questions, 1/5 for positions and 1/K for counts.
func ChanceVQA(c Config, qs []Question) VQAReport {
	var s vqaSum
	for _, q := range qs {
		ans := typeAnswers(&c, q.Type)
		acc := 0.0
		if contains(ans, q.Answer) {
			acc = 1 / float64(len(ans))
		}
		s.add(q.Type, acc)
	}
	return s.report()
}

// PriorVQA is the accuracy on test of always giving, per question type,
// the answer most frequent for that type in train (ties to the answer
// first in sort order): what a model learns from the questions alone.
// It also returns those answers.
func PriorVQA(train, test []Question) (VQAReport, map[QuestionType]string) {
	freq := map[QuestionType]map[string]int{}
	for _, q := range train {
		if freq[q.Type] == nil {
			freq[q.Type] = map[string]int{}
		}
		freq[q.Type][q.Answer]++
	}
	best := map[QuestionType]string{}
	for t, f := range freq {
		bestN := -1
		for a, n := range f {
			if n > bestN || (n == bestN && a < best[t]) {
				best[t], bestN = a, n
			}
		}
	}
	preds := map[int]string{}
	for _, q := range test {
		if a, ok := best[q.Type]; ok {
			preds[q.QuestionID] = a
		}
	}
	return EvaluateVQA(preds, test), best
}
