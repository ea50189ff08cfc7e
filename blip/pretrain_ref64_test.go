package blip

import (
	"fmt"
	"math"
)

// ref64 is an independent float64 forward of BLIP pretraining, written
// from blip_pretrain.py and med.py (not from the graph code), over the
// parameter values by name. Only tests use it.
type ref64 struct {
	cfg *BlipConfig
	p   map[string][]float64
}

func (r *ref64) w(name string) []float64 {
	v, ok := r.p[name]
	if !ok {
		panic("ref64: no parameter " + name)
	}
	return v
}

// linear: x (rows, in) @ W^T (W: (out, in)) + b.
func (r *ref64) linear(x []float64, rows, in, out int, pre string) []float64 {
	w, b := r.w(pre+".weight"), r.w(pre+".bias")
	y := make([]float64, rows*out)
	for i := range rows {
		xi := x[i*in : (i+1)*in]
		for o := range out {
			s := b[o]
			wo := w[o*in : (o+1)*in]
			for k, xv := range xi {
				s += xv * wo[k]
			}
			y[i*out+o] = s
		}
	}
	return y
}

func (r *ref64) layerNorm(x []float64, rows, n int, pre string, eps float64) []float64 {
	g, b := r.w(pre+".weight"), r.w(pre+".bias")
	y := make([]float64, len(x))
	for i := range rows {
		xi := x[i*n : (i+1)*n]
		var mean, v float64
		for _, a := range xi {
			mean += a
		}
		mean /= float64(n)
		for _, a := range xi {
			v += (a - mean) * (a - mean)
		}
		v /= float64(n)
		inv := 1 / math.Sqrt(v+eps)
		for j, a := range xi {
			y[i*n+j] = (a-mean)*inv*g[j] + b[j]
		}
	}
	return y
}

func gelu64(x []float64) []float64 {
	y := make([]float64, len(x))
	for i, a := range x {
		y[i] = 0.5 * a * (1 + math.Erf(a/math.Sqrt2))
	}
	return y
}

func add64(a, b []float64) []float64 {
	y := make([]float64, len(a))
	for i := range a {
		y[i] = a[i] + b[i]
	}
	return y
}

// attention64: q (B, Tq, H), k and v (B, Tk, H), heads side by side; keep
// reports whether query i of batch b may see key j.
func attention64(q, k, v []float64, b, tq, tk, h, heads int, keep func(b, i, j int) bool) []float64 {
	hd := h / heads
	scale := 1 / math.Sqrt(float64(hd))
	y := make([]float64, b*tq*h)
	s := make([]float64, tk)
	for bi := range b {
		for hh := range heads {
			for i := range tq {
				qi := q[(bi*tq+i)*h+hh*hd:][:hd]
				mx := math.Inf(-1)
				for j := range tk {
					s[j] = math.Inf(-1)
					if !keep(bi, i, j) {
						continue
					}
					kj := k[(bi*tk+j)*h+hh*hd:][:hd]
					var d float64
					for e := range hd {
						d += qi[e] * kj[e]
					}
					s[j] = d * scale
					mx = math.Max(mx, s[j])
				}
				var z float64
				for j := range tk {
					s[j] = math.Exp(s[j] - mx)
					z += s[j]
				}
				out := y[(bi*tq+i)*h+hh*hd:][:hd]
				for j := range tk {
					if s[j] == 0 {
						continue
					}
					vj := v[(bi*tk+j)*h+hh*hd:][:hd]
					for e := range hd {
						out[e] += s[j] / z * vj[e]
					}
				}
			}
		}
	}
	return y
}

