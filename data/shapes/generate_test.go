package shapes

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"blip/data/tokenizer"
)

// cellRelation is the relation of cell a to cell b read off the grid alone,
// an independent check of RelationOf.
func cellRelation(a, b [2]int) Rel {
	dr, dc := b[0]-a[0], b[1]-a[1]
	if abs(dc) > abs(dr) {
		if dc > 0 {
			return LeftOf
		}
		return RightOf
	}
	if dr > 0 {
		return Above
	}
	return Below
}

func TestLayout(t *testing.T) {
	d := testDataset(t)
	c := d.Config
	cell := float64(c.Size) / GridCells
	counts := map[int]int{}
	positions := map[Position]int{}
	for _, s := range d.Scenes {
		n := len(s.Objects)
		counts[n]++
		if n < 1 || n > c.MaxObjects {
			t.Fatalf("image %d: %d objects", s.ImageID, n)
		}
		names := map[string]bool{}
		for i, o := range s.Objects {
			if !o.Box.Inside(s.Width, s.Height) || o.Box[0] < 1 || o.Box[1] < 1 {
				t.Errorf("image %d: object %d box %v not inside the image with a margin", s.ImageID, i, o.Box)
			}
			side := o.Box[2] - o.Box[0]
			if o.Box[3]-o.Box[1] != side {
				t.Errorf("image %d: box %v not square", s.ImageID, o.Box)
			}
			small := side <= (smallFrac+smallSpread)*cell+quantum
			large := side >= largeFrac*cell-quantum && side <= (largeFrac+largeSpread)*cell+quantum
			if (o.Size == Small && !small) || (o.Size == Large && !large) {
				t.Errorf("image %d: %s object of side %.2f (cell %.2f)", s.ImageID, o.Size, side, cell)
			}
			if names[o.Name()] {
				t.Errorf("image %d: two objects named %q", s.ImageID, o.Name())
			}
			names[o.Name()] = true
			for j := i + 1; j < n; j++ {
				if o.Box.Overlaps(s.Objects[j].Box) {
					t.Errorf("image %d: objects %d and %d overlap", s.ImageID, i, j)
				}
				rel, ok := s.RelationOf(i, j)
				if !ok || rel != cellRelation(o.Cell, s.Objects[j].Cell) {
					t.Errorf("image %d: relation %d-%d = %q %v, grid says %q", s.ImageID, i, j, rel, ok, cellRelation(o.Cell, s.Objects[j].Cell))
				}
				if inv, _ := s.RelationOf(j, i); inv != rel.Inverse() {
					t.Errorf("image %d: relation %d-%d not the inverse of %d-%d", s.ImageID, j, i, i, j)
				}
			}
		}
		if n == 1 {
			o := s.Objects[0]
			positions[o.Position]++
			if o.Cell != positionCell[o.Position] {
				t.Errorf("image %d: %s object in cell %v", s.ImageID, o.Position, o.Cell)
			}
			// The centre must lie in the position's third of the image.
			col, row := int(o.Center[0]/cell), int(o.Center[1]/cell)
			if [2]int{row, col} != positionCell[o.Position] {
				t.Errorf("image %d: %s object centred at %v", s.ImageID, o.Position, o.Center)
			}
		} else if len(s.Relations) != n-1 {
			t.Errorf("image %d: %d relations for %d objects", s.ImageID, len(s.Relations), n)
		}
	}
	// 1..K objects roughly uniformly, every position used.
	for k := 1; k <= c.MaxObjects; k++ {
		if counts[k] < len(d.Scenes)/(2*c.MaxObjects) {
			t.Errorf("only %d images with %d objects: %v", counts[k], k, counts)
		}
	}
	if len(positions) != len(allPositions) {
		t.Errorf("positions used: %v", positions)
	}
}

func TestCellSets(t *testing.T) {
	want := []int{0, 9, 26, 26, 8} // subsets of the 3x3 grid with no diagonal pair (counted by hand and in Python)
	for n := 1; n <= MaxObjectsLimit; n++ {
		if len(cellSets[n]) != want[n] {
			t.Errorf("%d cells: %d sets, want %d", n, len(cellSets[n]), want[n])
		}
	}
}

func TestSplits(t *testing.T) {
	d := testDataset(t)
	tr, va, te := d.Config.splitSizes()
	if len(d.Split(SplitTrain)) != tr || len(d.Split(SplitVal)) != va || len(d.Split(SplitTest)) != te {
		t.Fatalf("split sizes %d/%d/%d, want %d/%d/%d", len(d.Split(SplitTrain)), len(d.Split(SplitVal)), len(d.Split(SplitTest)), tr, va, te)
	}
	for i, s := range d.Scenes {
		if s.ImageID != i+1 || s.Image != fmt.Sprintf("images/%s/%06d.png", s.Split, s.ImageID) {
			t.Fatalf("scene %d: id %d image %q", i, s.ImageID, s.Image)
		}
	}
}

