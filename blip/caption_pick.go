package blip

import (
	"encoding/binary"
	"fmt"
	"math"

	"blip/blip/generate"
	"blip/gpu"
)

// The KV stepper's decisions on the backend: greedy picks
// (generate.Picker, generate.ChunkPicker) and beam ranking
// (generate.Ranker) read back a few bytes per row instead of the logits.

// topRun is run for a Ranker: each row's k best logits (TopK) and its
// log-sum-exp around the maximum (ArgMax.NLL), taken where
// the logits lie; 8k + 4 bytes per row come back.
func (s *kvStepper) topRun(ids []int32, tq, k int) (*generate.Top, error) {
	vocab := s.m.Config.TextConfig.VocabSize
	k = min(k, vocab)
	if k < 1 {
		return nil, fmt.Errorf("blip: rank %d tokens per row", k)
	}
	last, err := s.record(ids, gpu.View{}, tq)
	if err != nil {
		return nil, err
	}
	rows := s.rows
	if err := s.pickBuffers(rows * k); err != nil {
		return nil, err
	}
	logits, err := last.plan.View(last.o)
	if err != nil {
		return nil, err
	}
	best := gpu.Whole(s.pick[4], gpu.I32).Slice(0, int64(rows))
	lse := gpu.Whole(s.pick[2], gpu.F32).Slice(0, int64(rows))
	vals := gpu.Whole(s.pick[3], gpu.F32).Slice(0, int64(rows*k))
	idx := gpu.Whole(s.pick[1], gpu.I32).Slice(0, int64(rows*k))
	if err := s.be.Do(
		gpu.ArgMax{X: logits, Y: best, NLL: lse, Rows: rows, Cols: vocab},
		gpu.TopK{X: logits, Vals: vals, Idx: idx, Rows: rows, Cols: vocab, K: k},
	); err != nil {
		return nil, err
	}
	if err := s.be.Sync(); err != nil {
		return nil, err
	}
	s.length += tq
	t := &generate.Top{K: k}
	var err2 error
	if t.Tokens, err2 = s.readI32(s.pick[1], rows*k); err2 != nil {
		return nil, err2
	}
	if t.Logits, err2 = s.readF32(s.pick[3], rows*k); err2 != nil {
		return nil, err2
	}
	if t.LSE, err2 = s.readF32(s.pick[2], rows); err2 != nil {
		return nil, err2
	}
	return t, nil
}

// StartTop implements generate.Ranker.
func (s *kvStepper) StartTop(prompts [][]int32, copies, k int) (*generate.Top, error) {
	ids, tq, err := s.start(prompts, copies)
	if err != nil {
		return nil, err
	}
	return s.topRun(ids, tq, k)
}

// StepTop implements generate.Ranker.
func (s *kvStepper) StepTop(tokens []int32, k int) (*generate.Top, error) {
	if err := s.stepCheck(tokens); err != nil {
		return nil, err
	}
	return s.topRun(tokens, 1, k)
}

