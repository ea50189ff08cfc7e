package dataset

import (
	"reflect"
	"strings"
	"testing"
)

func TestExpandBraces(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"plain.tar", []string{"plain.tar"}},
		{"s/{00000..00002}.tar", []string{"s/00000.tar", "s/00001.tar", "s/00002.tar"}},
		{"{8..11}", []string{"8", "9", "10", "11"}},
		{"{08..11}", []string{"08", "09", "10", "11"}},
		{"{3..1}", []string{"3", "2", "1"}},
		{"{5..5}", []string{"5"}},
		{"{a,b,c}.tar", []string{"a.tar", "b.tar", "c.tar"}},
		{"x{,_y}", []string{"x", "x_y"}},
		{"{a,b}-{0..1}", []string{"a-0", "a-1", "b-0", "b-1"}},
		{"{a,b{1..2}}", []string{"a", "b1", "b2"}},
		{"{x}", []string{"{x}"}},
		{"{a..b}", []string{"{a..b}"}},
		{"{-1..1}", []string{"-1", "0", "1"}},
	}
	for _, c := range cases {
		got, err := ExpandBraces(c.in)
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: got %q want %q", c.in, got, c.want)
		}
	}
	for _, bad := range []string{"a{0..3", "a}b", "{a,b}}", "{0..99999999}"} {
		if _, err := ExpandBraces(bad); err == nil {
			t.Errorf("%q: expected error", bad)
		} else if !strings.Contains(err.Error(), "pattern") && !strings.Contains(err.Error(), "range") {
			t.Errorf("%q: unhelpful error %v", bad, err)
		}
	}
}
