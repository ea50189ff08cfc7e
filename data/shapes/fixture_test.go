package shapes

import (
	"sync"
	"testing"
)

// testConfig is a small world with every feature on: up to 4 objects,
// noise, and all paraphrases.
func testConfig() Config {
	c := DefaultConfig()
	c.N = 400
	c.Seed = 7
	c.MaxObjects = 4
	c.Noise = 0.5
	c.Captions = MaxCaptions
	return c
}

var (
	fixtureOnce sync.Once
	fixture     *Dataset
	fixtureErr  error
)

// testDataset generates testConfig once per test binary.
func testDataset(t *testing.T) *Dataset {
	t.Helper()
	fixtureOnce.Do(func() { fixture, fixtureErr = Generate(testConfig()) })
	if fixtureErr != nil {
		t.Fatal(fixtureErr)
	}
	return fixture
}
