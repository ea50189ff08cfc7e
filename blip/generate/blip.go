package generate

import "fmt"

// BLIPPrompts builds the decoder prompts the way
// BlipForConditionalGeneration.generate does. With no prompts every one of
// batch rows is [bos]. Otherwise each row is a tokenised prompt as the
// processor gives it ([CLS] words [SEP]): the first id is replaced with bos
// and the last id is dropped (HF assumes it is the trailing [SEP] and drops
// it unconditionally). All rows must have the same length, since HF takes a
// rectangular tensor and right padding would be fed to the decoder.
func BLIPPrompts(prompts [][]int32, batch int, bos int32) ([][]int32, error) {
	if prompts == nil {
		if batch < 1 {
			return nil, fmt.Errorf("generate: batch %d < 1", batch)
		}
		out := make([][]int32, batch)
		for i := range out {
			out[i] = []int32{bos}
		}
		return out, nil
	}
	if len(prompts) != batch {
		return nil, fmt.Errorf("generate: %d prompts for batch %d", len(prompts), batch)
	}
	out := make([][]int32, len(prompts))
	for i, p := range prompts {
		if len(p) < 2 {
			return nil, fmt.Errorf("generate: prompt %d has %d ids, need [CLS] ... [SEP]", i, len(p))
		}
		if len(p) != len(prompts[0]) {
			return nil, fmt.Errorf("generate: prompt %d has %d ids, prompt 0 has %d", i, len(p), len(prompts[0]))
		}
		row := append([]int32(nil), p[:len(p)-1]...)
		row[0] = bos
		out[i] = row
	}
	return out, nil
}
