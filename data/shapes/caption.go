package shapes

import (
	"fmt"
	"strings"
)

// positionPhrases and relationPhrases list the wordings of each position
// and relation; the first is the shortest. ParseCaption reads them all.
var positionPhrases = map[Position][]string{
	Left:   {"on the left", "on the left side"},
	Right:  {"on the right", "on the right side"},
	Top:    {"at the top", "near the top"},
	Bottom: {"at the bottom", "near the bottom"},
	Center: {"in the center", "in the middle"},
}

var relationPhrases = map[Rel][]string{
	LeftOf:  {"left of", "to the left of"},
	RightOf: {"right of", "to the right of"},
	Above:   {"above"},
	Below:   {"below"},
}

// captionPrefixes may open a caption. "a picture of" is BLIP's captioning
// prompt: it is accepted by ParseCaption but never generated, as BLIP's
// fine-tuning prepends it and "a picture of a picture of" would follow.
var captionPrefixes = []string{"an image of", "there is", "a picture of"}

// A template writes a caption from an object phrase o and a position
// phrase p (one object), or from a chain read forwards, backwards, and
// forwards with "is" before its first relation (several objects).
type (
	singleTemplate func(o, p string) string
	chainTemplate  func(fwd, back, fwdIs string) string
)

var singleTemplates = []singleTemplate{
	func(o, p string) string { return o + " " + p },
	func(o, p string) string { return "there is " + o + " " + p },
	func(o, p string) string { return o + " is " + p },
	func(o, p string) string { return "an image of " + o + " " + p },
	func(o, p string) string { return p + " there is " + o },
	func(o, p string) string { return p + " is " + o },
}

var chainTemplates = []chainTemplate{
	func(f, b, fi string) string { return f },
	func(f, b, fi string) string { return "there is " + f },
	func(f, b, fi string) string { return b },
	func(f, b, fi string) string { return "an image of " + f },
	func(f, b, fi string) string { return "there is " + b },
	func(f, b, fi string) string { return fi },
}

// phraseChoice picks a wording: the shortest when short, else a random one.
func phraseChoice(r *rng, phrases []string, short bool) string {
	if short || r == nil {
		return phrases[0]
	}
	return pick(r, phrases)
}

// renderCaption writes description d with template t. d must be one object
// with a position, or objects linked by the chain Objects[k] rel
// Objects[k+1]. With r nil, or when a random wording would pass
// MaxCaptionWords, the shortest wordings are used.
func renderCaption(d Description, t int, r *rng) (string, error) {
	if err := checkChainForm(d); err != nil {
		return "", err
	}
	out := renderWith(d, t, r, false)
	if len(strings.Fields(out)) > MaxCaptionWords {
		out = renderWith(d, t, nil, true)
	}
	return out, nil
}

func renderWith(d Description, t int, r *rng, short bool) string {
	if len(d.Objects) == 1 {
		o := d.Objects[0]
		return singleTemplates[t](o.Phrase(), phraseChoice(r, positionPhrases[o.Position], short))
	}
	n := len(d.Objects)
	rels := make([]string, n-1)
	inv := make([]string, n-1)
	for k, rel := range d.Relations {
		rels[k] = phraseChoice(r, relationPhrases[rel.Rel], short)
		inv[k] = phraseChoice(r, relationPhrases[rel.Rel.Inverse()], short)
	}
	var fwd, fwdIs, back []string
	for k := 0; k < n; k++ {
		if k > 0 {
			fwd = append(fwd, rels[k-1])
			if k == 1 {
				fwdIs = append(fwdIs, "is")
			}
			fwdIs = append(fwdIs, rels[k-1])
		}
		fwd = append(fwd, d.Objects[k].Phrase())
		fwdIs = append(fwdIs, d.Objects[k].Phrase())
	}
	for k := n - 1; k >= 0; k-- {
		if k < n-1 {
			back = append(back, inv[k])
		}
		back = append(back, d.Objects[k].Phrase())
	}
	return chainTemplates[t](strings.Join(fwd, " "), strings.Join(back, " "), strings.Join(fwdIs, " "))
}

// checkChainForm reports whether d can be written by the caption grammar.
func checkChainForm(d Description) error {
	n := len(d.Objects)
	if n == 0 {
		return fmt.Errorf("shapes: caption of a description without objects")
	}
	for _, o := range d.Objects {
		if !o.Shape.Valid() || !o.Color.Valid() || !o.Size.Valid() {
			return fmt.Errorf("shapes: caption: object %q has an unknown attribute", o.Name())
		}
	}
	if n == 1 {
		if !d.Objects[0].Position.Valid() || len(d.Relations) > 0 {
			return fmt.Errorf("shapes: caption: a single object needs a position and no relations")
		}
		return nil
	}
	if len(d.Relations) != n-1 {
		return fmt.Errorf("shapes: caption: %d objects need a chain of %d relations, got %d", n, n-1, len(d.Relations))
	}
	for k, r := range d.Relations {
		if r.A != k || r.B != k+1 || !r.Rel.Valid() {
			return fmt.Errorf("shapes: caption: relation %d is not object %d <relation> object %d", k, k, k+1)
		}
	}
	return nil
}

// Caption writes a description in the plainest template with the shortest
// wordings: "a small red circle on the left", "a small red circle left of
// a large blue square". d must be one object with a position, or objects
// linked by the chain Objects[k] rel Objects[k+1].
func Caption(d Description) (string, error) { return renderCaption(d, 0, nil) }

// sceneCaptions writes n paraphrases of a scene, each with a different
// template and random wordings.
func sceneCaptions(s *Scene, n int, r *rng) ([]string, error) {
	d := s.Description()
	count := len(chainTemplates)
	if len(d.Objects) == 1 {
		count = len(singleTemplates)
	}
	order := r.perm(count)
	out := make([]string, 0, n)
	for _, t := range order[:min(n, count)] {
		c, err := renderCaption(d, t, r)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}