// Every caption parses back to its image's description, and is a clean
// BLIP caption: lowercase words, unchanged by pre_caption, at most
// MaxCaptionWords words.
func TestCaptionsParseBack(t *testing.T) {
	d := testDataset(t)
	clean := regexp.MustCompile(`^[a-z]+( [a-z]+)*$`)
	longest := 0
	for _, s := range d.Scenes {
		want := s.Description().Key()
		if len(s.Captions) != d.Config.Captions {
			t.Fatalf("image %d: %d captions", s.ImageID, len(s.Captions))
		}
		seen := map[string]bool{}
		for _, c := range s.Captions {
			if seen[c] {
				t.Errorf("image %d: caption %q repeated", s.ImageID, c)
			}
			seen[c] = true
			if !clean.MatchString(c) || tokenizer.PreCaption(c, MaxCaptionWords+2) != c {
				t.Errorf("image %d: caption %q is not clean", s.ImageID, c)
			}
			longest = max(longest, len(strings.Fields(c)))
			got, err := ParseCaption(c)
			if err != nil {
				t.Errorf("image %d: %v", s.ImageID, err)
				continue
			}
			if got.Key() != want {
				t.Errorf("image %d: %q parses to %s, want %s", s.ImageID, c, got.Key(), want)
			}
			if !Matches(got, &s) {
				t.Errorf("image %d: %q does not match its image", s.ImageID, c)
			}
			if sc := ScoreCaption(c, &s); !sc.Exact || sc.Accuracy() != 1 {
				t.Errorf("image %d: %q scores %+v", s.ImageID, c, sc)
			}
		}
	}
	if longest > MaxCaptionWords {
		t.Errorf("longest caption has %d words, limit %d", longest, MaxCaptionWords)
	}
	t.Logf("longest caption: %d words", longest)
}

// findRef resolves a question's noun phrase ("small red circle", "red
// object", "circle", "object") to the objects it fits.
func findRef(s *Scene, phrase string) []int {
	var f filter
	for _, w := range strings.Fields(phrase) {
		switch {
		case Size(w).Valid():
			f.size = Size(w)
		case Color(w).Valid():
			f.color = Color(w)
		case Shape(w).Valid():
			f.shape = Shape(w)
		case w == "object":
		default:
			return nil
		}
	}
	var out []int
	for i, o := range s.Objects {
		if f.matches(o.Object) {
			out = append(out, i)
		}
	}
	return out
}

var (
	reColor    = regexp.MustCompile(`^what (?:color is|is the color of) the (.+)$`)
	reShape    = regexp.MustCompile(`^what (?:shape is|is the shape of) the (.+)$`)
	reSize     = regexp.MustCompile(`^(?:what size is the (.+)|is the (.+) small or large)$`)
	reCountAll = regexp.MustCompile(`^how many objects are there$`)
	reCountCol = regexp.MustCompile(`^how many (\w+) objects are there$`)
	reCountShp = regexp.MustCompile(`^how many (\w+) are there$`)
	reExist    = regexp.MustCompile(`^is there an? (.+)$`)
	rePosition = regexp.MustCompile(`^where (?:is|in the image is) the (.+)$`)
	reRelation = regexp.MustCompile(`^is the (.+?) (left of|to the left of|right of|to the right of|above|below) the (.+)$`)
)

// answerQuestion answers a question from the scene alone, independently of
// the generator; ok is false when the question is ambiguous or unknown.
func answerQuestion(s *Scene, q string) (string, bool) {
	one := func(phrase string) (int, bool) {
		r := findRef(s, phrase)
		if len(r) != 1 {
			return 0, false
		}
		return r[0], true
	}
	if m := reColor.FindStringSubmatch(q); m != nil {
		k, ok := one(m[1])
		return string(s.Objects[k].Color), ok
	}
	if m := reShape.FindStringSubmatch(q); m != nil {
		k, ok := one(m[1])
		return string(s.Objects[k].Shape), ok
	}
	if m := reSize.FindStringSubmatch(q); m != nil {
		k, ok := one(m[1] + m[2])
		return string(s.Objects[k].Size), ok
	}
	if reCountAll.MatchString(q) {
		return strconv.Itoa(len(s.Objects)), true
	}
	if m := reCountCol.FindStringSubmatch(q); m != nil {
		return strconv.Itoa(len(findRef(s, m[1]))), Color(m[1]).Valid()
	}
	if m := reCountShp.FindStringSubmatch(q); m != nil {
		for _, sh := range allShapes {
			if sh.Plural() == m[1] {
				return strconv.Itoa(len(findRef(s, string(sh)))), true
			}
		}
		return "", false
	}
	if m := reExist.FindStringSubmatch(q); m != nil {
		art := "a"
		if strings.IndexByte("aeiou", m[1][0]) >= 0 {
			art = "an"
		}
		if !strings.HasPrefix(q, "is there "+art+" ") {
			return "", false // wrong article
		}
		if len(findRef(s, m[1])) > 0 {
			return "yes", true
		}
		return "no", true
	}
	if m := rePosition.FindStringSubmatch(q); m != nil {
		k, ok := one(m[1])
		return string(s.Objects[k].Position), ok && len(s.Objects) == 1
	}
	if m := reRelation.FindStringSubmatch(q); m != nil {
		a, okA := one(m[1])
		b, okB := one(m[3])
		if !okA || !okB || a == b {
			return "", false
		}
		rel := cellRelation(s.Objects[a].Cell, s.Objects[b].Cell)
		if strings.HasSuffix(m[2], string(rel)) {
			return "yes", true
		}
		return "no", true
	}
	return "", false
}

