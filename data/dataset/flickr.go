package dataset

// Flickr30k in BLIP's format (flickr30k_train.json, flickr30k_val.json,
// flickr30k_test.json) has the same layout as the COCO Karpathy files;
// these name the readers for it. The image root is the folder holding
// "flickr30k-images/" (BLIP's image_root).

// ReadFlickrTrain reads flickr30k_train.json: {"image", "caption" (string),
// "image_id"} entries, as ReadCaptionTrain.
func ReadFlickrTrain(file, root string, opt JSONOptions) ([]Entry, error) {
	return ReadCaptionTrain(file, root, opt)
}

// ReadFlickrRetrievalEval reads flickr30k_val.json or flickr30k_test.json
// ({"image", "caption": [...]} entries) and builds the retrieval view of
// BLIP's flickr30k_retrieval_eval (texts cleaned with pre_caption(caption,
// maxWords); BLIP uses RetrievalMaxWords).
func ReadFlickrRetrievalEval(file, root string, maxWords int) (*Retrieval, error) {
	return ReadRetrievalEval(file, root, maxWords)
}