// vision is the ViT: patches (B, N, 3PP) -> (B, N+1, C).
func (r *ref64) vision(pre string, patches []float64, b int) []float64 {
	v := &r.cfg.VisionConfig
	c, n, pp := v.HiddenSize, v.NumPatches(), v.NumChannels*v.PatchSize*v.PatchSize
	t := n + 1
	emb := r.linear(patches, b*n, pp, c, pre+"embeddings.patch_embedding")
	cls, pos := r.w(pre+"embeddings.class_embedding"), r.w(pre+"embeddings.position_embedding")
	x := make([]float64, b*t*c)
	for bi := range b {
		for i := range t {
			for j := range c {
				val := pos[i*c+j]
				if i == 0 {
					val += cls[j]
				} else {
					val += emb[(bi*n+i-1)*c+j]
				}
				x[(bi*t+i)*c+j] = val
			}
		}
	}
	rows, eps := b*t, v.LayerNormEps
	for l := range v.NumHiddenLayers {
		p := fmt.Sprintf("%sencoder.layers.%d.", pre, l)
		h := r.layerNorm(x, rows, c, p+"layer_norm1", eps)
		qkv := r.linear(h, rows, c, 3*c, p+"self_attn.qkv")
		q, k, vv := make([]float64, rows*c), make([]float64, rows*c), make([]float64, rows*c)
		for i := range rows {
			copy(q[i*c:], qkv[i*3*c:i*3*c+c])
			copy(k[i*c:], qkv[i*3*c+c:i*3*c+2*c])
			copy(vv[i*c:], qkv[i*3*c+2*c:i*3*c+3*c])
		}
		a := attention64(q, k, vv, b, t, t, c, v.NumAttentionHeads, func(int, int, int) bool { return true })
		x = add64(x, r.linear(a, rows, c, c, p+"self_attn.projection"))
		h = r.layerNorm(x, rows, c, p+"layer_norm2", eps)
		h = gelu64(r.linear(h, rows, c, v.IntermediateSize, p+"mlp.fc1"))
		x = add64(x, r.linear(h, rows, v.IntermediateSize, c, p+"mlp.fc2"))
	}
	return r.layerNorm(x, rows, c, pre+"post_layernorm", eps)
}

// textIn describes one text forward.
type textIn struct {
	emb    []float64 // embedding output (B, T, H)
	b, t   int
	mask   []float64 // (B, T)
	causal bool
	image  []float64 // (B, N+1, Cv) or nil
}

func (r *ref64) embed(pre string, ids []int32, b, t int) []float64 {
	h := r.cfg.TextConfig.HiddenSize
	word, pos := r.w(pre+"embeddings.word_embeddings.weight"), r.w(pre+"embeddings.position_embeddings.weight")
	x := make([]float64, b*t*h)
	for i := range b * t {
		for j := range h {
			x[i*h+j] = word[int(ids[i])*h+j] + pos[(i%t)*h+j]
		}
	}
	return r.layerNorm(x, b*t, h, pre+"embeddings.LayerNorm", r.cfg.TextConfig.LayerNormEps)
}

func (r *ref64) bertAttention(pre string, x, kv []float64, b, tq, tk, kvw int, keep func(b, i, j int) bool) []float64 {
	tc := &r.cfg.TextConfig
	h := tc.HiddenSize
	q := r.linear(x, b*tq, h, h, pre+"self.query")
	k := r.linear(kv, b*tk, kvw, h, pre+"self.key")
	v := r.linear(kv, b*tk, kvw, h, pre+"self.value")
	a := attention64(q, k, v, b, tq, tk, h, tc.NumAttentionHeads, keep)
	return r.layerNorm(add64(r.linear(a, b*tq, h, h, pre+"output.dense"), x), b*tq, h, pre+"output.LayerNorm", tc.LayerNormEps)
}

// text runs the layers; selfPre names the self-attention's model prefix
// (the decoder's own), sharedPre the rest.
func (r *ref64) text(selfPre, sharedPre string, in textIn) []float64 {
	tc := &r.cfg.TextConfig
	h, b, t := tc.HiddenSize, in.b, in.t
	x := in.emb
	self := func(bi, i, j int) bool { return in.mask[bi*t+j] != 0 && (!in.causal || j <= i) }
	for l := range tc.NumHiddenLayers {
		sp := fmt.Sprintf("%sencoder.layer.%d.", selfPre, l)
		p := fmt.Sprintf("%sencoder.layer.%d.", sharedPre, l)
		x = r.bertAttention(sp+"attention.", x, x, b, t, t, h, self)
		if in.image != nil {
			n := len(in.image) / (b * tc.EncoderHiddenSize)
			x = r.bertAttention(p+"crossattention.", x, in.image, b, t, n, tc.EncoderHiddenSize, func(int, int, int) bool { return true })
		}
		f := gelu64(r.linear(x, b*t, h, tc.IntermediateSize, p+"intermediate.dense"))
		x = r.layerNorm(add64(r.linear(f, b*t, tc.IntermediateSize, h, p+"output.dense"), x), b*t, h, p+"output.LayerNorm", tc.LayerNormEps)
	}
	return x
}