func TestQuestionsAnswerable(t *testing.T) {
	d := testDataset(t)
	ids := map[int]bool{}
	types := map[QuestionType]int{}
	yes := map[QuestionType]int{}
	answers := map[string]bool{}
	for _, a := range AnswerList(d.Config) {
		answers[a] = true
	}
	for _, s := range d.Scenes {
		for _, q := range s.Questions {
			if ids[q.QuestionID] || q.QuestionID/questionsPerImage != s.ImageID || q.ImageID != s.ImageID {
				t.Errorf("question %d of image %d: bad or repeated id", q.QuestionID, s.ImageID)
			}
			ids[q.QuestionID] = true
			types[q.Type]++
			if q.Answer == "yes" {
				yes[q.Type]++
			}
			if !answers[q.Answer] || strings.Contains(q.Answer, " ") {
				t.Errorf("%q: answer %q not a single word of the answer list", q.Question, q.Answer)
			}
			if !contains(typeAnswers(&d.Config, q.Type), q.Answer) {
				t.Errorf("%q: answer %q not of type %s", q.Question, q.Answer, q.Type)
			}
			got, ok := answerQuestion(&s, q.Question)
			if !ok || got != q.Answer {
				t.Errorf("image %d: %q: answer %q, independent answer %q (ok %v)", s.ImageID, q.Question, q.Answer, got, ok)
			}
			if tokenizer.PreQuestion(q.Question, 30) != q.Question {
				t.Errorf("%q changes under pre_question", q.Question)
			}
		}
	}
	for _, qt := range AllQuestionTypes() {
		if types[qt] == 0 {
			t.Errorf("no %s questions: %v", qt, types)
		}
	}
	// Yes/no questions come in pairs: exactly balanced.
	for _, qt := range []QuestionType{QExist, QRelation} {
		if 2*yes[qt] != types[qt] {
			t.Errorf("%s: %d yes of %d", qt, yes[qt], types[qt])
		}
	}
	t.Logf("questions per type: %v", types)
}

// Small and odd worlds still generate correct captions and questions.
func TestSmallWorlds(t *testing.T) {
	edits := []func(*Config){
		func(c *Config) { c.Shapes, c.Colors, c.MaxObjects = []Shape{Circle, Star}, []Color{Red}, 4 },
		func(c *Config) { c.Shapes, c.Colors, c.MaxObjects = []Shape{Heart}, []Color{Blue}, 2 },
		func(c *Config) { c.MaxObjects, c.Size, c.Supersample, c.Noise = 1, MinImageSize, 1, 1 },
		func(c *Config) { c.MaxObjects, c.Size, c.Captions = 4, 100, 1 },
		func(c *Config) { c.N, c.Train, c.Val, c.Test = 5, 0, 0, 1 },
	}
	for k, edit := range edits {
		c := testConfig()
		c.N = 60
		edit(&c)
		d, err := Generate(c)
		if err != nil {
			t.Fatalf("world %d: %v", k, err)
		}
		for _, s := range d.Scenes {
			if len(s.Captions) != c.Captions {
				t.Fatalf("world %d image %d: %d captions", k, s.ImageID, len(s.Captions))
			}
			for _, cap := range s.Captions {
				if desc, err := ParseCaption(cap); err != nil || !Matches(desc, &s) {
					t.Errorf("world %d: %q: %v", k, cap, err)
				}
			}
			for _, q := range s.Questions {
				if got, ok := answerQuestion(&s, q.Question); !ok || got != q.Answer {
					t.Errorf("world %d: %q -> %q, independent %q", k, q.Question, q.Answer, got)
				}
			}
			if _, err := Render(&s, c.Supersample); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := WebCaptions(c, d.Scenes, WebOptions{Replace: 0.3, Swap: 0.3}); err != nil {
			t.Errorf("world %d: web captions: %v", k, err)
		}
	}
}
