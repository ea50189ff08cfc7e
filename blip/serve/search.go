package serve

import (
	"bytes"
	"fmt"
	"image/jpeg"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"blip/data/preprocess"
)

// SearchHit is one /v1/search result.
type SearchHit struct {
	Rank      int      `json:"rank"`
	ID        int      `json:"id"`
	Path      string   `json:"path"`
	Score     float32  `json:"score"`
	ITCCosine float32  `json:"itc_cosine"`
	ITMScore  *float32 `json:"itm_score,omitempty"`
	Thumbnail string   `json:"thumbnail"`
}

// SearchResponse is /v1/search's answer.
type SearchResponse struct {
	Query   string      `json:"query"`
	Indexed int         `json:"indexed"`
	Results []SearchHit `json:"results"`
}

// searchParams are /v1/search's query parameters.
type searchParams struct {
	Q      string `json:"q"`
	K      *int   `json:"k"`
	Rerank int    `json:"rerank"`
}

// search ranks the indexed images by ITC cosine with the query text and
// optionally re-ranks the best `rerank` of them by ITM match probability
// (those come first, then the rest in ITC order).
func (s *Server) search(w http.ResponseWriter, r *http.Request) (any, error) {
	l := s.models.Retrieval
	if err := need(l, "search", "--retrieval"); err != nil {
		return nil, err
	}
	if s.ix == nil {
		return nil, &apiError{http.StatusNotImplemented, "no index loaded: build one with blip index and start blip serve with --index FILE"}
	}
	var p searchParams
	if err := setFields(&p, r.URL.Query()); err != nil {
		return nil, err
	}
	k := 10
	if p.K != nil {
		k = *p.K
	}
	if k < 1 || k > s.cfg.MaxSearchK {
		return nil, badRequest("k %d is outside 1..%d", k, s.cfg.MaxSearchK)
	}
	if p.Rerank < 0 || p.Rerank > s.cfg.MaxRerank {
		return nil, badRequest("rerank %d is outside 0..%d", p.Rerank, s.cfg.MaxRerank)
	}
	if strings.TrimSpace(p.Q) == "" {
		return nil, badRequest("q (the query text) is required")
	}
	ids, err := s.text(l, "q", p.Q)
	if err != nil {
		return nil, err
	}
	var qv []float32
	err = s.w.submit(r.Context(), &task{kind: "search", fn: func() (err error) {
		qv, err = l.Model.TextEmbeddings(s.be, [][]int32{ids})
		return err
	}})
	if err != nil {
		return nil, err
	}
	hits := s.ix.Search(qv, max(k, p.Rerank))
	out := SearchResponse{Query: p.Q, Indexed: s.ix.Len(), Results: []SearchHit{}}
	for _, h := range hits {
		out.Results = append(out.Results, SearchHit{ID: h.I, Path: s.ix.Entries[h.I].Path, Score: h.Score, ITCCosine: h.Score, Thumbnail: fmt.Sprintf("/v1/thumb/%d", h.I)})
	}
	if n := min(p.Rerank, len(out.Results)); n > 0 {
		if err := s.rerank(r, out.Results[:n], ids); err != nil {
			return nil, err
		}
	}
	out.Results = out.Results[:min(k, len(out.Results))]
	for i := range out.Results {
		out.Results[i].Rank = i + 1
	}
	return out, nil
}

