// Package serve is blip's HTTP server: captioning, VQA, image-text
// matching, embeddings, zero-shot classification and search of an indexed
// photo folder, over the blip package's inference API, plus a small web
// page at /.
//
// # Endpoints
//
// POST endpoints take the image as a multipart/form-data "image" file part
// (other parts are fields), as the raw body (Content-Type image/* or
// application/octet-stream, fields in the query string), or base64 (or a
// data: URL) in the "image" field of a JSON body. Unknown fields are
// errors. Every error is {"error": "..."} with a 4xx status for bad input
// (413 for bodies over the limit and images over the pixel limit, 415 for
// an unsupported Content-Type), 501 when the model an endpoint needs was
// not loaded, 503 when the queue is full or the server is stopping, 504
// when a request times out.
//
//	POST /v1/caption   prompt, num_beams, max_new_tokens, min_new_tokens, repetition_penalty,
//	                   do_sample, top_p, top_k, temperature, seed -> [{"generated_text"}]
//	POST /v1/vqa       question, num_beams, max_new_tokens; or candidates[] (+ top_k) for rank
//	                   mode -> [{"answer", "score"}]
//	POST /v1/itm       texts[] -> [{"text", "itm_score", "itc_cosine"}]
//	POST /v1/embed     image or text -> {"input", "dim", "embedding"} (L2-normalised ITC feature)
//	POST /v1/classify  candidate_labels[], hypothesis_template ("a picture of {}"), temperature
//	                   (0.07) -> [{"label", "score"}], a softmax of ITC cosines over the labels
//	GET  /v1/search    q, k (10), rerank (0: ITC only; N: the best N re-ranked by ITM)
//	                   -> {"query", "indexed", "results": [{"rank", "id", "path", "score",
//	                   "itc_cosine", "itm_score", "thumbnail"}]}
//	GET  /v1/thumb/ID  JPEG thumbnail of indexed image ID (only files the index lists)
//	GET  /v1/info      loaded models, index, limits
//	GET  /healthz      200 while the process serves
//	GET  /readyz       200 once the models are loaded, 503 while shutting down
//	GET  /metrics      Prometheus text: blip_http_requests_total{endpoint,code},
//	                   blip_http_request_duration_seconds (histogram), blip_device_batch_size,
//	                   blip_device_seconds_total, queue depth, requests in flight
//
// # Device work
//
// One goroutine (the device worker) owns the backend and the models, since
// backends are not safe for concurrent use; handlers decode and preprocess
// images on their own goroutines and queue the model calls. Caption
// requests with identical options (prompt, beams, lengths, sampling
// settings; seeded sampling excluded, since each row of a batch draws from
// its own stream) are grouped into one GenerateCaptions call of up to
// Config.MaxBatch images, the first waiting at most Config.MaxWait for
// company; greedy and beam captions are the same batched or not. VQA is
// not grouped: transformers' answers depend on the padding of the other
// questions in a batch.
package serve