func firstRows(x []float64, b, t, c int) []float64 {
	y := make([]float64, 0, b*c)
	for bi := range b {
		y = append(y, x[bi*t*c:bi*t*c+c]...)
	}
	return y
}

func normalizeRows(x []float64, rows, n int) []float64 {
	y := make([]float64, len(x))
	for i := range rows {
		var s float64
		for _, a := range x[i*n : (i+1)*n] {
			s += a * a
		}
		d := math.Max(math.Sqrt(s), 1e-12)
		for j := range n {
			y[i*n+j] = x[i*n+j] / d
		}
	}
	return y
}

func logSoftmax(x []float64) []float64 {
	mx := math.Inf(-1)
	for _, a := range x {
		mx = math.Max(mx, a)
	}
	var z float64
	for _, a := range x {
		z += math.Exp(a - mx)
	}
	y := make([]float64, len(x))
	for i, a := range x {
		y[i] = a - mx - math.Log(z)
	}
	return y
}

// refLosses are the reference's results.
type refLosses struct {
	ita, itm, lm       float64
	negImg, negText    []int
	imgFeatM, txtFeatM []float64
	// targets are the soft ITC targets per direction ("i2t", "t2i"):
	// held fixed by finite differences, as BLIP computes them without
	// gradient (they depend on the temperature).
	targets map[string][][]float64
}

