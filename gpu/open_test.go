package gpu

import (
	"strings"
	"testing"
)

func TestPickBest(t *testing.T) {
	cases := []struct {
		types []DeviceType
		want  int
	}{
		{nil, -1},
		{[]DeviceType{CPU}, 0},
		{[]DeviceType{CPU, Integrated, Discrete}, 2},
		{[]DeviceType{Integrated, CPU}, 0},
		{[]DeviceType{Discrete, Discrete}, 0},
		{[]DeviceType{Other, Virtual, CPU}, 1},
	}
	for _, c := range cases {
		var ds []DeviceInfo
		for _, ty := range c.types {
			ds = append(ds, DeviceInfo{Type: ty})
		}
		if got := PickBest(ds); got != c.want {
			t.Errorf("PickBest(%v) = %d, want %d", c.types, got, c.want)
		}
	}
}

func TestEnvDefaults(t *testing.T) {
	t.Setenv("BLIP_DEVICE", "2")
	t.Setenv("BLIP_BACKEND", "")
	o, err := Options{Device: -1}.EnvDefaults()
	if err != nil || o.Device != 2 || o.Backend != "auto" {
		t.Fatalf("got %+v, %v; want device 2, backend auto", o, err)
	}
	o, err = Options{Device: 1}.EnvDefaults()
	if err != nil || o.Device != 1 {
		t.Fatalf("an explicit --device must win over BLIP_DEVICE: %+v %v", o, err)
	}
	t.Setenv("BLIP_DEVICE", "gpu0")
	if _, err := (Options{Device: -1}).EnvDefaults(); err == nil || !strings.Contains(err.Error(), "BLIP_DEVICE") {
		t.Fatalf("bad BLIP_DEVICE: %v", err)
	}
}

func TestOpenUnknownBackend(t *testing.T) {
	if _, err := Open(Options{Backend: "metal"}); err == nil || !strings.Contains(err.Error(), "metal") {
		t.Fatalf("unknown backend: %v", err)
	}
}
