package tokenizer

import "testing"

// Expected values were produced by BLIP's own pre_caption / pre_question
// (salesforce/BLIP data/utils.py) under Python 3.
func TestPreCaption(t *testing.T) {
	cases := []struct {
		in   string
		max  int
		want string
	}{
		{"A Man riding a HORSE.", 50, "a man riding a horse"},
		{"  hello,   world!! (test)  ", 50, "hello, world test"},
		{"one two three four five", 3, "one two three"},
		{"tab\there", 50, "tab\there"},
		{"tabs\t\tand\nnew  lines\n", 50, "tabs and\nnew lines"},
		{"a\u00a0\u00a0b", 50, "a b"},
		{"trailing newline\n", 50, "trailing newline"},
		{"x~y;z:w#v*u\"t", 50, "x y z w v u t"},
		{"ΟΔΟΣ ΣΑΣ", 50, "οδος σας"},
		{"İstanbul", 50, "i\u0307stanbul"},
		{"a  .  b", 2, "a b"},
		{"", 50, ""},
		{"a . b", 2, "a b"},
		{"x\x1c\x1dy", 50, "x y"}, // Python's \s includes U+001C..U+001F
		{"a\u2028\u2029b\u0085\u0085c", 50, "a b c"},
		{"word  ", 0, "word"}, // maxWords <= 0: no limit (BLIP always passes one)
	}
	for _, c := range cases {
		if got := PreCaption(c.in, c.max); got != c.want {
			t.Errorf("PreCaption(%q, %d) = %q, want %q", c.in, c.max, got, c.want)
		}
	}
}

func TestPreQuestion(t *testing.T) {
	cases := []struct {
		in   string
		max  int
		want string
	}{
		{"What color is the sky?", 50, "what color is the sky?"},
		{"Is it (really) a \"dog\"...  ", 50, "is it really a dog"},
		{"How many: cats; dogs~", 50, "how many cats dogs"},
		{"a b c d", 2, "a b"},
		{"  leading spaces.", 50, "  leading spaces"},
		{"double  space here", 2, "double "},
	}
	for _, c := range cases {
		if got := PreQuestion(c.in, c.max); got != c.want {
			t.Errorf("PreQuestion(%q, %d) = %q, want %q", c.in, c.max, got, c.want)
		}
	}
}
