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

// pickRun is run for a Picker: the greedy token of each row and its
// log-probability, taken on the backend from the logits where they lie (the
// ban's column set to -Inf first when ban >= 0): one ArgMax and one
// CrossEntropy (-log softmax at the label) per step, and 8 bytes per row
// read back instead of the vocabulary's logits, with no work over the
// vocabulary on the host.
func (s *kvStepper) pickRun(ids []int32, tq int, ban int32) ([]int32, []float32, error) {
	vocab := s.m.Config.TextConfig.VocabSize
	if ban >= int32(vocab) {
		return nil, nil, fmt.Errorf("blip: banned token %d is past the vocabulary of %d", ban, vocab)
	}
	last, err := s.record(ids, tq)
	if err != nil {
		return nil, nil, err
	}
	rows := s.rows
	if err := s.pickBuffers(rows); err != nil {
		return nil, nil, err
	}
	logits, err := last.plan.View(last.o)
	if err != nil {
		return nil, nil, err
	}
	toks := gpu.Whole(s.pick[1], gpu.I32).Slice(0, int64(rows))
	logp := gpu.Whole(s.pick[2], gpu.F32).Slice(0, int64(rows))
	if err := s.be.Do(s.pickCalls(logits, toks, logp, rows, ban)...); err != nil {
		return nil, nil, err
	}
	if err := s.be.Sync(); err != nil {
		return nil, nil, err
	}
	s.length += tq
	out, err := s.readI32(s.pick[1], rows)
	if err != nil {
		return nil, nil, err
	}
	lp, err := s.readF32(s.pick[2], rows)
	if err != nil {
		return nil, nil, err
	}
	for i := range lp {
		lp[i] = -lp[i]
	}
	return out, lp, nil
}

// topRun is run for a Ranker: each row's k best logits (TopK) and its
// log-sum-exp around the maximum (CrossEntropy at the ArgMax), taken where
// the logits lie; 8k + 4 bytes per row come back.
func (s *kvStepper) topRun(ids []int32, tq, k int) (*generate.Top, error) {
	vocab := s.m.Config.TextConfig.VocabSize
	k = min(k, vocab)
	if k < 1 {
		return nil, fmt.Errorf("blip: rank %d tokens per row", k)
	}
	last, err := s.record(ids, tq)
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
		gpu.ArgMax{X: logits, Y: best, Rows: rows, Cols: vocab},
		gpu.CrossEntropy{Logits: logits, Labels: best, Loss: lse, Rows: rows, Cols: vocab},
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

// StepPicks implements generate.ChunkPicker: len(bans) steps recorded back
// to back with one wait at the end. Each step's picks go to its rows of the
// pick buffers and, by Copy2D, into the next step's ids, with the next
// position from a table on the device (posTable), so the host touches
// nothing between steps.
func (s *kvStepper) StepPicks(tokens []int32, bans []int32) ([][]int32, [][]float32, error) {
	if err := s.stepCheck(tokens); err != nil {
		return nil, nil, err
	}
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
	if np := s.m.Config.TextConfig.MaxPositionEmbeddings; s.length+n > np {
		return nil, nil, fmt.Errorf("blip: %d tokens exceed the %d positions of the decoder", s.length+n, np)
	}
	// Everything that may wait happens first: the cache's growth, the
	// buffers, the chain's compilation.
	if err := s.grow(s.length + n); err != nil {
		return nil, nil, err
	}
	if err := s.pickBuffers(n * rows); err != nil {
		return nil, nil, err
	}
	if err := s.posTable(); err != nil {
		return nil, nil, err
	}
	c, err := s.chain(rows, 1)
	if err != nil {
		return nil, nil, err
	}
	cin, err := c.segs[0].plan.View(c.in)
	if err != nil {
		return nil, nil, err
	}
	toks := gpu.Whole(s.pick[1], gpu.I32)
	nll := gpu.Whole(s.pick[2], gpu.F32)
	ids := tokens
	for i, ban := range bans {
		last, err := s.record(ids, 1)
		if err != nil {
			return nil, nil, err
		}
		ids = nil
		logits, err := last.plan.View(last.o)
		if err != nil {
			return nil, nil, err
		}
		step := toks.Slice(int64(i*rows), int64(rows))
		calls := s.pickCalls(logits, step, nll.Slice(int64(i*rows), int64(rows)), rows, ban)
		s.length++
		if i < n-1 {
			calls = append(calls,
				gpu.Copy2D{X: step, Y: cin.Slice(0, int64(rows)), Rows: 1, Cols: rows},
				gpu.Copy2D{X: gpu.Whole(s.pos, gpu.I32).Slice(int64(s.length), 1), Y: cin.Slice(int64(rows), 1), Rows: 1, Cols: 1})
		}
		if err := s.be.Do(calls...); err != nil {
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
	return append(calls, gpu.ArgMax{X: logits, Y: toks, Rows: rows, Cols: vocab},
		gpu.CrossEntropy{Logits: logits, Labels: toks, Loss: nll, Rows: rows, Cols: vocab})
}

// posTable fills s.pos with the positions 0, 1, ... of the decoder once.
func (s *kvStepper) posTable() error {
	if s.pos != nil {
		return nil
	}
	np := s.m.Config.TextConfig.MaxPositionEmbeddings
	b, err := s.be.Alloc(int64(np+1) * 4)
	if err != nil {
		return err
	}
	raw := make([]byte, 4*(np+1))
	for i := range np + 1 {
		binary.LittleEndian.PutUint32(raw[4*i:], uint32(i))
	}
	if err := s.be.Write(b, 0, raw); err != nil {
		s.be.Free(b)
		return err
	}
	s.pos = b
	return nil
}

// StartPick implements generate.Picker.
func (s *kvStepper) StartPick(prompts [][]int32, copies int, ban int32) ([]int32, []float32, error) {
	ids, tq, err := s.start(prompts, copies)
	if err != nil {
		return nil, nil, err
	}
	return s.pickRun(ids, tq, ban)
}

// StepPick implements generate.Picker.
func (s *kvStepper) StepPick(tokens []int32, ban int32) ([]int32, []float32, error) {
	if err := s.stepCheck(tokens); err != nil {
		return nil, nil, err
	}
	return s.pickRun(tokens, 1, ban)
}