// losses computes BLIP_Pretrain.forward's three losses for batch s. With
// fixed non-nil, the hard negatives are taken from it instead of sampled
// (finite differences hold BLIP's no_grad sampling constant).
func (r *ref64) losses(s *stepBatch, smoothing float64, fixed *refLosses) refLosses {
	cfg := r.cfg
	b, t, d := s.b, s.t, s.d
	v := &cfg.VisionConfig
	tc := &cfg.TextConfig
	cv, h, np := v.HiddenSize, tc.HiddenSize, v.NumPositions()
	patches := make([]float64, len(s.patches))
	for i, a := range s.patches {
		patches[i] = float64(a)
	}
	mask := make([]float64, len(s.mask))
	for i, a := range s.mask {
		mask[i] = float64(a)
	}
	var out refLosses

	image := r.vision("vision_model.", patches, b)
	imgFeat := normalizeRows(r.linear(firstRows(image, b, np, cv), b, cv, d, "vision_proj"), b, d)
	text := r.text("text_encoder.", "text_encoder.", textIn{emb: r.embed("text_encoder.", s.ids, b, t), b: b, t: t, mask: mask})
	txtFeat := normalizeRows(r.linear(firstRows(text, b, t, h), b, h, d, "text_proj"), b, d)
	imageM := r.vision("vision_model_m.", patches, b)
	imgFeatM := normalizeRows(r.linear(firstRows(imageM, b, np, cv), b, cv, d, "vision_proj_m"), b, d)
	textM := r.text("text_encoder_m.", "text_encoder_m.", textIn{emb: r.embed("text_encoder_m.", s.ids, b, t), b: b, t: t, mask: mask})
	txtFeatM := normalizeRows(r.linear(firstRows(textM, b, t, h), b, h, d, "text_proj_m"), b, d)
	out.imgFeatM, out.txtFeatM = imgFeatM, txtFeatM

	temp := r.w("temp")[0]
	q := s.q
	all := func(featM []float64, queue []float32) [][]float64 {
		rows := make([][]float64, 0, b+q)
		for i := range b {
			rows = append(rows, featM[i*d:(i+1)*d])
		}
		for i := range q {
			row := make([]float64, d)
			for j := range d {
				row[j] = float64(queue[i*d+j])
			}
			rows = append(rows, row)
		}
		return rows
	}
	txtAll, imgAll := all(txtFeatM, s.txtQ), all(imgFeatM, s.imgQ)
	sim := func(x []float64, i int, rows [][]float64) []float64 {
		o := make([]float64, len(rows))
		for j, row := range rows {
			var dot float64
			for e := range d {
				dot += x[i*d+e] * row[e]
			}
			o[j] = dot / temp
		}
		return o
	}
	alpha := float64(s.alpha)
	out.targets = map[string][][]float64{}
	itc := func(dir string, x, xM []float64, rows [][]float64) (float64, [][]float64) {
		var loss float64
		sims := make([][]float64, b)
		tgts := make([][]float64, b)
		for i := range b {
			sims[i] = sim(x, i, rows)
			pm := logSoftmax(sim(xM, i, rows))
			tgts[i] = make([]float64, len(pm))
			for j := range pm {
				tgts[i][j] = alpha * math.Exp(pm[j])
				if j == i {
					tgts[i][j] += 1 - alpha
				}
			}
			if fixed != nil {
				tgts[i] = fixed.targets[dir][i]
			}
			ls := logSoftmax(sims[i])
			for j := range pm {
				loss -= tgts[i][j] * ls[j]
			}
		}
		out.targets[dir] = tgts
		return loss / float64(b), sims
	}
	i2t, simI2T := itc("i2t", imgFeat, imgFeatM, txtAll)
	t2i, simT2I := itc("t2i", txtFeat, txtFeatM, imgAll)
	out.ita = (i2t + t2i) / 2

	sample := func(sims [][]float64, k int) []int {
		idx := make([]int, b)
		for i := range b {
			p := logSoftmax(sims[i][:b])
			best, arg := -1.0, 0
			for j := range b {
				w := 0.0
				if j != i {
					w = math.Exp(p[j]) + 1e-4
				}
				if x := w * float64(s.noise[(k*b+i)*b+j]); x > best {
					best, arg = x, j
				}
			}
			idx[i] = arg
		}
		return idx
	}
	if fixed != nil {
		out.negImg, out.negText = fixed.negImg, fixed.negText
	} else {
		out.negImg, out.negText = sample(simT2I, 0), sample(simI2T, 1)
	}

	// ITM rows: positives, (text b, negative image), (negative text, image b).
	enc := r.embed("text_encoder.", s.enc, b, t)
	rowT := make([]int, 0, 3*b)
	rowI := make([]int, 0, 3*b)
	for i := range b {
		rowT, rowI = append(rowT, i), append(rowI, i)
	}
	for i := range b {
		rowT, rowI = append(rowT, i), append(rowI, out.negImg[i])
	}
	for i := range b {
		rowT, rowI = append(rowT, out.negText[i]), append(rowI, i)
	}
	var emb, msk, img []float64
	for k := range 3 * b {
		emb = append(emb, enc[rowT[k]*t*h:(rowT[k]+1)*t*h]...)
		msk = append(msk, mask[rowT[k]*t:(rowT[k]+1)*t]...)
		img = append(img, image[rowI[k]*np*cv:(rowI[k]+1)*np*cv]...)
	}
	hs := r.text("text_encoder.", "text_encoder.", textIn{emb: emb, b: 3 * b, t: t, mask: msk, image: img})
	logits := r.linear(firstRows(hs, 3*b, t, h), 3*b, h, 2, "itm_head")
	for k := range 3 * b {
		ls := logSoftmax(logits[2*k : 2*k+2])
		label := 0
		if k < b {
			label = 1
		}
		out.itm -= ls[label]
	}
	out.itm /= float64(3 * b)

	// LM: the decoder's own self-attention, the encoder's other weights.
	dec := r.text("text_decoder.bert.", "text_encoder.", textIn{emb: r.embed("text_encoder.", s.dec, b, t), b: b, t: t, mask: mask, causal: true, image: image})
	hp := "text_decoder.cls.predictions."
	x := r.layerNorm(gelu64(r.linear(dec, b*t, h, h, hp+"transform.dense")), b*t, h, hp+"transform.LayerNorm", tc.LayerNormEps)
	vocab := tc.VocabSize
	wd, bd := r.w(hp+"decoder.weight"), r.w(hp+"bias")
	var count float64
	for bi := range b {
		for i := range t - 1 {
			label := s.labels[bi*(t-1)+i]
			if label < 0 {
				continue
			}
			row := x[(bi*t+i)*h : (bi*t+i+1)*h]
			lg := make([]float64, vocab)
			for o := range vocab {
				acc := bd[o]
				for e := range h {
					acc += row[e] * wd[o*h+e]
				}
				lg[o] = acc
			}
			ls := logSoftmax(lg)
			var mean float64
			for _, a := range ls {
				mean += a
			}
			mean /= float64(vocab)
			out.lm += -(1-smoothing)*ls[label] - smoothing*mean
			count++
		}
	}
	out.lm /= count
	return out
}