// readI32 and readF32 read the first n values of a pick buffer.
func (s *kvStepper) readI32(b gpu.Buffer, n int) ([]int32, error) {
	raw := make([]byte, 4*n)
	if err := s.be.Read(b, 0, raw); err != nil {
		return nil, err
	}
	out := make([]int32, n)
	for i := range out {
		out[i] = int32(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return out, nil
}

func (s *kvStepper) readF32(b gpu.Buffer, n int) ([]float32, error) {
	w, err := s.readI32(b, n)
	if err != nil {
		return nil, err
	}
	out := make([]float32, len(w))
	for i, v := range w {
		out[i] = math.Float32frombits(uint32(v))
	}
	return out, nil
}

// pickBuffers makes each of s.pick hold n values: -Inf (the ban's column),
// tokens, their -log p (or log-sum-exps), the ranked logits and each
// row's best token.
func (s *kvStepper) pickBuffers(n int) error {
	if s.pickRows >= n {
		return nil
	}
	rows := n
	s.freePick()
	for i := range s.pick {
		var err error
		if s.pick[i], err = s.be.Alloc(int64(rows) * 4); err != nil {
			s.freePick()
			return err
		}
	}
	inf := make([]byte, 4*rows)
	for i := range rows {
		binary.LittleEndian.PutUint32(inf[4*i:], math.Float32bits(float32(math.Inf(-1))))
	}
	if err := s.be.Write(s.pick[0], 0, inf); err != nil {
		s.freePick()
		return err
	}
	s.pickRows = rows
	return nil
}

func (s *kvStepper) freePick() {
	for i, b := range s.pick {
		if b != nil {
			s.be.Free(b)
		}
		s.pick[i] = nil
	}
	s.pickRows = 0
}

// StepPicks implements generate.ChunkPicker.
func (s *kvStepper) StepPicks(tokens []int32, bans []int32) ([][]int32, [][]float32, error) {
	if err := s.stepCheck(tokens); err != nil {
		return nil, nil, err
	}
	return s.picks(tokens, 1, bans)
}

// picks runs len(bans) greedy steps, recorded back to back with one wait
// at the end: the first feeds ids (rows*tq), each later one every row's
// pick of the step before. Step i bans token bans[i] when >= 0. On the
// backend: ArgMax, with its NLL for -log p, on the logits where they
// lie; each step's picks go to its rows of the pick buffers, where the
// next step's embedding reads them (record's dev), so the host touches
// nothing between steps and reads 8 bytes per row and step instead of the
// logits.
func (s *kvStepper) picks(ids []int32, tq int, bans []int32) ([][]int32, [][]float32, error) {
	n, rows := len(bans), s.rows
	vocab := s.m.Config.TextConfig.VocabSize
	if n == 0 {
		return nil, nil, fmt.Errorf("blip: a chunk of no steps")
	}
	for _, b := range bans {
		if b >= int32(vocab) {
			return nil, nil, fmt.Errorf("blip: banned token %d is past the vocabulary of %d", b, vocab)
		}
	}
	if np := s.m.Config.TextConfig.MaxPositionEmbeddings; s.length+tq+n-1 > np {
		return nil, nil, fmt.Errorf("blip: %d tokens exceed the %d positions of the decoder", s.length+tq+n-1, np)
	}
	// Everything that may wait happens first: the cache's growth, the
	// buffers, the compilation of the one-token chain the later steps run.
	if err := s.grow(s.length + tq + n - 1); err != nil {
		return nil, nil, err
	}
	if err := s.pickBuffers(n * rows); err != nil {
		return nil, nil, err
	}
	if n > 1 {
		if _, err := s.chain(rows, 1); err != nil {
			return nil, nil, err
		}
	}
	toks := gpu.Whole(s.pick[1], gpu.I32)
	nll := gpu.Whole(s.pick[2], gpu.F32)
	var prev gpu.View // the last step's picks
	for i, ban := range bans {
		last, err := s.record(ids, prev, tq)
		if err != nil {
			return nil, nil, err
		}
		ids = nil
		logits, err := last.plan.View(last.o)
		if err != nil {
			return nil, nil, err
		}
		prev = toks.Slice(int64(i*rows), int64(rows))
		s.length += tq
		tq = 1
		if err := s.be.Do(s.pickCalls(logits, prev, nll.Slice(int64(i*rows), int64(rows)), rows, ban)...); err != nil {
			return nil, nil, err
		}
	}
	if err := s.be.Sync(); err != nil {
		return nil, nil, err
	}
	tv, err := s.readI32(s.pick[1], n*rows)
	if err != nil {
		return nil, nil, err
	}
	lv, err := s.readF32(s.pick[2], n*rows)
	if err != nil {
		return nil, nil, err
	}
	outT, outL := make([][]int32, n), make([][]float32, n)
	for i := range n {
		outT[i], outL[i] = tv[i*rows:(i+1)*rows], lv[i*rows:(i+1)*rows]
		for j := range outL[i] {
			outL[i][j] = -outL[i][j]
		}
	}
	return outT, outL, nil
}

// pickCalls pick each row's token of logits (rows, vocab) into toks and its
// -log p into nll, the ban's column at -Inf first when ban >= 0.
func (s *kvStepper) pickCalls(logits, toks, nll gpu.View, rows int, ban int32) []gpu.Call {
	vocab := s.m.Config.TextConfig.VocabSize
	var calls []gpu.Call
	if ban >= 0 {
		calls = append(calls, gpu.Copy2D{X: gpu.Whole(s.pick[0], gpu.F32).Slice(0, int64(rows)), Y: logits.Slice(int64(ban), logits.Len-int64(ban)),
			Rows: rows, Cols: 1, LdX: 1, LdY: vocab})
	}
	return append(calls, gpu.ArgMax{X: logits, Y: toks, NLL: nll, Rows: rows, Cols: vocab})
}

// StartPick implements generate.Picker.
func (s *kvStepper) StartPick(prompts [][]int32, copies int, ban int32) ([]int32, []float32, error) {
	ids, tq, err := s.start(prompts, copies)
	if err != nil {
		return nil, nil, err
	}
	t, l, err := s.picks(ids, tq, []int32{ban})
	if err != nil {
		return nil, nil, err
	}
	return t[0], l[0], nil
}

// StepPick implements generate.Picker.
func (s *kvStepper) StepPick(tokens []int32, ban int32) ([]int32, []float32, error) {
	t, l, err := s.StepPicks(tokens, []int32{ban})
	if err != nil {
		return nil, nil, err
	}
	return t[0], l[0], nil
}
