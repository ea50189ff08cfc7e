package shapes

import (
	"errors"
	"testing"
)

func TestParseCaptionVariants(t *testing.T) {
	circleLeft := Description{Objects: []Object{{Size: Small, Color: Red, Shape: Circle, Position: Left}}}
	pair := Description{
		Objects:   []Object{{Size: Small, Color: Red, Shape: Circle}, {Size: Large, Color: Blue, Shape: Square}},
		Relations: []Relation{{0, LeftOf, 1}},
	}
	cases := []struct {
		text string
		want Description
	}{
		{"a small red circle on the left", circleLeft},
		{"A small red circle, on the LEFT side.", circleLeft},
		{"a picture of a small red circle on the left", circleLeft},
		{"an image of there is a small red circle is on the left", circleLeft},
		{"on the left there is a small red circle", circleLeft},
		{"on the left is a small red circle", circleLeft},
		{"the red small circle on the left", circleLeft},
		{"a small red circle left of a large blue square", pair},
		{"there is a large blue square to the right of a small red circle", pair},
		{"a small red circle is to the left of a large blue square", pair},
		{"a small red circle and left of a large blue square", pair},
		{"a red object", Description{Objects: []Object{{Color: Red}}}},
		{"circle", Description{Objects: []Object{{Shape: Circle}}}},
		{"a small red circle above a large blue square below a small green star", Description{
			Objects:   []Object{{Size: Small, Color: Red, Shape: Circle}, {Size: Large, Color: Blue, Shape: Square}, {Size: Small, Color: Green, Shape: Star}},
			Relations: []Relation{{0, Above, 1}, {1, Below, 2}},
		}},
	}
	for _, tc := range cases {
		got, err := ParseCaption(tc.text)
		if err != nil {
			t.Errorf("%q: %v", tc.text, err)
			continue
		}
		if got.Key() != tc.want.Key() {
			t.Errorf("%q: got %s, want %s", tc.text, got.Key(), tc.want.Key())
		}
	}
}

func TestParseCaptionErrors(t *testing.T) {
	for _, text := range []string{
		"",
		"...",
		"red",
		"a small red",
		"a red blue circle",
		"a small large circle",
		"a small red circle on the",
		"a small red circle on the left a blue square",
		"a small red circle left of",
		"a small red circle near a blue square",
		"on the left",
		"a small red dog",
	} {
		_, err := ParseCaption(text)
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("%q: got %v, want a *ParseError", text, err)
		}
	}
}

func TestCaptionFunction(t *testing.T) {
	d := Description{
		Objects:   []Object{{Size: Small, Color: Orange, Shape: Heart}, {Size: Large, Color: White, Shape: Cross}},
		Relations: []Relation{{0, Below, 1}},
	}
	got, err := Caption(d)
	if err != nil || got != "a small orange heart below a large white cross" {
		t.Fatalf("Caption = %q, %v", got, err)
	}
	bad := []Description{
		{},
		{Objects: []Object{{Size: Small, Color: Red, Shape: Circle}}}, // no position
		{Objects: d.Objects}, // no relation
		{Objects: d.Objects, Relations: []Relation{{1, Below, 0}}},
		{Objects: []Object{{Size: "tiny", Color: Red, Shape: Circle, Position: Left}}},
	}
	for i, b := range bad {
		if _, err := Caption(b); err == nil {
			t.Errorf("case %d: no error", i)
		}
	}
}
