package shapes

import (
	"strconv"
	"strings"
)

// QuestionType names what a question asks about.
type QuestionType string

// The question types. Position questions go to one-object images only, and
// relation questions to images with two or more objects.
const (
	QColor    QuestionType = "color"    // what color is the circle -> red
	QShape    QuestionType = "shape"    // what shape is the red object -> circle
	QSize     QuestionType = "size"     // what size is the red circle -> small
	QCount    QuestionType = "count"    // how many objects are there -> 2
	QExist    QuestionType = "exist"    // is there a blue star -> yes / no
	QPosition QuestionType = "position" // where is the square -> left
	QRelation QuestionType = "relation" // is the circle left of the star -> yes / no
)

// AllQuestionTypes lists the question types in a fixed order.
func AllQuestionTypes() []QuestionType {
	return []QuestionType{QColor, QShape, QSize, QCount, QExist, QPosition, QRelation}
}

// Question is one VQA triple. Every question has exactly one right answer,
// a single word, computed from the scene.
type Question struct {
	QuestionID int          `json:"question_id"`
	ImageID    int          `json:"image_id"`
	Question   string       `json:"question"`
	Answer     string       `json:"answer"`
	Type       QuestionType `json:"question_type"`
}

// Question templates; % (or %A, %R, %B) is replaced by a noun phrase
// without article, a plural or a relation phrase.
var (
	colorQuestions       = []string{"what color is the %", "what is the color of the %"}
	shapeQuestions       = []string{"what shape is the %", "what is the shape of the %"}
	sizeQuestions        = []string{"what size is the %", "is the % small or large"}
	positionQuestions    = []string{"where is the %", "where in the image is the %"}
	countObjectsQuestion = "how many objects are there"
	countQuestion        = "how many % are there"
	existQuestion        = "is there %" // % with its article
	relationQuestion     = "is the %A %R the %B"
)

// questionsPerImage bounds question ids: id = image_id*questionsPerImage + k.
const questionsPerImage = 100

// filter selects objects by the attributes it sets; empty fields match all.
type filter struct {
	size  Size
	color Color
	shape Shape
}

func (f filter) matches(o Object) bool {
	return (f.size == "" || f.size == o.Size) && (f.color == "" || f.color == o.Color) && (f.shape == "" || f.shape == o.Shape)
}

// text is the filter as a noun phrase without article: "small red
// circle", "red object", "circle".
func (f filter) text() string {
	var w []string
	if f.size != "" {
		w = append(w, string(f.size))
	}
	if f.color != "" {
		w = append(w, string(f.color))
	}
	if f.shape != "" {
		w = append(w, string(f.shape))
	} else {
		w = append(w, "object")
	}
	return strings.Join(w, " ")
}

// withArticle puts "a" or "an" before a noun phrase.
func withArticle(phrase string) string {
	if phrase != "" && strings.IndexByte("aeiou", phrase[0]) >= 0 {
		return "an " + phrase
	}
	return "a " + phrase
}

func countMatching(s *Scene, f filter) int {
	n := 0
	for _, o := range s.Objects {
		if f.matches(o.Object) {
			n++
		}
	}
	return n
}

// Which attributes a referring expression may use.
type refForm struct{ size, color, shape bool }

func (rf refForm) of(o Object) filter {
	var f filter
	if rf.size {
		f.size = o.Size
	}
	if rf.color {
		f.color = o.Color
	}
	if rf.shape {
		f.shape = o.Shape
	}
	return f
}

// uniqueRef returns the first form, in order, that picks out object k
// alone, so questions name objects as briefly as possible.
func uniqueRef(s *Scene, k int, forms ...refForm) (filter, bool) {
	for _, rf := range forms {
		f := rf.of(s.Objects[k].Object)
		if countMatching(s, f) == 1 {
			return f, true
		}
	}
	return filter{}, false
}

// refObject picks a random object that one of the forms identifies.
func refObject(s *Scene, r *rng, forms ...refForm) (int, filter, bool) {
	for _, k := range r.perm(len(s.Objects)) {
		if f, ok := uniqueRef(s, k, forms...); ok {
			return k, f, true
		}
	}
	return 0, filter{}, false
}

var (
	formShape          = refForm{shape: true}
	formSizeShape      = refForm{size: true, shape: true}
	formColor          = refForm{color: true}
	formSizeColor      = refForm{size: true, color: true}
	formColorShape     = refForm{color: true, shape: true}
	formSizeColorShape = refForm{size: true, color: true, shape: true}
)