// rerank scores hits with ITM and sorts them by it; images that can no
// longer be read keep their place after the scored ones.
func (s *Server) rerank(r *http.Request, hits []SearchHit, ids []int32) error {
	l := s.models.Retrieval
	var pixels []float32
	var scored []int
	for i, h := range hits {
		img, err := preprocess.Decoder{MaxPixels: s.cfg.MaxPixels}.Load(s.ix.AbsPath(h.ID))
		if err != nil {
			s.log.Printf("serve: search: re-rank skips %s: %v", h.Path, err)
			continue
		}
		px, err := l.Proc.Pixels(img)
		if err != nil {
			continue
		}
		pixels = append(pixels, px...)
		scored = append(scored, i)
	}
	if len(scored) == 0 {
		return nil
	}
	err := s.w.submit(r.Context(), &task{kind: "search", fn: func() error {
		res, err := l.Model.MatchTexts(s.be, pixels, len(scored), [][]int32{ids})
		if err != nil {
			return err
		}
		for j, i := range scored {
			v := res[j][0].ITMScore
			hits[i].ITMScore, hits[i].Score = &v, v
		}
		return nil
	}})
	if err != nil {
		return err
	}
	sort.SliceStable(hits, func(a, b int) bool {
		ha, hb := hits[a].ITMScore != nil, hits[b].ITMScore != nil
		if ha != hb {
			return ha
		}
		return ha && *hits[a].ITMScore > *hits[b].ITMScore
	})
	return nil
}

// thumbCache keeps encoded thumbnails; when full it starts over.
type thumbCache struct {
	mu   sync.Mutex
	max  int
	data map[int][]byte
	sem  chan struct{} // bounds concurrent thumbnail encodes
}

func newThumbCache(n int) *thumbCache {
	return &thumbCache{max: n, data: map[int][]byte{}, sem: make(chan struct{}, 2)}
}

// ThumbSize is the longer side of a thumbnail in pixels.
const ThumbSize = 256

// thumb serves a JPEG thumbnail of indexed image {id}: only files the
// index lists, and only while they resolve inside its root.
func (s *Server) thumb(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, &apiError{http.StatusMethodNotAllowed, r.Method + " is not allowed here; use GET"})
		return
	}
	if s.ix == nil {
		writeError(w, &apiError{http.StatusNotFound, "no index loaded"})
		return
	}
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil || id < 0 || id >= s.ix.Len() {
		writeError(w, &apiError{http.StatusNotFound, fmt.Sprintf("no indexed image %q", r.PathValue("id"))})
		return
	}
	s.thumbs.mu.Lock()
	b, ok := s.thumbs.data[id]
	s.thumbs.mu.Unlock()
	if !ok {
		s.thumbs.sem <- struct{}{}
		b, err = s.makeThumb(id)
		<-s.thumbs.sem
		if err != nil {
			writeError(w, err)
			return
		}
		s.thumbs.mu.Lock()
		if len(s.thumbs.data) >= s.thumbs.max {
			clear(s.thumbs.data)
		}
		s.thumbs.data[id] = b
		s.thumbs.mu.Unlock()
	}
	w.Header().Set("Content-Type", "image/jpeg")
	w.Header().Set("Cache-Control", "private, max-age=300")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Write(b)
}

func (s *Server) makeThumb(id int) ([]byte, error) {
	p, err := filepath.EvalSymlinks(filepath.Join(s.root, filepath.FromSlash(s.ix.Entries[id].Path)))
	if err != nil {
		return nil, &apiError{http.StatusNotFound, fmt.Sprintf("indexed image %d is gone", id)}
	}
	if rel, err := filepath.Rel(s.root, p); err != nil || !filepath.IsLocal(rel) {
		return nil, &apiError{http.StatusForbidden, fmt.Sprintf("indexed image %d resolves outside the indexed folder", id)}
	}
	if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
		return nil, &apiError{http.StatusNotFound, fmt.Sprintf("indexed image %d is gone", id)}
	}
	img, err := preprocess.Decoder{MaxPixels: s.cfg.MaxPixels}.Load(p)
	if err != nil {
		return nil, &apiError{http.StatusUnprocessableEntity, fmt.Sprintf("indexed image %d cannot be decoded", id)}
	}
	tw, th := img.W, img.H
	if tw > ThumbSize || th > ThumbSize {
		if tw >= th {
			tw, th = ThumbSize, max(1, img.H*ThumbSize/img.W)
		} else {
			tw, th = max(1, img.W*ThumbSize/img.H), ThumbSize
		}
		if img, err = preprocess.Resize(img, tw, th, preprocess.Bilinear); err != nil {
			return nil, err
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 85}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