// sceneQuestions asks one question of each answerable type, two (one yes,
// one no) of the existence and relation types so that yes and no are
// exactly balanced. A question whose subject no short description picks
// out alone is skipped, not asked ambiguously.
func sceneQuestions(c *Config, s *Scene, r *rng) []Question {
	var qs []Question
	add := func(t QuestionType, q, a string) {
		qs = append(qs, Question{
			QuestionID: s.ImageID*questionsPerImage + len(qs), ImageID: s.ImageID,
			Question: q, Answer: a, Type: t,
		})
	}
	if k, f, ok := refObject(s, r, formShape, formSizeShape); ok {
		q := pick(r, colorQuestions)
		add(QColor, strings.Replace(q, "%", f.text(), 1), string(s.Objects[k].Color))
	}
	if k, f, ok := refObject(s, r, formColor, formSizeColor); ok {
		q := pick(r, shapeQuestions)
		add(QShape, strings.Replace(q, "%", f.text(), 1), string(s.Objects[k].Shape))
	}
	if k, f, ok := refObject(s, r, formShape, formColorShape); ok {
		q := pick(r, sizeQuestions)
		add(QSize, strings.Replace(q, "%", f.text(), 1), string(s.Objects[k].Size))
	}
	askCount(s, r, add)
	existQuestions(c, s, r, add)
	if len(s.Objects) == 1 {
		f := pick(r, []refForm{{}, formShape, formColorShape}).of(s.Objects[0].Object)
		q := pick(r, positionQuestions)
		add(QPosition, strings.Replace(q, "%", f.text(), 1), string(s.Objects[0].Position))
	} else {
		relationQuestions(s, r, add)
	}
	return qs
}

func askCount(s *Scene, r *rng, add func(QuestionType, string, string)) {
	n := len(s.Objects)
	if n < 2 || r.intn(2) == 0 {
		add(QCount, countObjectsQuestion, strconv.Itoa(n))
		return
	}
	o := pick(r, s.Objects).Object
	if r.intn(2) == 0 {
		add(QCount, strings.Replace(countQuestion, "%", o.Shape.Plural(), 1), strconv.Itoa(countMatching(s, filter{shape: o.Shape})))
	} else {
		add(QCount, strings.Replace(countQuestion, "%", string(o.Color)+" objects", 1), strconv.Itoa(countMatching(s, filter{color: o.Color})))
	}
}

// existQuestions asks about a present object and an absent one, described
// the same way, or neither when nothing of that description is absent.
func existQuestions(c *Config, s *Scene, r *rng, add func(QuestionType, string, string)) {
	form := pick(r, []refForm{formShape, formColorShape, formColor, formSizeColorShape})
	yes := form.of(pick(r, s.Objects).Object)
	var no filter
	found := false
	for try := 0; try < 64 && !found; try++ {
		no = form.of(Object{Size: pick(r, allSizes), Color: pick(r, c.colors()), Shape: pick(r, c.shapes())})
		found = countMatching(s, no) == 0
	}
	if !found {
		return
	}
	yq := strings.Replace(existQuestion, "%", withArticle(yes.text()), 1)
	nq := strings.Replace(existQuestion, "%", withArticle(no.text()), 1)
	if r.intn(2) == 0 {
		add(QExist, yq, "yes")
		add(QExist, nq, "no")
	} else {
		add(QExist, nq, "no")
		add(QExist, yq, "yes")
	}
}

// relationQuestions asks whether a true relation holds and whether a false
// one does, each about a random pair.
func relationQuestions(s *Scene, r *rng, add func(QuestionType, string, string)) {
	forms := []refForm{formShape, formColorShape, formSizeColorShape}
	ask := func(truth bool) {
		p := r.perm(len(s.Objects))
		a, b := p[0], p[1]
		rel, ok := s.RelationOf(a, b)
		fa, okA := uniqueRef(s, a, forms...)
		fb, okB := uniqueRef(s, b, forms...)
		if !ok || !okA || !okB {
			return
		}
		answer := "yes"
		if !truth {
			others := []Rel{}
			for _, x := range allRels {
				if x != rel {
					others = append(others, x)
				}
			}
			rel, answer = pick(r, others), "no"
		}
		phrase := pick(r, relationPhrases[rel])
		q := strings.NewReplacer("%A", fa.text(), "%R", phrase, "%B", fb.text()).Replace(relationQuestion)
		add(QRelation, q, answer)
	}
	if r.intn(2) == 0 {
		ask(true)
		ask(false)
	} else {
		ask(false)
		ask(true)
	}
}

// AnswerList is every answer a question of this configuration can have,
// BLIP's answer_list.json for ranking answers: colours, shapes, sizes,
// positions (when one-object images exist, always), yes and no, and the
// counts 1..K.
func AnswerList(c Config) []string {
	var out []string
	for _, x := range c.colors() {
		out = append(out, string(x))
	}
	for _, x := range c.shapes() {
		out = append(out, string(x))
	}
	for _, x := range allSizes {
		out = append(out, string(x))
	}
	for _, x := range allPositions {
		out = append(out, string(x))
	}
	out = append(out, "yes", "no")
	for k := 1; k <= c.MaxObjects; k++ {
		out = append(out, strconv.Itoa(k))
	}
	return out
}

// typeAnswers is the set of possible answers of each question type under
// configuration c.
func typeAnswers(c *Config, t QuestionType) []string {
	var out []string
	switch t {
	case QColor:
		for _, x := range c.colors() {
			out = append(out, string(x))
		}
	case QShape:
		for _, x := range c.shapes() {
			out = append(out, string(x))
		}
	case QSize:
		out = []string{string(Small), string(Large)}
	case QCount:
		for k := 1; k <= c.MaxObjects; k++ {
			out = append(out, strconv.Itoa(k))
		}
	case QExist, QRelation:
		out = []string{"yes", "no"}
	case QPosition:
		for _, x := range allPositions {
			out = append(out, string(x))
		}
	}
	return out
}
